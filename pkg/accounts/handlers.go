package accounts

import (
	"net/http"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the account and profile routes.
type Handlers struct {
	Service *Service
}

type authResponse struct {
	User    User       `json:"user"`
	Session NewSession `json:"session"`
}

// clientOf returns where a request comes from. The user agent is cut to
// maxUserAgentLength characters here, because it is stored with sessions
// and devices and travels in new-login events and emails.
func clientOf(r *http.Request) Client {
	return Client{IP: httpapi.ClientIP(r), UserAgent: truncate(r.UserAgent(), maxUserAgentLength)}
}

// Signup serves POST /v1/auth/signup.
func (h Handlers) Signup(w http.ResponseWriter, r *http.Request) error {
	var in SignupInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	user, sess, err := h.Service.Signup(r.Context(), in, clientOf(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, authResponse{User: user, Session: sess})
	return nil
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Login serves POST /v1/auth/login.
func (h Handlers) Login(w http.ResponseWriter, r *http.Request) error {
	var in loginRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	user, sess, err := h.Service.Login(r.Context(), in.Email, in.Password, clientOf(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, authResponse{User: user, Session: sess})
	return nil
}

// Logout serves POST /v1/auth/logout: it ends the calling session.
func (h Handlers) Logout(w http.ResponseWriter, r *http.Request) error {
	caller := authn.MustFromContext(r.Context())
	if err := h.Service.Logout(r.Context(), caller.SessionHash); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// GetMe serves GET /v1/me.
func (h Handlers) GetMe(w http.ResponseWriter, r *http.Request) error {
	user, ok := userFromContext(r.Context())
	if !ok {
		var err error
		if user, err = h.Service.GetUser(r.Context(), authn.MustFromContext(r.Context()).UserID); err != nil {
			return err
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, user)
	return nil
}

// UpdateMe serves PATCH /v1/me.
func (h Handlers) UpdateMe(w http.ResponseWriter, r *http.Request) error {
	var in ProfileUpdate
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	user, err := h.Service.UpdateProfile(r.Context(), authn.MustFromContext(r.Context()).UserID, in, clientOf(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, user)
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword serves POST /v1/me/password.
func (h Handlers) ChangePassword(w http.ResponseWriter, r *http.Request) error {
	var in passwordRequest
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	caller := authn.MustFromContext(r.Context())
	if err := h.Service.ChangePassword(r.Context(), caller.UserID, caller.SessionHash, in.CurrentPassword, in.NewPassword, clientOf(r)); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// ListSessions serves GET /v1/me/sessions.
func (h Handlers) ListSessions(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	caller := authn.MustFromContext(r.Context())
	sessions, next, err := h.Service.ListSessions(r.Context(), caller.UserID, caller.SessionHash, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Session]{Data: sessions, NextCursor: next})
	return nil
}

// RevokeSession serves DELETE /v1/me/sessions/{id}.
func (h Handlers) RevokeSession(w http.ResponseWriter, r *http.Request) error {
	caller := authn.MustFromContext(r.Context())
	if err := h.Service.RevokeSession(r.Context(), caller.UserID, r.PathValue("id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// RequireSession returns h behind session authentication: the request
// must carry "Authorization: Bearer sess_...". API keys are rejected here,
// because these routes manage the account itself.
func (h Handlers) RequireSession(next http.Handler) http.Handler {
	return httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		tok, err := authn.BearerToken(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure"`)
			return err
		}
		if !isSessionToken(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure"`)
			return &apperr.Error{Code: apperr.Unauthorized, Reason: "session_required",
				Message: "This endpoint manages the account and needs a session token (sess_...) from POST /v1/auth/login; API keys are not accepted here."}
		}
		user, sess, err := h.Service.Authenticate(r.Context(), tok)
		if err != nil {
			if apperr.CodeOf(err) == apperr.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure", error="invalid_token"`)
			}
			return err
		}
		ctx := authn.WithCaller(r.Context(), &authn.Caller{
			Kind:        authn.KindSession,
			UserID:      user.ID,
			SessionID:   sess.ID,
			SessionHash: sessionHashOf(sess),
			WorkspaceID: user.ID,
		})
		ctx = withUser(ctx, user)
		next.ServeHTTP(w, r.WithContext(ctx))
		return nil
	})
}
