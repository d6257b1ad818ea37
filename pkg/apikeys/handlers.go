package apikeys

import (
	"net/http"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the API key management routes.
type Handlers struct {
	Service *Service
}

// Routes returns the API key routes. session wraps a handler with session
// authentication and workspace resolution (X-Workspace-Id). The third
// argument, which wraps a handler with session-or-API-key authentication,
// is unused: key management needs a logged-in user, so every route here
// uses session.
func Routes(h Handlers, session, _ func(http.Handler) http.Handler) []httpapi.Route {
	return []httpapi.Route{
		{Name: "api-keys-create", Method: http.MethodPost, Path: "/v1/api-keys", Handler: session(httpapi.HandlerFunc(h.Create))},
		{Name: "api-keys-list", Method: http.MethodGet, Path: "/v1/api-keys", Handler: session(httpapi.HandlerFunc(h.List))},
		{Name: "api-keys-get", Method: http.MethodGet, Path: "/v1/api-keys/{id}", Handler: session(httpapi.HandlerFunc(h.Get))},
		{Name: "api-keys-update", Method: http.MethodPatch, Path: "/v1/api-keys/{id}", Handler: session(httpapi.HandlerFunc(h.Update))},
		{Name: "api-keys-revoke", Method: http.MethodDelete, Path: "/v1/api-keys/{id}", Handler: session(httpapi.HandlerFunc(h.Revoke))},
	}
}

// Create serves POST /v1/api-keys. The response is the only one that
// carries the key's secret.
func (h Handlers) Create(w http.ResponseWriter, r *http.Request) error {
	var in CreateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	key, err := h.Service.Create(r.Context(), authn.MustFromContext(r.Context()), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/api-keys/"+key.ID)
	httpapi.WriteJSON(w, http.StatusCreated, key)
	return nil
}

// List serves GET /v1/api-keys.
func (h Handlers) List(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	keys, next, err := h.Service.List(r.Context(), authn.MustFromContext(r.Context()), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Key]{Data: keys, NextCursor: next})
	return nil
}

// Get serves GET /v1/api-keys/{id}.
func (h Handlers) Get(w http.ResponseWriter, r *http.Request) error {
	key, err := h.Service.Get(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, key)
	return nil
}

// Update serves PATCH /v1/api-keys/{id}.
func (h Handlers) Update(w http.ResponseWriter, r *http.Request) error {
	var in UpdateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	key, err := h.Service.Update(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, key)
	return nil
}

// Revoke serves DELETE /v1/api-keys/{id}. It returns 204 also for a key
// that was revoked already.
func (h Handlers) Revoke(w http.ResponseWriter, r *http.Request) error {
	if err := h.Service.Revoke(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}
