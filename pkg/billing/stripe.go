package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// StripeProvider takes payments with Stripe Checkout: a purchase creates a
// Checkout Session, and the purchase completes when Stripe's webhook
// reports the session paid.
type StripeProvider struct {
	client        *stripe.Client
	successURL    string
	cancelURL     string
	webhookSecret string
}

// NewStripeProvider returns a Stripe provider. httpClient carries the API
// requests, and nil means a client with a 30 second timeout.
func NewStripeProvider(cfg StripeConfig, httpClient *http.Client) (*StripeProvider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new stripe provider: %w", err)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	backend := &stripe.BackendConfig{
		HTTPClient: httpClient,
		// The service logs failures itself, without request bodies.
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(2),
	}
	if cfg.APIURL != "" {
		backend.URL = stripe.String(strings.TrimRight(cfg.APIURL, "/"))
	}
	return &StripeProvider{
		client:        stripe.NewClient(cfg.SecretKey, stripe.WithBackends(stripe.NewBackendsWithConfig(backend))),
		successURL:    cfg.SuccessURL,
		cancelURL:     cfg.CancelURL,
		webhookSecret: cfg.WebhookSecret,
	}, nil
}

// Name returns ProviderStripe.
func (p *StripeProvider) Name() string { return ProviderStripe }

// Metadata keys set on every Checkout Session.
const (
	metadataPurchaseID  = "purchase_id"
	metadataWorkspaceID = "workspace_id"
	metadataPackID      = "pack_id"
)

// StartCheckout creates a Checkout Session in payment mode for the pack,
// with the purchase id as client_reference_id and idempotency key.
func (p *StripeProvider) StartCheckout(ctx context.Context, c Checkout) (CheckoutSession, error) {
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		ClientReferenceID: stripe.String(c.PurchaseID),
		SuccessURL:        stripe.String(p.successURL),
		CancelURL:         stripe.String(p.cancelURL),
		LineItems: []*stripe.CheckoutSessionCreateLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionCreateLineItemPriceDataParams{
				Currency:   stripe.String(strings.ToLower(c.Pack.Currency)),
				UnitAmount: stripe.Int64(c.Pack.Price),
				ProductData: &stripe.CheckoutSessionCreateLineItemPriceDataProductDataParams{
					Name: stripe.String(lineItemDescription(c.Pack.Name, c.Pack.Credits)),
				},
			},
		}},
		Metadata: map[string]string{
			metadataPurchaseID:  c.PurchaseID,
			metadataWorkspaceID: c.WorkspaceID,
			metadataPackID:      c.Pack.ID,
		},
	}
	if c.BuyerEmail != "" {
		params.CustomerEmail = stripe.String(c.BuyerEmail)
	}
	params.SetIdempotencyKey(c.PurchaseID)

	sess, err := p.client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return CheckoutSession{}, fmt.Errorf("create stripe checkout session for purchase %s: %w", c.PurchaseID, err)
	}
	if sess.ID == "" || sess.URL == "" {
		return CheckoutSession{}, fmt.Errorf("create stripe checkout session for purchase %s: the response has no id or url", c.PurchaseID)
	}
	return CheckoutSession{Reference: sess.ID, URL: sess.URL, Test: !sess.Livemode}, nil
}

// stripeSession is the part of a Checkout Session object that completing a
// purchase reads from a webhook event.
type stripeSession struct {
	ID                string            `json:"id"`
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	PaymentStatus     string            `json:"payment_status"`
	AmountTotal       int64             `json:"amount_total"`
	Currency          string            `json:"currency"`
	Livemode          bool              `json:"livemode"`
}

// paidSession returns the Checkout Session of a webhook payload after
// checking its Stripe-Signature header, and whether the event reports the
// session paid. Events of other types return ok false.
//
// Errors: Invalid (invalid_signature) for a missing, malformed, forged or
// stale signature, or a payload that is not an event.
func (p *StripeProvider) paidSession(payload []byte, signature string) (stripeSession, string, bool, error) {
	// The API version check is skipped because only a few long-stable
	// fields of the session are read, and an endpoint created on an older
	// version must still complete purchases.
	event, err := webhook.ConstructEventWithOptions(payload, signature, p.webhookSecret, webhook.ConstructEventOptions{
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		return stripeSession{}, "", false, invalidSignature(err)
	}

	switch event.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
	default:
		return stripeSession{}, string(event.Type), false, nil
	}
	if event.Data == nil {
		return stripeSession{}, string(event.Type), false, apperr.New(apperr.Invalid, "Stripe event %s has no data object.", event.ID).WithReason("invalid_event")
	}
	var sess stripeSession
	if err := json.Unmarshal(event.Data.Raw, &sess); err != nil {
		return stripeSession{}, string(event.Type), false, apperr.New(apperr.Invalid, "Stripe event %s does not hold a Checkout Session: %v.", event.ID, err).WithReason("invalid_event")
	}
	// A session paid by a delayed method completes with payment_status
	// "unpaid" and is paid later, in checkout.session.async_payment_succeeded.
	paid := sess.PaymentStatus == "paid" || sess.PaymentStatus == "no_payment_required"
	return sess, string(event.Type), paid, nil
}

func invalidSignature(err error) error {
	detail := "does not match the payload"
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		detail = "is missing"
	case errors.Is(err, webhook.ErrInvalidHeader):
		detail = "is malformed"
	case errors.Is(err, webhook.ErrTooOld):
		detail = "has a timestamp outside the 5 minute tolerance"
	case !errors.Is(err, webhook.ErrNoValidSignature):
		detail = "was checked, but the payload is not a Stripe event"
	}
	return &apperr.Error{Code: apperr.Invalid, Reason: "invalid_signature", Field: "Stripe-Signature",
		Message: fmt.Sprintf("The Stripe-Signature header %s; the webhook was not processed.", detail)}
}

func lineItemDescription(packName string, credits int64) string {
	return fmt.Sprintf("%s credit pack: %d credits", packName, credits)
}
