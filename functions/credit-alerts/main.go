// Command credit-alerts runs on a schedule and alerts each wallet that has
// dropped below its low-balance threshold, once per drop.
package main

import "github.com/signsecure/signsecure/pkg/app"

func main() {
	app.StartCreditAlerts()
}
