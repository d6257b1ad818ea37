package webhooks

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config holds the webhook rules that operators set.
type Config struct {
	// QueueURL is the URL of the webhook deliveries queue
	// (WEBHOOK_DELIVERIES_QUEUE_URL).
	QueueURL string
	// AllowInsecureLoopback lets endpoints use loopback addresses and
	// plain http to them (WEBHOOK_ALLOW_INSECURE_LOOPBACK=true). Only the
	// local runner and tests turn it on; it is off by default.
	AllowInsecureLoopback bool
	// MaxAttempts is the number of attempts per delivery. It must equal
	// the queue's maxReceiveCount, because the queue's redrive policy,
	// not this package, stops the attempts. Default 3.
	MaxAttempts int
	// RetryDelays holds the wait after each failed attempt but the last:
	// RetryDelays[0] after the first, RetryDelays[1] after the second.
	// WEBHOOK_RETRY_DELAYS sets it as Go durations separated by commas,
	// default "60s,600s". Each is from 1s to 12h, the SQS limits.
	RetryDelays []time.Duration
	// Timeout bounds one attempt: connecting, sending and reading the
	// response (WEBHOOK_TIMEOUT, a Go duration; default 10s).
	Timeout time.Duration
	// RotationOverlap is how long the previous secret keeps signing
	// deliveries after a rotation. Default 24h.
	RotationOverlap time.Duration
	// DisableAfterFailures and DisableAfterPeriod set the automatic
	// disabling rule: an endpoint is disabled when at least
	// DisableAfterFailures deliveries in a row have failed and the first
	// of them failed at least DisableAfterPeriod before the latest.
	// Defaults 10 and 24h.
	DisableAfterFailures int
	DisableAfterPeriod   time.Duration
	// MaxEndpoints is the number of endpoints a workspace may have.
	// Default 20.
	MaxEndpoints int
}

// maxVisibilityDelay is the longest visibility timeout SQS accepts.
const maxVisibilityDelay = 12 * time.Hour

// DefaultConfig returns the defaults, without a queue URL.
func DefaultConfig() Config {
	return Config{
		MaxAttempts:          3,
		RetryDelays:          []time.Duration{60 * time.Second, 600 * time.Second},
		Timeout:              10 * time.Second,
		RotationOverlap:      24 * time.Hour,
		DisableAfterFailures: 10,
		DisableAfterPeriod:   24 * time.Hour,
		MaxEndpoints:         20,
	}
}

// ConfigFromEnv returns DefaultConfig with the values that getenv (such as
// os.Getenv) returns for the variables named on Config's fields.
// WEBHOOK_DELIVERIES_QUEUE_URL is required.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	cfg.QueueURL = getenv("WEBHOOK_DELIVERIES_QUEUE_URL")

	if raw := getenv("WEBHOOK_ALLOW_INSECURE_LOOPBACK"); raw != "" {
		on, err := strconv.ParseBool(raw)
		if err != nil {
			return Config{}, fmt.Errorf("environment variable WEBHOOK_ALLOW_INSECURE_LOOPBACK=%q must be true or false", raw)
		}
		cfg.AllowInsecureLoopback = on
	}
	if raw := getenv("WEBHOOK_RETRY_DELAYS"); raw != "" {
		cfg.RetryDelays = nil
		for _, part := range strings.Split(raw, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil {
				return Config{}, fmt.Errorf("environment variable WEBHOOK_RETRY_DELAYS=%q must be Go durations separated by commas, such as 60s,600s", raw)
			}
			cfg.RetryDelays = append(cfg.RetryDelays, d)
		}
	}
	if raw := getenv("WEBHOOK_TIMEOUT"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return Config{}, fmt.Errorf("environment variable WEBHOOK_TIMEOUT=%q must be a Go duration such as 10s", raw)
		}
		cfg.Timeout = d
	}

	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first setting that is missing or out of range.
func (c Config) Validate() error {
	switch {
	case c.QueueURL == "":
		return fmt.Errorf("webhooks config: the queue URL is not set; set WEBHOOK_DELIVERIES_QUEUE_URL to the URL of the webhook deliveries queue")
	case c.MaxAttempts < 1:
		return fmt.Errorf("webhooks config: MaxAttempts is %d; it must be at least 1 and equal the queue's maxReceiveCount", c.MaxAttempts)
	case len(c.RetryDelays) < c.MaxAttempts-1:
		return fmt.Errorf("webhooks config: %d retry delays for %d attempts; give one delay per attempt but the last", len(c.RetryDelays), c.MaxAttempts)
	case c.Timeout <= 0 || c.Timeout > 5*time.Minute:
		return fmt.Errorf("webhooks config: timeout %s must be positive and at most 5m", c.Timeout)
	case c.RotationOverlap < 0:
		return fmt.Errorf("webhooks config: rotation overlap %s must not be negative", c.RotationOverlap)
	case c.DisableAfterFailures < 1 || c.DisableAfterPeriod < 0:
		return fmt.Errorf("webhooks config: the disabling rule needs at least 1 failure and a period of 0 or more, not %d and %s", c.DisableAfterFailures, c.DisableAfterPeriod)
	case c.MaxEndpoints < 1:
		return fmt.Errorf("webhooks config: MaxEndpoints is %d; it must be at least 1", c.MaxEndpoints)
	}
	for i, d := range c.RetryDelays {
		if d < time.Second || d > maxVisibilityDelay {
			return fmt.Errorf("webhooks config: retry delay %d is %s; it must be from 1s to 12h, as SQS visibility timeouts are whole seconds up to 12 hours", i+1, d)
		}
	}
	return nil
}

// retryDelay returns the wait after the failed attempt that came with the
// receiveCount-th receive of the message, or 0 when no delay is set.
func (c Config) retryDelay(receiveCount int) time.Duration {
	if len(c.RetryDelays) == 0 {
		return 0
	}
	i := min(max(receiveCount, 1), len(c.RetryDelays)) - 1
	return c.RetryDelays[i]
}
