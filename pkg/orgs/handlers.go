package orgs

import (
	"net/http"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the organization, workspace and invitation routes. Each
// organization route takes the organization from the path's {id}, not
// from the caller's current workspace, and returns 404 to a caller who is
// not a member of it.
type Handlers struct {
	Service *Service
}

// Routes returns the organization routes. session wraps a handler with
// session authentication and workspace resolution (X-Workspace-Id); every
// route here uses it, because managing organizations needs a logged-in
// user. sessionOrKey, which accepts an API key as well, is not used.
func Routes(h Handlers, session, sessionOrKey func(http.Handler) http.Handler) []httpapi.Route {
	route := func(name, method, path string, f httpapi.HandlerFunc) httpapi.Route {
		return httpapi.Route{Name: name, Method: method, Path: path, Handler: session(f)}
	}
	return []httpapi.Route{
		route("organizations-create", http.MethodPost, "/v1/organizations", h.CreateOrganization),
		route("organizations-get", http.MethodGet, "/v1/organizations/{id}", h.GetOrganization),
		route("organizations-update", http.MethodPatch, "/v1/organizations/{id}", h.UpdateOrganization),
		route("workspaces-list", http.MethodGet, "/v1/workspaces", h.ListWorkspaces),
		route("organizations-members-list", http.MethodGet, "/v1/organizations/{id}/members", h.ListMembers),
		route("organizations-members-update", http.MethodPatch, "/v1/organizations/{id}/members/{user_id}", h.UpdateMember),
		route("organizations-members-remove", http.MethodDelete, "/v1/organizations/{id}/members/{user_id}", h.RemoveMember),
		route("organizations-invitations-create", http.MethodPost, "/v1/organizations/{id}/invitations", h.CreateInvitation),
		route("organizations-invitations-list", http.MethodGet, "/v1/organizations/{id}/invitations", h.ListInvitations),
		route("organizations-invitations-revoke", http.MethodDelete, "/v1/organizations/{id}/invitations/{invitation_id}", h.RevokeInvitation),
		route("me-invitations-list", http.MethodGet, "/v1/me/invitations", h.ListMyInvitations),
		route("me-invitations-accept", http.MethodPost, "/v1/me/invitations/{id}/accept", h.AcceptInvitation),
		route("me-invitations-decline", http.MethodPost, "/v1/me/invitations/{id}/decline", h.DeclineInvitation),
	}
}

// sessionUser returns the id of the user behind the request's session.
// API keys act for a workspace, not for a user, so they are rejected.
func sessionUser(r *http.Request) (string, error) {
	caller := authn.MustFromContext(r.Context())
	if caller.Kind != authn.KindSession {
		return "", &apperr.Error{Code: apperr.Unauthorized, Reason: "session_required",
			Message: "Managing organizations needs a session token (sess_...) from POST /v1/auth/login; API keys are not accepted here."}
	}
	return caller.UserID, nil
}

type nameRequest struct {
	Name string `json:"name"`
}

// CreateOrganization serves POST /v1/organizations.
func (h Handlers) CreateOrganization(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var in nameRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	org, err := h.Service.Create(r.Context(), userID, in.Name)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, org)
	return nil
}

// GetOrganization serves GET /v1/organizations/{id}.
func (h Handlers) GetOrganization(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	org, err := h.Service.Get(r.Context(), userID, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, org)
	return nil
}

// UpdateOrganization serves PATCH /v1/organizations/{id}.
func (h Handlers) UpdateOrganization(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var in nameRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	org, err := h.Service.Rename(r.Context(), userID, r.PathValue("id"), in.Name)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, org)
	return nil
}

// ListWorkspaces serves GET /v1/workspaces.
func (h Handlers) ListWorkspaces(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.ListWorkspaces(r.Context(), userID, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Workspace]{Data: list, NextCursor: next})
	return nil
}

// ListMembers serves GET /v1/organizations/{id}/members.
func (h Handlers) ListMembers(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.ListMembers(r.Context(), userID, r.PathValue("id"), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Member]{Data: list, NextCursor: next})
	return nil
}

type roleRequest struct {
	Role string `json:"role"`
}

// UpdateMember serves PATCH /v1/organizations/{id}/members/{user_id}.
func (h Handlers) UpdateMember(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var in roleRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	m, err := h.Service.ChangeRole(r.Context(), userID, r.PathValue("id"), r.PathValue("user_id"), in.Role)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, m)
	return nil
}

// RemoveMember serves DELETE /v1/organizations/{id}/members/{user_id}:
// the caller leaves when user_id is their own id.
func (h Handlers) RemoveMember(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	if err := h.Service.RemoveMember(r.Context(), userID, r.PathValue("id"), r.PathValue("user_id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// CreateInvitation serves POST /v1/organizations/{id}/invitations.
func (h Handlers) CreateInvitation(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var in InviteInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	inv, err := h.Service.Invite(r.Context(), userID, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, inv)
	return nil
}

// ListInvitations serves GET /v1/organizations/{id}/invitations.
func (h Handlers) ListInvitations(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.ListInvitations(r.Context(), userID, r.PathValue("id"), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Invitation]{Data: list, NextCursor: next})
	return nil
}

// RevokeInvitation serves DELETE
// /v1/organizations/{id}/invitations/{invitation_id}.
func (h Handlers) RevokeInvitation(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	if err := h.Service.RevokeInvitation(r.Context(), userID, r.PathValue("id"), r.PathValue("invitation_id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// ListMyInvitations serves GET /v1/me/invitations.
func (h Handlers) ListMyInvitations(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.ListMyInvitations(r.Context(), userID, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Invitation]{Data: list, NextCursor: next})
	return nil
}

// AcceptInvitation serves POST /v1/me/invitations/{id}/accept. It
// responds with the organization joined.
func (h Handlers) AcceptInvitation(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var in acceptRequest
	if r.ContentLength != 0 {
		if err := httpapi.DecodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	org, err := h.Service.AcceptInvitation(r.Context(), userID, r.PathValue("id"), in.Code)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, org)
	return nil
}

// acceptRequest carries the invitation code from the invitation email.
type acceptRequest struct {
	Code string `json:"code"`
}

// DeclineInvitation serves POST /v1/me/invitations/{id}/decline.
func (h Handlers) DeclineInvitation(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	if err := h.Service.DeclineInvitation(r.Context(), userID, r.PathValue("id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}
