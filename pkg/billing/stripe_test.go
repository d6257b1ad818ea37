package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
)

const (
	testStripeKey     = "sk_test_51FakeKeyForLocalTests"
	testWebhookSecret = "whsec_local_test_secret"
)

// fakeStripe serves POST /v1/checkout/sessions as Stripe's API does. It
// takes form-encoded parameters, returns a Checkout Session object, and
// returns the same session again for a repeated Idempotency-Key.
type fakeStripe struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []url.Values
	headers  []http.Header
	sessions map[string]map[string]any // by idempotency key
	fail     bool
}

func newFakeStripe(t *testing.T) *fakeStripe {
	t.Helper()
	fs := &fakeStripe{t: t, sessions: map[string]map[string]any{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.srv.Close)
	return fs
}

// recorded returns the form and headers of each request so far.
func (fs *fakeStripe) recorded() ([]url.Values, []http.Header) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]url.Values(nil), fs.requests...), append([]http.Header(nil), fs.headers...)
}

func (fs *fakeStripe) setFail(fail bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.fail = fail
}

func (fs *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+testStripeKey {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/checkout/sessions" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL (%s: %s)"}}`, r.Method, r.URL.Path)
		return
	}
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"invalid form"}}`)
		return
	}

	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.requests = append(fs.requests, r.PostForm)
	fs.headers = append(fs.headers, r.Header.Clone())
	if fs.fail {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid currency: xxx"}}`)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	sess, ok := fs.sessions[key]
	if !ok {
		amount, _ := strconv.ParseInt(r.PostForm.Get("line_items[0][price_data][unit_amount]"), 10, 64)
		id := fmt.Sprintf("cs_test_%d", len(fs.sessions)+1)
		sess = map[string]any{
			"id":                  id,
			"object":              "checkout.session",
			"url":                 "https://checkout.stripe.com/c/pay/" + id,
			"livemode":            false,
			"mode":                r.PostForm.Get("mode"),
			"client_reference_id": r.PostForm.Get("client_reference_id"),
			"amount_total":        amount,
			"currency":            r.PostForm.Get("line_items[0][price_data][currency]"),
			"payment_status":      "unpaid",
			"status":              "open",
			"metadata": map[string]string{
				"purchase_id":  r.PostForm.Get("metadata[purchase_id]"),
				"workspace_id": r.PostForm.Get("metadata[workspace_id]"),
				"pack_id":      r.PostForm.Get("metadata[pack_id]"),
			},
		}
		fs.sessions[key] = sess
	}
	_ = json.NewEncoder(w).Encode(sess)
}

