package app

import (
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/envelopes"
	"github.com/signsecure/signsecure/pkg/webhooks"
)

// Config is the configuration every function reads from its environment.
type Config struct {
	// TableName is the single DynamoDB table (TABLE_NAME).
	TableName string
	// CursorKey signs pagination cursors (CURSOR_SIGNING_KEY, base64 of at
	// least 32 bytes).
	CursorKey []byte
	// DocumentsBucket is the S3 bucket for envelope documents and invoices
	// (DOCUMENTS_BUCKET_NAME).
	DocumentsBucket string
	// Accounts holds the account rules.
	Accounts accounts.Config
	// Billing holds the credit packs, starting grant, seller and payment
	// provider (BILLING_* and STRIPE_* variables).
	Billing billing.Config
	// Envelopes holds the send cost and the signing-link key and URL
	// (ENVELOPE_SEND_COST and SIGNING_* variables).
	Envelopes envelopes.Config
	// Webhooks holds the deliveries queue, the attempt schedule and the
	// address rules (WEBHOOK_* variables).
	Webhooks webhooks.Config
}

// ConfigFromEnv reads the configuration from environment variables.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		TableName:       os.Getenv("TABLE_NAME"),
		DocumentsBucket: os.Getenv("DOCUMENTS_BUCKET_NAME"),
		Accounts:        accounts.DefaultConfig(),
	}
	if cfg.TableName == "" {
		return Config{}, fmt.Errorf("environment variable TABLE_NAME is not set; set it to the DynamoDB table name")
	}

	key, err := base64.StdEncoding.DecodeString(os.Getenv("CURSOR_SIGNING_KEY"))
	if err != nil || len(key) < 32 {
		return Config{}, fmt.Errorf("environment variable CURSOR_SIGNING_KEY must be the base64 of at least 32 random bytes")
	}
	cfg.CursorKey = key

	if raw := os.Getenv("SESSION_TTL"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Minute {
			return Config{}, fmt.Errorf("environment variable SESSION_TTL=%q must be a Go duration of at least 1m, such as 168h", raw)
		}
		cfg.Accounts.SessionTTL = d
	}

	if cfg.Billing, err = billing.ConfigFromEnv(os.Getenv); err != nil {
		return Config{}, err
	}
	if cfg.Envelopes, err = envelopes.ConfigFromEnv(os.Getenv); err != nil {
		return Config{}, err
	}
	if cfg.Webhooks, err = webhooks.ConfigFromEnv(os.Getenv); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DefaultConfig returns the configuration for a table and bucket with
// every rule at its default, as the local runner uses it. signingKey
// derives the envelopes' signing tokens and the invitation codes; the
// webhook deliveries queue URL is left for the caller to set.
func DefaultConfig(table, bucket string, cursorKey, signingKey []byte) Config {
	cfg := Config{
		TableName:       table,
		DocumentsBucket: bucket,
		CursorKey:       cursorKey,
		Accounts:        accounts.DefaultConfig(),
		Billing:         billing.DefaultConfig(),
		Envelopes:       envelopes.DefaultConfig(),
		Webhooks:        webhooks.DefaultConfig(),
	}
	cfg.Envelopes.SigningKey = signingKey
	return cfg
}
