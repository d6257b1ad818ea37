// Command email-sender sends the email jobs of the emails queue through
// SES.
package main

import "github.com/signsecure/signsecure/pkg/app"

func main() {
	app.StartEmailSender()
}