// paidEvent returns the payload of a Stripe event of the type whose object
// is the session created for the purchase, with the changes applied.
func (fs *fakeStripe) paidEvent(t *testing.T, typ, purchaseID string, change func(sess map[string]any)) []byte {
	t.Helper()
	fs.mu.Lock()
	base, ok := fs.sessions[purchaseID]
	fs.mu.Unlock()
	if !ok {
		t.Fatalf("no checkout session was created for %s", purchaseID)
	}
	sess := map[string]any{}
	for k, v := range base {
		sess[k] = v
	}
	sess["status"], sess["payment_status"] = "complete", "paid"
	if change != nil {
		change(sess)
	}
	payload, err := json.Marshal(map[string]any{
		"id":          "evt_test_" + purchaseID,
		"object":      "event",
		"api_version": "2024-06-20",
		"created":     time.Now().Unix(),
		"livemode":    false,
		"type":        typ,
		"data":        map[string]any{"object": sess},
	})
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// signStripe returns a Stripe-Signature header for the payload.
func signStripe(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

func newStripeFixture(t *testing.T) (*fixture, *fakeStripe) {
	t.Helper()
	fs := newFakeStripe(t)
	cfg := testConfig()
	cfg.Provider = ProviderStripe
	cfg.Stripe = StripeConfig{
		SecretKey:     testStripeKey,
		WebhookSecret: testWebhookSecret,
		SuccessURL:    "https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}",
		CancelURL:     "https://app.example.com/billing",
		APIURL:        fs.srv.URL,
	}
	provider, err := NewStripeProvider(cfg.Stripe, fs.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return newFixture(t, cfg, provider), fs
}

func TestStripeCheckoutCreatesPendingPurchase(t *testing.T) {
	f, fs := newStripeFixture(t)
	ws := f.newOrg(t, "Analytical Engines Ltd")
	buyer := f.newUser(t, "Ada Lovelace", "ada@example.com")

	p, err := f.svc.CreatePurchase(context.Background(), ws, buyer, "team")
	if err != nil {
		t.Fatal(err)
	}

	if p.Status != StatusPending || p.Provider != ProviderStripe || p.ProviderReference != "cs_test_1" {
		t.Errorf("purchase = %+v; want pending with Stripe session cs_test_1", p)
	}
	if p.CheckoutURL != "https://checkout.stripe.com/c/pay/cs_test_1" {
		t.Errorf("checkout_url = %q; want the session's url", p.CheckoutURL)
	}
	if !p.Test {
		t.Error("test = false; want true for a session that is not livemode")
	}
	if got := f.balance(t, ws); got != 10 {
		t.Errorf("balance = %d; want 10 until the payment completes", got)
	}

	requests, headers := fs.recorded()
	if len(requests) != 1 {
		t.Fatalf("Stripe got %d requests; want 1", len(requests))
	}
	form := requests[0]
	want := map[string]string{
		"mode":                                          "payment",
		"client_reference_id":                           p.ID,
		"metadata[purchase_id]":                         p.ID,
		"metadata[workspace_id]":                        ws,
		"metadata[pack_id]":                             "team",
		"line_items[0][quantity]":                       "1",
		"line_items[0][price_data][unit_amount]":        "10000",
		"line_items[0][price_data][currency]":           "usd",
		"line_items[0][price_data][product_data][name]": "Team credit pack: 250 credits",
		"customer_email":                                "ada@example.com",
		"success_url":                                   "https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}",
		"cancel_url":                                    "https://app.example.com/billing",
	}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("form %s = %q; want %q", k, got, v)
		}
	}
	if got := headers[0].Get("Idempotency-Key"); got != p.ID {
		t.Errorf("Idempotency-Key = %q; want the purchase id %q", got, p.ID)
	}
}

func TestStripeCheckoutFailureWritesNothing(t *testing.T) {
	f, fs := newStripeFixture(t)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	fs.setFail(true)
	before := f.countItems(t)

	_, err := f.svc.CreatePurchase(context.Background(), ws, ws, "starter")

	if err == nil || apperr.CodeOf(err) != apperr.Internal {
		t.Fatalf("err = %v; want an internal error", err)
	}
	if got := f.countItems(t); got != before {
		t.Errorf("table has %d items after Stripe failed; want %d", got, before)
	}
}

func TestStripeWebhookCompletesPurchase(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
	}{
		{"checkout completed", "checkout.session.completed"},
		{"delayed payment succeeded", "checkout.session.async_payment_succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fs := newStripeFixture(t)
			ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
			ctx := context.Background()
			p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
			if err != nil {
				t.Fatal(err)
			}
			payload := fs.paidEvent(t, tt.eventType, p.ID, nil)

			out, err := f.svc.HandleStripeWebhook(ctx, payload, signStripe(payload, testWebhookSecret, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if out.Action != "completed" || out.PurchaseID != p.ID {
				t.Errorf("outcome = %+v; want completed %s", out, p.ID)
			}
			got, err := f.svc.GetPurchase(ctx, ws, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusCompleted || got.InvoiceNumber != "INV-000001" || got.CheckoutURL != "" {
				t.Errorf("purchase = %+v; want completed with INV-000001 and no checkout_url", got)
			}
			if bal := f.balance(t, ws); bal != 60 {
				t.Errorf("balance = %d; want 60", bal)
			}
		})
	}
}

func TestStripeWebhookReplayCreditsOnce(t *testing.T) {
	f, fs := newStripeFixture(t)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}
	payload := fs.paidEvent(t, "checkout.session.completed", p.ID, nil)

	var actions []string
	for range 3 {
		out, err := f.svc.HandleStripeWebhook(ctx, payload, signStripe(payload, testWebhookSecret, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, out.Action)
	}

	if strings.Join(actions, ",") != "completed,already_completed,already_completed" {
		t.Errorf("actions = %v; want completed once, then already_completed", actions)
	}
	checkCreditedOnce(t, f, ws)
}

func TestStripeWebhookConcurrentDuplicatesCreditOnce(t *testing.T) {
	f, fs := newStripeFixture(t)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}
	payload := fs.paidEvent(t, "checkout.session.completed", p.ID, nil)
	signature := signStripe(payload, testWebhookSecret, time.Now())

	const deliveries = 10
	var wg sync.WaitGroup
	outcomes := make([]WebhookOutcome, deliveries)
	errs := make([]error, deliveries)
	start := make(chan struct{})
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outcomes[i], errs[i] = f.svc.HandleStripeWebhook(ctx, payload, signature)
		}()
	}
	close(start)
	wg.Wait()

	completed := 0
	for i := range deliveries {
		if errs[i] != nil {
			t.Errorf("delivery %d: %v", i, errs[i])
			continue
		}
		switch outcomes[i].Action {
		case "completed":
			completed++
		case "already_completed":
		default:
			t.Errorf("delivery %d: action %q", i, outcomes[i].Action)
		}
	}
	if completed != 1 {
		t.Errorf("%d deliveries completed the purchase; want 1", completed)
	}
	checkCreditedOnce(t, f, ws)
}

