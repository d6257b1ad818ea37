// Package notify fans events out to their consumers and serves in-app
// notifications.
//
// The Dispatcher is the handler of the table's DynamoDB stream: each new
// event item, written by a handler in the same transaction as its change,
// reaches the dispatcher, which hands it to each Fanout. InApp writes
// in-app notifications to the table and Emails sends email jobs to the
// emails queue; webhook deliveries plug in as another Fanout.
//
// The Service stores the notifications (newest first, with an unread
// counter kept in the same transactions) and each user's preferences,
// which turn notification types off. Preferences never change emails.
package notify

import (
	"fmt"
	"os"
)

// DispatcherConfig is the dispatcher function's configuration.
type DispatcherConfig struct {
	// EmailsQueueURL is the URL of the emails queue (EMAILS_QUEUE_URL).
	EmailsQueueURL string
	// InvitationCodeKey derives the invitation codes that invitation emails
	// carry (see orgs.InvitationCode); nil leaves the code out.
	InvitationCodeKey []byte
}

// DispatcherConfigFromEnv reads the configuration from EMAILS_QUEUE_URL.
func DispatcherConfigFromEnv() (DispatcherConfig, error) {
	cfg := DispatcherConfig{EmailsQueueURL: os.Getenv("EMAILS_QUEUE_URL")}
	if cfg.EmailsQueueURL == "" {
		return DispatcherConfig{}, fmt.Errorf("environment variable EMAILS_QUEUE_URL is not set; set it to the URL of the emails queue")
	}
	return cfg, nil
}
