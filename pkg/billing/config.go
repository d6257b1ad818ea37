package billing

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Provider names, the values of Config.Provider and of a purchase's
// provider field.
const (
	ProviderTest   = "test"
	ProviderStripe = "stripe"
)

// Config holds the billing rules that operators set.
type Config struct {
	// StartingCredits is the balance of a new workspace's wallet
	// (BILLING_STARTING_CREDITS).
	StartingCredits int64
	// LowBalanceThreshold is a new wallet's low-balance threshold
	// (BILLING_LOW_BALANCE_THRESHOLD). Each workspace can change its own.
	LowBalanceThreshold int64
	// Packs are the credit packs on sale (BILLING_PACKS, a JSON array of
	// objects with id, name, credits, price and currency).
	Packs []Pack
	// Seller is the party that issues the invoices.
	Seller Seller
	// Provider selects the payment provider: ProviderTest or ProviderStripe
	// (BILLING_PROVIDER).
	Provider string
	// Stripe configures the Stripe provider, which is used only when
	// Provider is ProviderStripe.
	Stripe StripeConfig
}

// Pack is a number of credits sold at a fixed price.
type Pack struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Credits int64  `json:"credits"`
	// Price is in the currency's minor unit, such as cents.
	Price int64 `json:"price"`
	// Currency is an ISO 4217 code in upper case, such as "USD".
	Currency string `json:"currency"`
}

// Seller is the company named on invoices.
type Seller struct {
	// ID names the seller's invoice number sequence (BILLING_SELLER_ID).
	// Changing it starts a new sequence.
	ID string
	// Name is the seller's legal name (BILLING_SELLER_NAME).
	Name string
	// Address holds the postal address, one line per element
	// (BILLING_SELLER_ADDRESS, lines separated by "\n" or "|").
	Address []string
	// TaxID is the seller's VAT or tax number, printed when set
	// (BILLING_SELLER_TAX_ID).
	TaxID string
	// InvoicePrefix starts every invoice number, as in "INV-000042"
	// (BILLING_INVOICE_PREFIX).
	InvoicePrefix string
}

// StripeConfig configures Stripe Checkout. The keys are secrets: they are
// read from the environment and never logged.
type StripeConfig struct {
	// SecretKey is the API secret key, "sk_live_..." or "sk_test_..."
	// (STRIPE_SECRET_KEY).
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint,
	// "whsec_..." (STRIPE_WEBHOOK_SECRET).
	WebhookSecret string
	// SuccessURL and CancelURL are where Checkout sends the buyer after
	// paying or giving up (STRIPE_SUCCESS_URL, STRIPE_CANCEL_URL). The text
	// {CHECKOUT_SESSION_ID} in them is replaced by Stripe.
	SuccessURL string
	CancelURL  string
	// APIURL is the base URL of Stripe's API (STRIPE_API_URL). Empty means
	// https://api.stripe.com. Tests point it at a local server.
	APIURL string
}

// DefaultConfig returns the defaults for local runs: the test provider, a
// starting grant of 10 credits, a threshold of 5 and three packs in USD.
func DefaultConfig() Config {
	return Config{
		StartingCredits:     10,
		LowBalanceThreshold: 5,
		Packs: []Pack{
			{ID: "starter", Name: "Starter", Credits: 50, Price: 2500, Currency: "USD"},
			{ID: "team", Name: "Team", Credits: 250, Price: 10000, Currency: "USD"},
			{ID: "business", Name: "Business", Credits: 1000, Price: 35000, Currency: "USD"},
		},
		Seller: Seller{
			ID:            "signsecure",
			Name:          "SignSecure (test seller)",
			Address:       []string{"No address configured"},
			InvoicePrefix: "INV",
		},
		Provider: ProviderTest,
	}
}

