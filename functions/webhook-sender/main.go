// Command webhook-sender posts the signed deliveries of the webhook
// deliveries queue to their endpoints.
package main

import "github.com/signsecure/signsecure/pkg/app"

func main() {
	app.StartWebhookSender()
}
