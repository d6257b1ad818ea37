package apidoc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/billing"
)

const (
	stripeTestKey    = "sk_test_apidoc"
	stripeTestSecret = "whsec_apidoc"
)

// fakeStripe serves POST /v1/checkout/sessions as Stripe's API does,
// enough for a purchase to start, and keeps each session by purchase id.
type fakeStripe struct {
	srv *httptest.Server

	mu       sync.Mutex
	sessions map[string]map[string]any
}

func newFakeStripe(t *testing.T) *fakeStripe {
	t.Helper()
	fs := &fakeStripe{sessions: map[string]map[string]any{}}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+stripeTestKey || r.Method != http.MethodPost || r.URL.Path != "/v1/checkout/sessions" || r.ParseForm() != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"unexpected request"}}`)
		return
	}
	amount, _ := strconv.ParseInt(r.PostForm.Get("line_items[0][price_data][unit_amount]"), 10, 64)
	purchaseID := r.PostForm.Get("client_reference_id")
	id := "cs_test_" + purchaseID
	sess := map[string]any{
		"id":                  id,
		"object":              "checkout.session",
		"url":                 "https://checkout.stripe.com/c/pay/" + id,
		"livemode":            false,
		"mode":                r.PostForm.Get("mode"),
		"client_reference_id": purchaseID,
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
	fs.mu.Lock()
	fs.sessions[purchaseID] = sess
	fs.mu.Unlock()
	_ = json.NewEncoder(w).Encode(sess)
}

// event returns a Stripe event of the type about the purchase's session,
// paid, and its Stripe-Signature header.
func (fs *fakeStripe) event(t *testing.T, typ, purchaseID string) (payload []byte, signature string) {
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
	payload, err := json.Marshal(map[string]any{
		"id":          "evt_test_" + typ + "_" + purchaseID,
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
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: stripeTestSecret, Timestamp: time.Now()})
	return payload, signed.Header
}

// stripe drives the Stripe checkout over a second app whose payment
// provider is Stripe, and adds its responses to f's coverage.
func (f *flow) stripe(t *testing.T) {
	fs := newFakeStripe(t)
	api := newTestApp(t, func(cfg *app.Config) {
		cfg.Billing.Provider = billing.ProviderStripe
		cfg.Billing.Stripe = billing.StripeConfig{
			SecretKey:     stripeTestKey,
			WebhookSecret: stripeTestSecret,
			SuccessURL:    "https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}",
			CancelURL:     "https://app.example.com/billing",
			APIURL:        fs.srv.URL,
		}
	})
	defer f.c.merge(api.client)
	s := &flow{api: api, c: api.client}
	_, token := s.signup(t, "Grace", "grace@example.com")

	bought := s.send(t, "POST", "/v1/billing/purchases", token, `{"pack_id":"team"}`)
	wantStatus(t, bought, http.StatusCreated)
	purchase := field(bought.body, "id")
	if field(bought.body, "status") != billing.StatusPending || field(bought.body, "checkout_url") == "" {
		t.Errorf("Stripe purchase = %s; want pending with a checkout_url", bought.raw)
	}
	wantProblem(t, s.send(t, "GET", "/v1/billing/invoices/"+purchase, token, nil), 409, "purchase_not_completed")

	payload, signature := fs.event(t, "checkout.session.completed", purchase)
	wantProblem(t, s.send(t, "POST", "/v1/billing/stripe/webhook", "", string(payload), "Stripe-Signature", "t=1,v1=forged"), 400, "invalid_signature")
	ignoredPayload, ignoredSignature := fs.event(t, "checkout.session.expired", purchase)
	ignored := s.send(t, "POST", "/v1/billing/stripe/webhook", "", string(ignoredPayload), "Stripe-Signature", ignoredSignature)
	wantStatus(t, ignored, http.StatusOK)
	if field(ignored.body, "action") != "ignored" {
		t.Errorf("expired session action = %q; want ignored", field(ignored.body, "action"))
	}
	done := s.send(t, "POST", "/v1/billing/stripe/webhook", "", string(payload), "Stripe-Signature", signature)
	wantStatus(t, done, http.StatusOK)
	again := s.send(t, "POST", "/v1/billing/stripe/webhook", "", string(payload), "Stripe-Signature", signature)
	wantStatus(t, again, http.StatusOK)
	if field(done.body, "action") != "completed" || field(again.body, "action") != "already_completed" {
		t.Errorf("webhook actions = %q, %q; want completed, already_completed", field(done.body, "action"), field(again.body, "action"))
	}
	wantStatus(t, s.send(t, "GET", "/v1/billing/purchases/"+purchase, token, nil), http.StatusOK)
	wantStatus(t, s.send(t, "GET", "/v1/billing/invoices/"+purchase, token, nil), http.StatusOK)
}
