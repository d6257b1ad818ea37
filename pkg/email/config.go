package email

import (
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"time"
)

// DefaultClaimLease is how long a sender's claim on a job lasts. It must be
// longer than one SES call can take, which the function's timeout (30 s)
// bounds, and shorter than the queue's visibility timeout (180 s), so that
// the redelivery after a crash finds the claim expired.
const DefaultClaimLease = 90 * time.Second

// Config is the email function's configuration.
type Config struct {
	// From is the sender address (EMAIL_FROM), such as
	// "SignSecure <no-reply@signsecure.example>". Its domain must be a
	// verified SES identity.
	From string
	// AppURL is the web application's address that emails link to
	// (APP_URL). Empty leaves those links out.
	AppURL string
	// ClaimLease is how long a claim on a job lasts (EMAIL_CLAIM_LEASE, a
	// Go duration); zero means DefaultClaimLease.
	ClaimLease time.Duration
}

// ConfigFromEnv reads the configuration from EMAIL_FROM, APP_URL and
// EMAIL_CLAIM_LEASE.
func ConfigFromEnv() (Config, error) {
	cfg := Config{From: os.Getenv("EMAIL_FROM"), AppURL: os.Getenv("APP_URL")}
	if raw := os.Getenv("EMAIL_CLAIM_LEASE"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return Config{}, fmt.Errorf("environment variable EMAIL_CLAIM_LEASE=%q is not a Go duration such as 90s", raw)
		}
		cfg.ClaimLease = d
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate returns an error that names the first invalid setting.
func (c Config) Validate() error {
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("email config: EMAIL_FROM=%q is not an email address such as \"SignSecure <no-reply@example.com>\": %v", c.From, err)
	}
	if c.AppURL != "" {
		u, err := url.Parse(c.AppURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("email config: APP_URL=%q is not an absolute http or https URL", c.AppURL)
		}
	}
	if c.ClaimLease < 0 {
		return fmt.Errorf("email config: EMAIL_CLAIM_LEASE %s is negative", c.ClaimLease)
	}
	return nil
}