// ConfigFromEnv returns DefaultConfig with the values that getenv (such as
// os.Getenv) returns for the variables named on Config's fields. The Stripe
// provider needs STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET,
// STRIPE_SUCCESS_URL, STRIPE_CANCEL_URL, BILLING_SELLER_NAME and
// BILLING_SELLER_ADDRESS, because its invoices are for real payments.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()

	for _, v := range []struct {
		name string
		dst  *int64
	}{
		{"BILLING_STARTING_CREDITS", &cfg.StartingCredits},
		{"BILLING_LOW_BALANCE_THRESHOLD", &cfg.LowBalanceThreshold},
	} {
		raw := getenv(v.name)
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 || n > maxCredits {
			return Config{}, fmt.Errorf("environment variable %s=%q must be a whole number from 0 to %d", v.name, raw, maxCredits)
		}
		*v.dst = n
	}

	if raw := getenv("BILLING_PACKS"); raw != "" {
		var packs []Pack
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&packs); err != nil {
			return Config{}, fmt.Errorf("environment variable BILLING_PACKS must be a JSON array of {id, name, credits, price, currency}: %w", err)
		}
		cfg.Packs = packs
	}

	if raw := getenv("BILLING_PROVIDER"); raw != "" {
		cfg.Provider = raw
	}
	if cfg.Provider == ProviderStripe {
		// A real provider issues real invoices, so the placeholder seller
		// of DefaultConfig must not appear on them.
		cfg.Seller.Name, cfg.Seller.Address = "", nil
	}
	setString(&cfg.Seller.ID, getenv("BILLING_SELLER_ID"))
	setString(&cfg.Seller.Name, getenv("BILLING_SELLER_NAME"))
	setString(&cfg.Seller.TaxID, getenv("BILLING_SELLER_TAX_ID"))
	setString(&cfg.Seller.InvoicePrefix, getenv("BILLING_INVOICE_PREFIX"))
	if raw := getenv("BILLING_SELLER_ADDRESS"); raw != "" {
		cfg.Seller.Address = splitAddress(raw)
	}

	cfg.Stripe = StripeConfig{
		SecretKey:     getenv("STRIPE_SECRET_KEY"),
		WebhookSecret: getenv("STRIPE_WEBHOOK_SECRET"),
		SuccessURL:    getenv("STRIPE_SUCCESS_URL"),
		CancelURL:     getenv("STRIPE_CANCEL_URL"),
		APIURL:        getenv("STRIPE_API_URL"),
	}

	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func splitAddress(raw string) []string {
	var lines []string
	for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\n' || r == '|' }) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// maxCredits bounds balances, thresholds and pack sizes, far below the
// 2^53 limit where DynamoDB numbers decoded into float64 lose precision.
const maxCredits = 1_000_000_000_000

var (
	packIDPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	sellerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	prefixPattern   = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,15}$`)
)

// Validate returns an error that names the first invalid setting.
func (c Config) Validate() error {
	if c.StartingCredits < 0 || c.StartingCredits > maxCredits {
		return fmt.Errorf("billing config: starting credits %d must be from 0 to %d", c.StartingCredits, maxCredits)
	}
	if c.LowBalanceThreshold < 0 || c.LowBalanceThreshold > maxCredits {
		return fmt.Errorf("billing config: low-balance threshold %d must be from 0 to %d", c.LowBalanceThreshold, maxCredits)
	}
	if err := validatePacks(c.Packs); err != nil {
		return err
	}
	if err := c.Seller.validate(); err != nil {
		return err
	}
	switch c.Provider {
	case ProviderTest:
	case ProviderStripe:
		if err := c.Stripe.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("billing config: provider %q is unknown; use %q or %q", c.Provider, ProviderTest, ProviderStripe)
	}
	return nil
}

func validatePacks(packs []Pack) error {
	if len(packs) == 0 {
		return fmt.Errorf("billing config: no credit packs are configured")
	}
	seen := map[string]bool{}
	for i, p := range packs {
		switch {
		case !packIDPattern.MatchString(p.ID):
			return fmt.Errorf("billing config: pack %d id %q must be 1 to 40 lowercase letters, digits, '-' or '_'", i, p.ID)
		case seen[p.ID]:
			return fmt.Errorf("billing config: pack id %q appears twice", p.ID)
		case strings.TrimSpace(p.Name) == "":
			return fmt.Errorf("billing config: pack %q has no name", p.ID)
		case p.Credits <= 0 || p.Credits > maxCredits:
			return fmt.Errorf("billing config: pack %q credits %d must be from 1 to %d", p.ID, p.Credits, maxCredits)
		case p.Price <= 0 || p.Price > maxCredits:
			return fmt.Errorf("billing config: pack %q price %d must be from 1 to %d minor units", p.ID, p.Price, maxCredits)
		case !currencyPattern.MatchString(p.Currency):
			return fmt.Errorf("billing config: pack %q currency %q must be an upper-case ISO 4217 code such as USD", p.ID, p.Currency)
		}
		seen[p.ID] = true
	}
	return nil
}

func (s Seller) validate() error {
	switch {
	case !sellerIDPattern.MatchString(s.ID):
		return fmt.Errorf("billing config: seller id %q must be 1 to 40 lowercase letters, digits, '-' or '_'", s.ID)
	case strings.TrimSpace(s.Name) == "":
		return fmt.Errorf("billing config: the seller name is not set; set BILLING_SELLER_NAME")
	case len(s.Address) == 0:
		return fmt.Errorf("billing config: the seller address is not set; set BILLING_SELLER_ADDRESS")
	case !prefixPattern.MatchString(s.InvoicePrefix):
		return fmt.Errorf("billing config: invoice prefix %q must be 1 to 16 upper-case letters, digits or '-'", s.InvoicePrefix)
	}
	return nil
}

func (s StripeConfig) validate() error {
	switch {
	case !strings.HasPrefix(s.SecretKey, "sk_") && !strings.HasPrefix(s.SecretKey, "rk_"):
		return fmt.Errorf("billing config: STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_... or rk_...)")
	case !strings.HasPrefix(s.WebhookSecret, "whsec_"):
		return fmt.Errorf("billing config: STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_...)")
	}
	for name, raw := range map[string]string{"STRIPE_SUCCESS_URL": s.SuccessURL, "STRIPE_CANCEL_URL": s.CancelURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("billing config: %s=%q must be an absolute http or https URL", name, raw)
		}
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("billing config: STRIPE_API_URL=%q must be an absolute http or https URL", s.APIURL)
		}
	}
	return nil
}

// pack returns the pack with the id.
func (c Config) pack(id string) (Pack, bool) {
	for _, p := range c.Packs {
		if p.ID == id {
			return p, true
		}
	}
	return Pack{}, false
}
