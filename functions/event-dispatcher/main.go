// Command event-dispatcher reads new event items from the table's stream
// and fans each out to in-app notifications, the emails queue and the
// webhook deliveries queue.
package main

import "github.com/signsecure/signsecure/pkg/app"

func main() {
	app.StartDispatcher()
}
