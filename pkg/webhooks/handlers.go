package webhooks

import (
	"net/http"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the webhook routes. Every member of a workspace may list
// and read its endpoints and deliveries. Creating, changing and deleting
// endpoints, reading and rotating secrets, redelivering and test events
// need an owner or admin of an organization, or the user of a personal
// workspace.
type Handlers struct {
	Service *Service
}

// Routes returns the webhook routes. session wraps a handler with session
// authentication and workspace resolution (X-Workspace-Id); every route
// here uses it, because webhooks are managed by logged-in users. The
// third argument, which accepts API keys as well, is unused.
//
// webhooks-redeliver and webhooks-test send to the deliveries queue, so
// their functions need sqs:SendMessage on it and WEBHOOK_DELIVERIES_QUEUE_URL.
func Routes(h Handlers, session, _ func(http.Handler) http.Handler) []httpapi.Route {
	route := func(name, method, path string, f httpapi.HandlerFunc) httpapi.Route {
		return httpapi.Route{Name: name, Method: method, Path: path, Handler: session(f)}
	}
	return []httpapi.Route{
		route("webhooks-create", http.MethodPost, "/v1/webhooks", h.Create),
		route("webhooks-list", http.MethodGet, "/v1/webhooks", h.List),
		route("webhooks-get", http.MethodGet, "/v1/webhooks/{id}", h.Get),
		route("webhooks-update", http.MethodPatch, "/v1/webhooks/{id}", h.Update),
		route("webhooks-delete", http.MethodDelete, "/v1/webhooks/{id}", h.Delete),
		route("webhooks-secret-get", http.MethodGet, "/v1/webhooks/{id}/secret", h.GetSecret),
		route("webhooks-rotate-secret", http.MethodPost, "/v1/webhooks/{id}/rotate-secret", h.RotateSecret),
		route("webhooks-deliveries-list", http.MethodGet, "/v1/webhooks/{id}/deliveries", h.ListDeliveries),
		route("webhooks-deliveries-get", http.MethodGet, "/v1/webhooks/{id}/deliveries/{delivery_id}", h.GetDelivery),
		route("webhooks-redeliver", http.MethodPost, "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", h.Redeliver),
		route("webhooks-test", http.MethodPost, "/v1/webhooks/{id}/test", h.SendTest),
	}
}

// Create serves POST /v1/webhooks. Its response carries the signing
// secret.
func (h Handlers) Create(w http.ResponseWriter, r *http.Request) error {
	var in CreateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	ep, err := h.Service.Create(r.Context(), authn.MustFromContext(r.Context()), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/webhooks/"+ep.ID)
	httpapi.WriteJSON(w, http.StatusCreated, ep)
	return nil
}

// List serves GET /v1/webhooks.
func (h Handlers) List(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.List(r.Context(), authn.MustFromContext(r.Context()), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Endpoint]{Data: list, NextCursor: next})
	return nil
}

// Get serves GET /v1/webhooks/{id}.
func (h Handlers) Get(w http.ResponseWriter, r *http.Request) error {
	ep, err := h.Service.Get(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, ep)
	return nil
}

// Update serves PATCH /v1/webhooks/{id}.
func (h Handlers) Update(w http.ResponseWriter, r *http.Request) error {
	var in UpdateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	ep, err := h.Service.Update(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, ep)
	return nil
}

// Delete serves DELETE /v1/webhooks/{id}.
func (h Handlers) Delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.Service.Delete(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// GetSecret serves GET /v1/webhooks/{id}/secret.
func (h Handlers) GetSecret(w http.ResponseWriter, r *http.Request) error {
	secret, err := h.Service.Secret(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, secret)
	return nil
}

// RotateSecret serves POST /v1/webhooks/{id}/rotate-secret. It responds
// with the new secret.
func (h Handlers) RotateSecret(w http.ResponseWriter, r *http.Request) error {
	secret, err := h.Service.RotateSecret(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, secret)
	return nil
}

// ListDeliveries serves GET /v1/webhooks/{id}/deliveries, newest first,
// with an optional status filter (?status=pending|succeeded|failed).
func (h Handlers) ListDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	list, next, err := h.Service.ListDeliveries(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), status, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Delivery]{Data: list, NextCursor: next})
	return nil
}

// GetDelivery serves GET /v1/webhooks/{id}/deliveries/{delivery_id}.
func (h Handlers) GetDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Service.GetDelivery(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
	return nil
}

// Redeliver serves POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver.
// It responds 202 with the delivery, queued again.
func (h Handlers) Redeliver(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Service.Redeliver(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusAccepted, d)
	return nil
}

// SendTest serves POST /v1/webhooks/{id}/test. It responds 202 with the
// queued test delivery.
func (h Handlers) SendTest(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Service.SendTest(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/webhooks/"+d.EndpointID+"/deliveries/"+d.ID)
	httpapi.WriteJSON(w, http.StatusAccepted, d)
	return nil
}
