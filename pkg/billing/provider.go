package billing

import (
	"context"
	"fmt"
	"net/http"
)

// Provider takes the payment for a purchase.
type Provider interface {
	// Name returns the name stored on purchases: ProviderTest or
	// ProviderStripe.
	Name() string
	// StartCheckout starts the payment of a purchase that is not yet
	// stored. It is called once per purchase id, and a provider that calls
	// an API sends the purchase id as the idempotency key.
	StartCheckout(ctx context.Context, c Checkout) (CheckoutSession, error)
}

// Checkout holds the purchase details that a provider charges for.
type Checkout struct {
	PurchaseID  string
	WorkspaceID string
	Pack        Pack
	// BuyerEmail prefills the payment page.
	BuyerEmail string
}

// CheckoutSession is the result of StartCheckout: a payment started or
// already completed.
type CheckoutSession struct {
	// Reference is the provider's id for the payment.
	Reference string
	// URL is the payment page to send the buyer to, empty when Paid.
	URL string
	// Paid is true when the payment completed at once, so the purchase
	// completes in the same request.
	Paid bool
	// Test is true when no real money moves.
	Test bool
}

// TestProvider is the local payment provider: every checkout is paid at
// once, and the purchase is marked as a test.
type TestProvider struct{}

// Name returns ProviderTest.
func (TestProvider) Name() string { return ProviderTest }

// StartCheckout returns a paid test session.
func (TestProvider) StartCheckout(_ context.Context, c Checkout) (CheckoutSession, error) {
	return CheckoutSession{Reference: "test_" + c.PurchaseID, Paid: true, Test: true}, nil
}

// NewProvider returns the provider that cfg.Provider names. httpClient
// carries Stripe's API requests, and nil means a client with a 30 second
// timeout.
func NewProvider(cfg Config, httpClient *http.Client) (Provider, error) {
	switch cfg.Provider {
	case ProviderTest:
		return TestProvider{}, nil
	case ProviderStripe:
		return NewStripeProvider(cfg.Stripe, httpClient)
	default:
		return nil, fmt.Errorf("new payment provider: %q is unknown; use %q or %q", cfg.Provider, ProviderTest, ProviderStripe)
	}
}
