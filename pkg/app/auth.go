package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apikeys"
	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/idempotency"
	"github.com/signsecure/signsecure/pkg/ids"
)

// WorkspaceHeader names the workspace a session caller acts in; without
// it, a session acts in the user's personal workspace.
const WorkspaceHeader = "X-Workspace-Id"

// roleLookup returns a user's role in an organization, or a NotFound error
// when the user is not a member.
type roleLookup interface {
	Role(ctx context.Context, orgID, userID string) (string, error)
}

// keyAuthenticator authenticates an API key and counts the request
// against the key's rate limit.
type keyAuthenticator interface {
	Authenticate(ctx context.Context, raw string) (apikeys.Key, apikeys.Usage, error)
}

// authHandler is a handler behind authentication middleware, marked with
// the credential it accepts so the route table can record it.
type authHandler struct {
	http.Handler
	auth string
}

// markAuth sets each route's Auth from its handler's middleware. Routes
// without authentication middleware are public. Their POSTs get
// Idempotency-Key handling here, because no authentication middleware
// applies it to them.
func (a authenticator) markAuth(routes []httpapi.Route) []httpapi.Route {
	for i := range routes {
		routes[i].Auth = httpapi.AuthNone
		if h, ok := routes[i].Handler.(authHandler); ok {
			routes[i].Auth = h.auth
			continue
		}
		if routes[i].Method == http.MethodPost {
			routes[i].Handler = a.idempotent(routes[i].Handler)
		}
	}
	return routes
}

// authenticator builds the authentication middleware of the route table.
type authenticator struct {
	accounts accounts.Handlers
	roles    roleLookup
	keys     keyAuthenticator
	idem     *idempotency.Middleware
}

// secretResponses lists the POST routes whose responses carry a secret
// that is shown once (a session token, an API key, a webhook secret).
// Replaying them would mean storing the secret, so they reject an
// Idempotency-Key instead of ignoring it.
var secretResponses = map[string]bool{
	"POST /v1/auth/signup":                 true,
	"POST /v1/auth/login":                  true,
	"POST /v1/api-keys":                    true,
	"POST /v1/webhooks":                    true,
	"POST /v1/webhooks/{id}/rotate-secret": true,
}

// idempotent applies Idempotency-Key handling to POST requests once the
// caller is known, so each credential has its own keys.
func (a authenticator) idempotent(next http.Handler) http.Handler {
	replayable := a.idem.Wrap(next)
	return httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		switch {
		case r.Method != http.MethodPost || a.idem == nil:
			next.ServeHTTP(w, r)
		case secretResponses[r.Pattern]:
			if r.Header.Get(idempotency.Header) != "" {
				return apperr.InvalidField(idempotency.Header, "idempotency_unsupported",
					"%s does not accept %s, because its response holds a secret that is shown only once and is never stored.", r.Pattern, idempotency.Header)
			}
			next.ServeHTTP(w, r)
		default:
			replayable.ServeHTTP(w, r)
		}
		return nil
	})
}

// session admits session callers only, in the workspace that
// X-Workspace-Id names. Settings routes (profile, keys, webhooks, billing,
// organizations) use it, because API keys must not manage the account.
func (a authenticator) session(next http.Handler) http.Handler {
	return authHandler{a.accounts.RequireSession(a.workspace(a.idempotent(next))), httpapi.AuthSession}
}

// any admits a session, in the workspace that X-Workspace-Id names, or an
// API key, in the workspace the key is bound to. Every API-key response
// carries the key's RateLimit headers, errors included.
func (a authenticator) any(next http.Handler) http.Handler {
	sessionChain := a.session(next)
	keyed := a.idempotent(next)
	return authHandler{auth: httpapi.AuthAny, Handler: httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		tok, err := authn.BearerToken(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure"`)
			return err
		}
		if !strings.HasPrefix(tok, apikeys.Prefix) {
			if !strings.HasPrefix(tok, accounts.SessionTokenPrefix) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure", error="invalid_token"`)
				return &apperr.Error{Code: apperr.Unauthorized, Reason: "malformed_credentials",
					Message: fmt.Sprintf("The bearer token is neither a session token (%s...) nor an API key (%s...).", accounts.SessionTokenPrefix, apikeys.Prefix)}
			}
			sessionChain.ServeHTTP(w, r)
			return nil
		}

		key, usage, err := a.keys.Authenticate(r.Context(), tok)
		if usage.Limit > 0 {
			apikeys.WriteRateLimitHeaders(w, usage)
		}
		if err != nil {
			if apperr.CodeOf(err) == apperr.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="signsecure", error="invalid_token"`)
			}
			return err
		}
		if ws := r.Header.Get(WorkspaceHeader); ws != "" && ws != key.WorkspaceID {
			return &apperr.Error{Code: apperr.Invalid, Reason: "workspace_mismatch", Field: WorkspaceHeader,
				Message: fmt.Sprintf("Header %s is %q, but this API key is bound to workspace %s; drop the header or use a key of that workspace.", WorkspaceHeader, truncate(ws, 40), key.WorkspaceID)}
		}
		keyed.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), key.Caller())))
		return nil
	})}
}

// workspace resolves X-Workspace-Id for a session caller. No header, or the
// user's own id, means the personal workspace. An organization id needs a
// membership. Anything else is a 404 that reveals nothing.
func (a authenticator) workspace(next http.Handler) http.Handler {
	return httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		caller := authn.MustFromContext(r.Context())
		ws := strings.TrimSpace(r.Header.Get(WorkspaceHeader))
		if ws == "" || ws == caller.UserID {
			next.ServeHTTP(w, r)
			return nil
		}

		notFound := &apperr.Error{Code: apperr.NotFound, Reason: "workspace_not_found", Field: WorkspaceHeader,
			Message: fmt.Sprintf("Workspace %q named by %s was not found; list yours with GET /v1/workspaces.", truncate(ws, 40), WorkspaceHeader)}
		if !ids.Valid(ids.Organization, ws) {
			return notFound
		}
		role, err := a.roles.Role(r.Context(), ws, caller.UserID)
		if apperr.CodeOf(err) == apperr.NotFound {
			return notFound
		}
		if err != nil {
			return err
		}

		resolved := *caller
		resolved.WorkspaceID = ws
		resolved.Role = role
		next.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), &resolved)))
		return nil
	})
}

// workspaceResponse describes the workspace and credential of a request.
type workspaceResponse struct {
	WorkspaceID string `json:"workspace_id"`
	Type        string `json:"type"`
	Role        string `json:"role,omitempty"`
	Credential  string `json:"credential"`
	UserID      string `json:"user_id"`
	APIKeyID    string `json:"api_key_id,omitempty"`
}

// getWorkspace serves GET /v1/workspace: which workspace the request acts
// in and with which credential. Integrators use it to check a key.
func getWorkspace(w http.ResponseWriter, r *http.Request) error {
	c := authn.MustFromContext(r.Context())
	typ := "organization"
	if strings.HasPrefix(c.WorkspaceID, ids.User+"_") {
		typ = "personal"
	}
	httpapi.WriteJSON(w, http.StatusOK, workspaceResponse{
		WorkspaceID: c.WorkspaceID,
		Type:        typ,
		Role:        c.Role,
		Credential:  c.Kind,
		UserID:      c.UserID,
		APIKeyID:    c.APIKeyID,
	})
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
