package billing

import (
	"reflect"
	"strings"
	"testing"
)

func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func stripeEnv() map[string]string {
	return map[string]string{
		"BILLING_PROVIDER":       "stripe",
		"STRIPE_SECRET_KEY":      "sk_live_abc",
		"STRIPE_WEBHOOK_SECRET":  "whsec_abc",
		"STRIPE_SUCCESS_URL":     "https://app.example.com/done",
		"STRIPE_CANCEL_URL":      "https://app.example.com/cancel",
		"BILLING_SELLER_NAME":    "SignSecure Lda",
		"BILLING_SELLER_ADDRESS": "Rua Augusta 1 | 1100-048 Lisboa\nPortugal",
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("config = %+v; want DefaultConfig", cfg)
	}
	if cfg.Provider != ProviderTest {
		t.Errorf("provider = %q; want the test provider", cfg.Provider)
	}
}

func TestConfigFromEnvValues(t *testing.T) {
	env := stripeEnv()
	env["BILLING_STARTING_CREDITS"] = "25"
	env["BILLING_LOW_BALANCE_THRESHOLD"] = "0"
	env["BILLING_PACKS"] = `[{"id":"solo","name":"Solo","credits":20,"price":1900,"currency":"EUR"}]`
	env["BILLING_SELLER_TAX_ID"] = "PT123"
	env["BILLING_INVOICE_PREFIX"] = "SS-2026"

	cfg, err := ConfigFromEnv(envOf(env))
	if err != nil {
		t.Fatal(err)
	}

	if cfg.StartingCredits != 25 || cfg.LowBalanceThreshold != 0 {
		t.Errorf("grant, threshold = %d, %d; want 25, 0", cfg.StartingCredits, cfg.LowBalanceThreshold)
	}
	if want := []Pack{{ID: "solo", Name: "Solo", Credits: 20, Price: 1900, Currency: "EUR"}}; !reflect.DeepEqual(cfg.Packs, want) {
		t.Errorf("packs = %+v; want %+v", cfg.Packs, want)
	}
	if want := []string{"Rua Augusta 1", "1100-048 Lisboa", "Portugal"}; !reflect.DeepEqual(cfg.Seller.Address, want) {
		t.Errorf("address = %q; want %q", cfg.Seller.Address, want)
	}
	if cfg.Seller.Name != "SignSecure Lda" || cfg.Seller.TaxID != "PT123" || cfg.Seller.InvoicePrefix != "SS-2026" {
		t.Errorf("seller = %+v", cfg.Seller)
	}
	if cfg.Provider != ProviderStripe || cfg.Stripe.SecretKey != "sk_live_abc" || cfg.Stripe.WebhookSecret != "whsec_abc" {
		t.Errorf("provider = %q, stripe = %+v", cfg.Provider, cfg.Stripe)
	}
}

func TestConfigFromEnvRejects(t *testing.T) {
	tests := []struct {
		name    string
		change  func(env map[string]string)
		wantErr string
	}{
		{"negative grant", func(e map[string]string) { e["BILLING_STARTING_CREDITS"] = "-1" }, "BILLING_STARTING_CREDITS"},
		{"threshold not a number", func(e map[string]string) { e["BILLING_LOW_BALANCE_THRESHOLD"] = "five" }, "BILLING_LOW_BALANCE_THRESHOLD"},
		{"packs not JSON", func(e map[string]string) { e["BILLING_PACKS"] = "starter" }, "BILLING_PACKS"},
		{"pack with unknown field", func(e map[string]string) {
			e["BILLING_PACKS"] = `[{"id":"a","name":"A","credits":1,"price":1,"currency":"USD","tax":1}]`
		}, "BILLING_PACKS"},
		{"no packs", func(e map[string]string) { e["BILLING_PACKS"] = `[]` }, "no credit packs"},
		{"duplicate pack", func(e map[string]string) {
			e["BILLING_PACKS"] = `[{"id":"a","name":"A","credits":1,"price":1,"currency":"USD"},{"id":"a","name":"B","credits":2,"price":2,"currency":"USD"}]`
		}, "twice"},
		{"lowercase currency", func(e map[string]string) {
			e["BILLING_PACKS"] = `[{"id":"a","name":"A","credits":1,"price":1,"currency":"usd"}]`
		}, "currency"},
		{"zero credits", func(e map[string]string) {
			e["BILLING_PACKS"] = `[{"id":"a","name":"A","credits":0,"price":1,"currency":"USD"}]`
		}, "credits"},
		{"unknown provider", func(e map[string]string) { e["BILLING_PROVIDER"] = "paypal" }, "paypal"},
		{"stripe without key", func(e map[string]string) { delete(e, "STRIPE_SECRET_KEY") }, "STRIPE_SECRET_KEY"},
		{"stripe with publishable key", func(e map[string]string) { e["STRIPE_SECRET_KEY"] = "pk_live_abc" }, "STRIPE_SECRET_KEY"},
		{"stripe without webhook secret", func(e map[string]string) { delete(e, "STRIPE_WEBHOOK_SECRET") }, "STRIPE_WEBHOOK_SECRET"},
		{"stripe with relative success URL", func(e map[string]string) { e["STRIPE_SUCCESS_URL"] = "/done" }, "STRIPE_SUCCESS_URL"},
		{"stripe without seller name", func(e map[string]string) { delete(e, "BILLING_SELLER_NAME") }, "BILLING_SELLER_NAME"},
		{"stripe without seller address", func(e map[string]string) { delete(e, "BILLING_SELLER_ADDRESS") }, "BILLING_SELLER_ADDRESS"},
		{"bad invoice prefix", func(e map[string]string) { e["BILLING_INVOICE_PREFIX"] = "inv 1" }, "invoice prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := stripeEnv()
			tt.change(env)
			_, err := ConfigFromEnv(envOf(env))
			if err == nil {
				t.Fatal("ConfigFromEnv accepted the configuration")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q; want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sk_live_abc") || strings.Contains(err.Error(), "whsec_abc") {
				t.Errorf("error %q reveals a secret", err)
			}
		})
	}
}
