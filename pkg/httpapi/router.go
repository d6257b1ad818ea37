// Package httpapi is the HTTP plumbing shared by every SignSecure route:
// the route table, request ids, JSON decoding, RFC 9457 problem responses,
// panic recovery and request logs.
//
// The same handler serves a request under httptest, the local runner and
// Lambda; only the adapter in front of it differs.
package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// Route is one API operation. Each route is deployed as its own Lambda
// function.
type Route struct {
	// Name is the route's function name in kebab case, such as "me-get":
	// the folder functions/<Name> and the template's <PascalName>Function.
	Name string
	// Method is the HTTP method.
	Method string
	// Path is the ServeMux path pattern, such as "/v1/me/sessions/{id}".
	Path string
	// Handler serves the route.
	Handler http.Handler
	// Auth is the credential the route accepts: AuthSession, AuthAny
	// (session or API key) or AuthNone.
	Auth string
	// WritesTable marks a GET route that writes to the table, so its
	// function gets write permissions. Other methods always get them, and
	// so do routes that accept API keys, because each API-key request
	// counts against the key's rate limit.
	WritesTable bool
}

// Credentials a route accepts.
const (
	AuthNone    = "none"
	AuthSession = "session"
	AuthAny     = "session_or_api_key"
)

// ReadOnly reports whether the route's function needs only read access to
// the table.
func (r Route) ReadOnly() bool {
	return r.Method == http.MethodGet && !r.WritesTable && r.Auth != AuthAny
}

// Pattern returns the ServeMux pattern "METHOD PATH".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// HandlerFunc is an HTTP handler that returns its error, which is written
// as a problem response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and writes its error as a problem response.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// Mux serves a route table: each route's pattern, and problem responses
// for unknown paths (404) and for known paths with another method (405).
type Mux struct {
	routes []Route
	mux    *http.ServeMux
}

// NewMux returns a mux over the routes. It returns an error for a route
// with an empty name, a duplicate name or a pattern ServeMux rejects.
func NewMux(routes []Route) (*Mux, error) {
	m := &Mux{mux: http.NewServeMux()}
	seen := map[string]bool{}
	for _, rt := range routes {
		if rt.Name == "" || rt.Handler == nil {
			return nil, fmt.Errorf("route %q: name and handler are required", rt.Pattern())
		}
		if seen[rt.Name] {
			return nil, fmt.Errorf("route %q: duplicate name %q", rt.Pattern(), rt.Name)
		}
		seen[rt.Name] = true
		if err := register(m.mux, rt); err != nil {
			return nil, err
		}
		m.routes = append(m.routes, rt)
	}
	return m, nil
}

func register(mux *http.ServeMux, rt Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %s: %v", rt.Name, p)
		}
	}()
	mux.Handle(rt.Pattern(), rt.Handler)
	return nil
}

// Routes returns the routes the mux serves.
func (m *Mux) Routes() []Route { return slices.Clone(m.routes) }

// ServeHTTP dispatches the request to its route, or writes a 404 or 405
// problem.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := m.mux.Handler(r); pattern != "" {
		if info, ok := r.Context().Value(requestInfoKey).(*requestInfo); ok {
			info.pattern = pattern
		}
		m.mux.ServeHTTP(w, r)
		return
	}

	path := redactPath(r.URL.Path)
	allowed := m.allowedMethods(r)
	if len(allowed) == 0 {
		WriteError(w, r, &apperr.Error{Code: apperr.NotFound, Reason: "route_not_found",
			Message: fmt.Sprintf("No route matches %s %s.", r.Method, path)})
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, r, &apperr.Error{Code: apperr.MethodNotAllowed, Reason: "method_not_allowed",
		Message: fmt.Sprintf("%s is not allowed on %s; use %s.", r.Method, path, strings.Join(allowed, " or "))})
}

// secretPrefixes start the bearer secrets that can appear in a path.
var secretPrefixes = []string{"sst_", "sess_", "signsecure_"}

// redactPath replaces path segments that hold a secret, such as the token
// of a signing link, so error details never echo one.
func redactPath(path string) string {
	segments := strings.Split(path, "/")
	for i, seg := range segments {
		for _, prefix := range secretPrefixes {
			if strings.HasPrefix(seg, prefix) {
				segments[i] = prefix + "[redacted]"
			}
		}
	}
	return strings.Join(segments, "/")
}

// allowedMethods returns the methods of the routes whose path matches r.
func (m *Mux) allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := m.mux.Handler(probe); pattern != "" {
			allowed = append(allowed, method)
		}
	}
	return allowed
}
