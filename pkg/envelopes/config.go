package envelopes

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MinSigningKeyBytes is the shortest signing token key accepted.
const MinSigningKeyBytes = 32

// Config holds the envelope rules that operators set.
type Config struct {
	// SendCost is the number of credits that sending one envelope takes
	// from the workspace's wallet (ENVELOPE_SEND_COST, default 1). Zero
	// makes sending free.
	SendCost int64
	// SigningKey derives the signing tokens (SIGNING_TOKEN_KEY, the base64
	// of at least 32 random bytes). The function that sends the signing
	// emails needs the same key to rebuild the links. Changing it makes the
	// links of envelopes in progress impossible to rebuild.
	SigningKey []byte
	// SigningBaseURL is the URL that a signing link appends its token to
	// (SIGNING_BASE_URL), such as "https://app.example.com/sign". The
	// default is the local API's signing route.
	SigningBaseURL string
	// SigningLinkTTL is how long a signing link works after its signer's
	// turn begins (SIGNING_LINK_TTL, a Go duration, default 2160h = 90 days).
	SigningLinkTTL time.Duration
}

// DefaultConfig returns the defaults for local runs: sending costs 1
// credit, links point at the local API and last 90 days. It has no signing
// key; set one before use.
func DefaultConfig() Config {
	return Config{
		SendCost:       1,
		SigningBaseURL: "http://127.0.0.1:3000/v1/signing",
		SigningLinkTTL: 90 * 24 * time.Hour,
	}
}

// ConfigFromEnv returns DefaultConfig with the values that getenv (such as
// os.Getenv) returns for the variables named on Config's fields.
// SIGNING_TOKEN_KEY is required.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()

	if raw := getenv("ENVELOPE_SEND_COST"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 || n > maxSendCost {
			return Config{}, fmt.Errorf("environment variable ENVELOPE_SEND_COST=%q must be a whole number from 0 to %d", raw, maxSendCost)
		}
		cfg.SendCost = n
	}

	key, err := base64.StdEncoding.DecodeString(getenv("SIGNING_TOKEN_KEY"))
	if err != nil || len(key) < MinSigningKeyBytes {
		return Config{}, fmt.Errorf("environment variable SIGNING_TOKEN_KEY must be the base64 of at least %d random bytes", MinSigningKeyBytes)
	}
	cfg.SigningKey = key

	if raw := getenv("SIGNING_BASE_URL"); raw != "" {
		cfg.SigningBaseURL = raw
	}
	if raw := getenv("SIGNING_LINK_TTL"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return Config{}, fmt.Errorf("environment variable SIGNING_LINK_TTL=%q must be a Go duration such as 720h", raw)
		}
		cfg.SigningLinkTTL = d
	}

	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// maxSendCost bounds the cost of sending, as billing bounds every amount.
const maxSendCost = 1_000_000

// Validate returns an error that names the first invalid setting.
func (c Config) Validate() error {
	if c.SendCost < 0 || c.SendCost > maxSendCost {
		return fmt.Errorf("envelopes config: send cost %d must be from 0 to %d credits", c.SendCost, maxSendCost)
	}
	if len(c.SigningKey) < MinSigningKeyBytes {
		return fmt.Errorf("envelopes config: the signing key has %d bytes, need at least %d; set SIGNING_TOKEN_KEY", len(c.SigningKey), MinSigningKeyBytes)
	}
	u, err := url.Parse(c.SigningBaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("envelopes config: signing base URL %q must be an absolute http or https URL without query or fragment", c.SigningBaseURL)
	}
	if c.SigningLinkTTL < time.Hour {
		return fmt.Errorf("envelopes config: signing link TTL %s must be at least 1h", c.SigningLinkTTL)
	}
	return nil
}
