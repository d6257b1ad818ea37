package billing

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the billing routes.
type Handlers struct {
	Service *Service
}

// Routes returns the billing routes. session wraps a handler with session
// authentication and workspace resolution (X-Workspace-Id); any wraps it
// with session-or-API-key authentication. The Stripe webhook route has no
// authentication: its Stripe-Signature header is checked instead.
//
// GET /v1/billing/invoices/{id} takes a purchase id and returns that
// purchase's invoice. Its function reads and writes the documents bucket.
func Routes(h Handlers, session, any func(http.Handler) http.Handler) []httpapi.Route {
	return []httpapi.Route{
		{Name: "billing-wallet-get", Method: http.MethodGet, Path: "/v1/billing/wallet", Handler: any(httpapi.HandlerFunc(h.GetWallet))},
		{Name: "billing-ledger-list", Method: http.MethodGet, Path: "/v1/billing/ledger", Handler: any(httpapi.HandlerFunc(h.ListLedger))},
		{Name: "billing-settings-update", Method: http.MethodPatch, Path: "/v1/billing/settings", Handler: session(httpapi.HandlerFunc(h.UpdateSettings))},
		{Name: "billing-packs-list", Method: http.MethodGet, Path: "/v1/billing/packs", Handler: session(httpapi.HandlerFunc(h.ListPacks))},
		{Name: "billing-purchases-create", Method: http.MethodPost, Path: "/v1/billing/purchases", Handler: session(httpapi.HandlerFunc(h.CreatePurchase))},
		{Name: "billing-purchases-list", Method: http.MethodGet, Path: "/v1/billing/purchases", Handler: session(httpapi.HandlerFunc(h.ListPurchases))},
		{Name: "billing-purchases-get", Method: http.MethodGet, Path: "/v1/billing/purchases/{id}", Handler: session(httpapi.HandlerFunc(h.GetPurchase))},
		{Name: "billing-invoices-get", Method: http.MethodGet, Path: "/v1/billing/invoices/{id}", Handler: session(httpapi.HandlerFunc(h.GetInvoice))},
		{Name: "billing-stripe-webhook", Method: http.MethodPost, Path: "/v1/billing/stripe/webhook", Handler: httpapi.HandlerFunc(h.StripeWebhook)},
	}
}

// requireManager returns the caller when it may manage the workspace's
// billing: always in the personal workspace, as an owner or admin in an
// organization.
//
// Errors: Forbidden (billing_forbidden) for organization members and API
// keys.
func requireManager(r *http.Request) (*authn.Caller, error) {
	c := authn.MustFromContext(r.Context())
	if c.CanManage() {
		return c, nil
	}
	if c.Kind != authn.KindSession {
		return nil, &apperr.Error{Code: apperr.Forbidden, Reason: "billing_forbidden",
			Message: "API keys cannot manage billing; log in and use a session."}
	}
	return nil, &apperr.Error{Code: apperr.Forbidden, Reason: "billing_forbidden",
		Message: fmt.Sprintf("Only owners and admins manage the billing of organization %s; your role is %q.", c.WorkspaceID, c.Role)}
}

// GetWallet serves GET /v1/billing/wallet. Any member of the workspace and
// its API keys may read the balance.
func (h Handlers) GetWallet(w http.ResponseWriter, r *http.Request) error {
	c := authn.MustFromContext(r.Context())
	wallet, err := h.Service.GetWallet(r.Context(), c.WorkspaceID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, wallet)
	return nil
}

// ListLedger serves GET /v1/billing/ledger, newest entry first.
func (h Handlers) ListLedger(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	c := authn.MustFromContext(r.Context())
	entries, next, err := h.Service.ListLedger(r.Context(), c.WorkspaceID, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[LedgerEntry]{Data: entries, NextCursor: next})
	return nil
}

type settingsRequest struct {
	LowBalanceThreshold *int64 `json:"low_balance_threshold"`
}

// UpdateSettings serves PATCH /v1/billing/settings.
func (h Handlers) UpdateSettings(w http.ResponseWriter, r *http.Request) error {
	c, err := requireManager(r)
	if err != nil {
		return err
	}
	var in settingsRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.LowBalanceThreshold == nil {
		return apperr.InvalidField("low_balance_threshold", "missing_field",
			"Field \"low_balance_threshold\" is required: a whole number of credits, 0 or more.")
	}
	wallet, err := h.Service.UpdateSettings(r.Context(), c.WorkspaceID, *in.LowBalanceThreshold)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, wallet)
	return nil
}

// ListPacks serves GET /v1/billing/packs. The catalogue is the same for
// every workspace, so any session may read it.
func (h Handlers) ListPacks(w http.ResponseWriter, r *http.Request) error {
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Pack]{Data: h.Service.Packs()})
	return nil
}

type purchaseRequest struct {
	PackID string `json:"pack_id"`
}

// CreatePurchase serves POST /v1/billing/purchases. It returns 201 with
// the purchase: completed with the test provider, pending with a
// checkout_url with Stripe.
func (h Handlers) CreatePurchase(w http.ResponseWriter, r *http.Request) error {
	c, err := requireManager(r)
	if err != nil {
		return err
	}
	var in purchaseRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := h.Service.CreatePurchase(r.Context(), c.WorkspaceID, c.UserID, in.PackID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/billing/purchases/"+p.ID)
	httpapi.WriteJSON(w, http.StatusCreated, p)
	return nil
}

// ListPurchases serves GET /v1/billing/purchases, newest first.
func (h Handlers) ListPurchases(w http.ResponseWriter, r *http.Request) error {
	c, err := requireManager(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	purchases, next, err := h.Service.ListPurchases(r.Context(), c.WorkspaceID, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Purchase]{Data: purchases, NextCursor: next})
	return nil
}

// GetPurchase serves GET /v1/billing/purchases/{id}.
func (h Handlers) GetPurchase(w http.ResponseWriter, r *http.Request) error {
	c, err := requireManager(r)
	if err != nil {
		return err
	}
	p, err := h.Service.GetPurchase(r.Context(), c.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, p)
	return nil
}

// GetInvoice serves GET /v1/billing/invoices/{id}, where id is a purchase
// id, as an application/pdf attachment.
func (h Handlers) GetInvoice(w http.ResponseWriter, r *http.Request) error {
	c, err := requireManager(r)
	if err != nil {
		return err
	}
	inv, err := h.Service.GetInvoice(r.Context(), c.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", strconv.Itoa(len(inv.PDF)))
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "invoice-"+inv.Number+".pdf"))
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.PDF)
	return nil
}

// maxWebhookBytes bounds a Stripe webhook body. Checkout Session events
// are a few kilobytes.
const maxWebhookBytes = 1 << 20

// StripeWebhook serves POST /v1/billing/stripe/webhook. It responds 200 to
// every correctly signed event, including ignored ones, so Stripe stops
// sending them. A 400 for a bad signature and a 500 for a failure make
// Stripe deliver the event again later.
func (h Handlers) StripeWebhook(w http.ResponseWriter, r *http.Request) error {
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apperr.Error{Code: apperr.TooLarge, Reason: "body_too_large",
			Message: fmt.Sprintf("The webhook body is larger than the limit of %d bytes.", maxWebhookBytes)}
	}
	if err != nil {
		return apperr.New(apperr.Invalid, "The webhook body could not be read: %v.", err).WithReason("unreadable_body")
	}
	out, err := h.Service.HandleStripeWebhook(r.Context(), payload, r.Header.Get("Stripe-Signature"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