// checkCreditedOnce checks that the workspace's one purchase of 50 credits
// was credited once: balance, ledger, event and invoice counter.
func checkCreditedOnce(t *testing.T, f *fixture, ws string) {
	t.Helper()
	if got := f.balance(t, ws); got != 60 {
		t.Errorf("balance = %d; want 10 + 50 once", got)
	}
	entries := f.ledger(t, ws)
	if len(entries) != 2 {
		t.Errorf("ledger has %d entries; want the grant and one purchase", len(entries))
	}
	if got := ledgerSum(entries); got != 60 {
		t.Errorf("ledger sum = %d; want 60", got)
	}
	if n := len(f.eventsOfType(t, events.PurchaseCompleted)); n != 1 {
		t.Errorf("%d %s events; want 1", n, events.PurchaseCompleted)
	}
	counter, _, err := f.svc.readCounter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counter.Last != 1 {
		t.Errorf("invoice counter = %d; want 1", counter.Last)
	}
}

func TestStripeWebhookRejectsBadSignature(t *testing.T) {
	f, fs := newStripeFixture(t)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}
	payload := fs.paidEvent(t, "checkout.session.completed", p.ID, nil)
	tampered := []byte(strings.Replace(string(payload), `"amount_total":2500`, `"amount_total":1`, 1))

	tests := []struct {
		name      string
		payload   []byte
		signature string
	}{
		{"forged with another secret", payload, signStripe(payload, "whsec_attacker", time.Now())},
		{"stale timestamp", payload, signStripe(payload, testWebhookSecret, time.Now().Add(-10*time.Minute))},
		{"missing header", payload, ""},
		{"malformed header", payload, "v1=deadbeef=="},
		{"payload changed after signing", tampered, signStripe(payload, testWebhookSecret, time.Now())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.HandleStripeWebhook(ctx, tt.payload, tt.signature)
			ae := wantCode(t, err, apperr.Invalid, "invalid_signature")
			if ae.Field != "Stripe-Signature" {
				t.Errorf("field = %q; want Stripe-Signature", ae.Field)
			}
			got, err := f.svc.GetPurchase(ctx, ws, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusPending {
				t.Errorf("status = %q; want pending", got.Status)
			}
		})
	}
	if got := f.balance(t, ws); got != 10 {
		t.Errorf("balance = %d; want 10", got)
	}
}

func TestStripeWebhookIgnoresEventsThatPayNothing(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
		change    func(sess map[string]any)
	}{
		{"unpaid delayed payment", "checkout.session.completed", func(s map[string]any) { s["payment_status"] = "unpaid" }},
		{"other event type", "checkout.session.expired", nil},
		{"amount differs", "checkout.session.completed", func(s map[string]any) { s["amount_total"] = 1 }},
		{"currency differs", "checkout.session.completed", func(s map[string]any) { s["currency"] = "eur" }},
		{"other session", "checkout.session.completed", func(s map[string]any) { s["id"] = "cs_test_other" }},
		{"unknown purchase", "checkout.session.completed", func(s map[string]any) { s["client_reference_id"] = "pur_01jf3k8x2q7m9v4n5b6c7d8e9f" }},
		{"no purchase reference", "checkout.session.completed", func(s map[string]any) { delete(s, "client_reference_id") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fs := newStripeFixture(t)
			ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
			ctx := context.Background()
			p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
			if err != nil {
				t.Fatal(err)
			}
			payload := fs.paidEvent(t, tt.eventType, p.ID, tt.change)

			out, err := f.svc.HandleStripeWebhook(ctx, payload, signStripe(payload, testWebhookSecret, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			if out.Action != "ignored" {
				t.Errorf("action = %q; want ignored", out.Action)
			}
			got, err := f.svc.GetPurchase(ctx, ws, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != StatusPending {
				t.Errorf("status = %q; want pending", got.Status)
			}
			if bal := f.balance(t, ws); bal != 10 {
				t.Errorf("balance = %d; want 10", bal)
			}
		})
	}
}

func TestStripeWebhookWithTestProvider(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	_, err := f.svc.HandleStripeWebhook(context.Background(), []byte(`{}`), "t=1,v1=00")
	wantCode(t, err, apperr.NotFound, "stripe_not_enabled")
}
