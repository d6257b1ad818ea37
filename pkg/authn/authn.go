// Package authn carries the authenticated caller of a request: who is
// calling, with which credential, and in which workspace.
package authn

import (
	"context"
	"net/http"
	"strings"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// Credential kinds.
const (
	KindSession = "session"
	KindAPIKey  = "api_key"
)

// Caller is the authenticated principal of a request.
type Caller struct {
	// Kind is KindSession or KindAPIKey.
	Kind string
	// UserID is the user behind the session, or the user who created the
	// API key.
	UserID string
	// SessionID is the session's public id, for session callers.
	SessionID string
	// SessionHash is the SHA-256 hex of the session token, for session
	// callers; it is the session item's key.
	SessionHash string
	// APIKeyID is the key's public id, for API-key callers.
	APIKeyID string
	// WorkspaceID is the workspace the request acts in: the user id for the
	// personal workspace or an organization id.
	WorkspaceID string
	// Role is the caller's role in an organization workspace: "owner",
	// "admin" or "member"; empty in the personal workspace.
	Role string
}

// Roles in an organization.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// ValidRole reports whether role is one of the organization roles.
func ValidRole(role string) bool {
	return role == RoleOwner || role == RoleAdmin || role == RoleMember
}

// Personal reports whether the caller acts in their personal workspace.
func (c *Caller) Personal() bool { return c.WorkspaceID == c.UserID }

// CanManage reports whether the caller may manage the workspace's keys,
// webhooks and billing: always in the personal workspace, and as an owner
// or admin of an organization. An API key never manages anything.
func (c *Caller) CanManage() bool {
	if c.Kind != KindSession {
		return false
	}
	return c.Personal() || c.Role == RoleOwner || c.Role == RoleAdmin
}

type contextKey struct{}

// WithCaller returns a context that carries c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, contextKey{}, c)
}

// FromContext returns the caller of the request. Handlers behind an
// authentication middleware always have one; the second result is false
// elsewhere.
func FromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(contextKey{}).(*Caller)
	return c, ok && c != nil
}

// MustFromContext returns the caller of the request and panics when there
// is none, which is a wiring bug: the route lacks its middleware.
func MustFromContext(ctx context.Context) *Caller {
	c, ok := FromContext(ctx)
	if !ok {
		panic("authn: no caller in context; the route is missing its authentication middleware")
	}
	return c
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header. It returns an Unauthorized error when the header is missing or
// is not a single bearer token.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", &apperr.Error{Code: apperr.Unauthorized, Reason: "missing_credentials",
			Message: "The Authorization header is missing; send Authorization: Bearer <session token or API key>."}
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	tok = strings.TrimSpace(tok)
	if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t,") {
		return "", &apperr.Error{Code: apperr.Unauthorized, Reason: "malformed_credentials",
			Message: "The Authorization header is malformed; send exactly one header of the form Bearer <token>."}
	}
	return tok, nil
}
