package apikeys

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/ids"
)

// withCaller replaces the session middleware in tests. It puts caller on the
// request's context.
func withCaller(caller *authn.Caller) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), caller)))
		})
	}
}

type httpResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// serve sends one request through the routes as caller, behind the shared
// middleware.
func (f *fixture) serve(t *testing.T, caller *authn.Caller, method, path, body string) httpResponse {
	t.Helper()
	mux, err := httpapi.NewMux(Routes(Handlers{Service: f.svc}, withCaller(caller), withCaller(caller)))
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)

	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, reader)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	res := httpResponse{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %s", method, path, res.raw)
		}
	}
	return res
}

func wantProblem(t *testing.T, res httpResponse, status int, code, field string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d; want %d (body %s)", res.status, status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Errorf("Content-Type = %q; want %s", ct, httpapi.ProblemContentType)
	}
	if res.body["code"] != code {
		t.Errorf("code = %v; want %q (body %s)", res.body["code"], code, res.raw)
	}
	if field != "" && res.body["field"] != field {
		t.Errorf("field = %v; want %q", res.body["field"], field)
	}
}

func TestRoutesAllUseSession(t *testing.T) {
	sessionWrapped := 0
	session := func(next http.Handler) http.Handler { sessionWrapped++; return next }
	anyCredential := func(next http.Handler) http.Handler {
		t.Error("a key management route uses session-or-API-key authentication")
		return next
	}
	routes := Routes(Handlers{}, session, anyCredential)

	want := map[string]string{
		"api-keys-create": "POST /v1/api-keys",
		"api-keys-list":   "GET /v1/api-keys",
		"api-keys-get":    "GET /v1/api-keys/{id}",
		"api-keys-update": "PATCH /v1/api-keys/{id}",
		"api-keys-revoke": "DELETE /v1/api-keys/{id}",
	}
	if len(routes) != len(want) {
		t.Errorf("routes = %d; want %d", len(routes), len(want))
	}
	for _, rt := range routes {
		if want[rt.Name] != rt.Pattern() {
			t.Errorf("route %s = %q; want %q", rt.Name, rt.Pattern(), want[rt.Name])
		}
		if rt.Method == http.MethodGet && !rt.ReadOnly() {
			t.Errorf("route %s writes the table; want read-only", rt.Name)
		}
	}
	if sessionWrapped != len(routes) {
		t.Errorf("routes behind session = %d; want all %d", sessionWrapped, len(routes))
	}
}

func TestHTTPCreateShowsSecretOnce(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	expires := f.clock.Now().Add(48 * time.Hour).Format(time.RFC3339)

	res := f.serve(t, caller, "POST", "/v1/api-keys", `{"name":"Deploys","expires_at":"`+expires+`","rate_limit_per_minute":120}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	secret, _ := res.body["key"].(string)
	if !Valid(secret) {
		t.Fatalf("key = %q; want a valid secret", secret)
	}
	id, _ := res.body["id"].(string)
	for _, field := range []string{"id", "name", "workspace_id", "prefix", "last_four", "created_at", "expires_at", "rate_limit_per_minute", "last_used_at"} {
		if _, ok := res.body[field]; !ok {
			t.Errorf("create response has no %q: %s", field, res.raw)
		}
	}
	if res.body["workspace_id"] != caller.WorkspaceID || res.body["expires_at"] != expires || res.body["rate_limit_per_minute"] != 120.0 {
		t.Errorf("create response = %s; want workspace %s, expires_at %s, limit 120", res.raw, caller.WorkspaceID, expires)
	}
	if got := res.header.Get("Location"); got != "/v1/api-keys/"+id {
		t.Errorf("Location = %q; want /v1/api-keys/%s", got, id)
	}

	for _, path := range []string{"/v1/api-keys", "/v1/api-keys/" + id} {
		read := f.serve(t, caller, "GET", path, "")
		if read.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, read.status, read.raw)
		}
		if strings.Contains(read.raw, secret) || strings.Contains(read.raw, secret[len(Prefix)+shownRandomChars:len(secret)-4]) {
			t.Errorf("GET %s shows the secret: %s", path, read.raw)
		}
		if strings.Contains(read.raw, `"key":`) {
			t.Errorf("GET %s has a key field: %s", path, read.raw)
		}
		if !strings.Contains(read.raw, id) {
			t.Errorf("GET %s does not show key %s: %s", path, id, read.raw)
		}
	}
}

func TestHTTPMemberCannotCreate(t *testing.T) {
	f := newFixture(t)
	org := ids.New(ids.Organization)
	member := inOrg(ids.New(ids.User), org, authn.RoleMember)

	res := f.serve(t, member, "POST", "/v1/api-keys", `{"name":"mine"}`)
	wantProblem(t, res, http.StatusForbidden, "insufficient_role", "")
	detail, _ := res.body["detail"].(string)
	for _, part := range []string{"Only owners and admins can create API keys", org, "your role is member"} {
		if !strings.Contains(detail, part) {
			t.Errorf("detail %q does not contain %q", detail, part)
		}
	}
	if res.body["role"] != "member" {
		t.Errorf("role = %v; want member", res.body["role"])
	}
	if n := len(f.scan(t)); n != 0 {
		t.Errorf("items after a forbidden create = %d; want 0", n)
	}

	owner := inOrg(ids.New(ids.User), org, authn.RoleOwner)
	k := f.create(t, owner, "org key", 0)
	if res := f.serve(t, member, "GET", "/v1/api-keys/"+k.ID, ""); res.status != http.StatusOK {
		t.Errorf("member GET: %d %s; want 200", res.status, res.raw)
	}
	wantProblem(t, f.serve(t, member, "DELETE", "/v1/api-keys/"+k.ID, ""), http.StatusForbidden, "insufficient_role", "")
	wantProblem(t, f.serve(t, member, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"x"}`), http.StatusForbidden, "insufficient_role", "")
}

func TestHTTPBadInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "existing", 0)
	foreign := f.create(t, personal(ids.New(ids.User)), "foreign", 0)
	past := f.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	before := f.scan(t)

	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"unknown field", "POST", "/v1/api-keys", `{"name":"a","scopes":["all"]}`, 400, "unknown_field", "scopes"},
		{"limit as string", "POST", "/v1/api-keys", `{"name":"a","rate_limit_per_minute":"10"}`, 400, "wrong_type", "rate_limit_per_minute"},
		{"fractional limit", "POST", "/v1/api-keys", `{"name":"a","rate_limit_per_minute":1.5}`, 400, "wrong_type", "rate_limit_per_minute"},
		{"limit over maximum", "POST", "/v1/api-keys", `{"name":"a","rate_limit_per_minute":10001}`, 400, "invalid_rate_limit", "rate_limit_per_minute"},
		{"expiry in the past", "POST", "/v1/api-keys", `{"name":"a","expires_at":"` + past + `"}`, 400, "invalid_expires_at", "expires_at"},
		{"missing name", "POST", "/v1/api-keys", `{}`, 400, "invalid_name", "name"},
		{"empty body", "POST", "/v1/api-keys", ``, 400, "empty_body", ""},
		{"malformed id", "GET", "/v1/api-keys/nope", ``, 400, "invalid_id", "id"},
		{"foreign id", "GET", "/v1/api-keys/" + foreign.ID, ``, 404, "api_key_not_found", ""},
		{"rename foreign id", "PATCH", "/v1/api-keys/" + foreign.ID, `{"name":"mine"}`, 404, "api_key_not_found", ""},
		{"revoke foreign id", "DELETE", "/v1/api-keys/" + foreign.ID, ``, 404, "api_key_not_found", ""},
		{"unknown update field", "PATCH", "/v1/api-keys/" + k.ID, `{"expires_at":"2030-01-01T00:00:00Z"}`, 400, "unknown_field", "expires_at"},
		{"empty update", "PATCH", "/v1/api-keys/" + k.ID, `{}`, 400, "empty_update", ""},
		{"bad page limit", "GET", "/v1/api-keys?limit=500", ``, 400, "invalid_limit", "limit"},
		{"forged cursor", "GET", "/v1/api-keys?cursor=abc", ``, 400, "invalid_cursor", "cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, f.serve(t, caller, tc.method, tc.path, tc.body), tc.status, tc.code, tc.field)
		})
	}

	after := f.scan(t)
	beforeJSON, _ := json.Marshal(before)
	afterJSON, _ := json.Marshal(after)
	if string(beforeJSON) != string(afterJSON) {
		t.Errorf("table changed after bad requests:\nbefore %s\nafter  %s", beforeJSON, afterJSON)
	}
}

func TestHTTPUpdateAndRevoke(t *testing.T) {
	f := newFixture(t)
	caller := inOrg(ids.New(ids.User), ids.New(ids.Organization), authn.RoleAdmin)
	k := f.create(t, caller, "before", 0)

	res := f.serve(t, caller, "PATCH", "/v1/api-keys/"+k.ID, `{"name":"after","rate_limit_per_minute":30}`)
	if res.status != http.StatusOK || res.body["name"] != "after" || res.body["rate_limit_per_minute"] != 30.0 {
		t.Errorf("PATCH: %d %s; want 200 with name after and limit 30", res.status, res.raw)
	}

	for i := range 2 {
		res := f.serve(t, caller, "DELETE", "/v1/api-keys/"+k.ID, "")
		if res.status != http.StatusNoContent {
			t.Errorf("DELETE %d: %d %s; want 204", i+1, res.status, res.raw)
		}
	}
	res = f.serve(t, caller, "GET", "/v1/api-keys/"+k.ID, "")
	if res.body["revoked_at"] == nil {
		t.Errorf("GET after revoke: %s; want revoked_at set", res.raw)
	}
	if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err == nil {
		t.Error("revoked key still authenticates")
	}
}

// TestHTTPRateLimitedResponse shows the 429 a middleware writes from
// Authenticate's error and usage.
func TestHTTPRateLimitedResponse(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, personal(ids.New(ids.User)), "tight", 1)

	h := httpapi.Wrap(httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, usage, err := f.svc.Authenticate(r.Context(), k.Secret)
		if usage.Limit > 0 {
			WriteRateLimitHeaders(w, usage)
		}
		if err != nil {
			return err
		}
		httpapi.NoContent(w)
		return nil
	}), slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)

	first := httptest.NewRecorder()
	h.ServeHTTP(first, httptest.NewRequest("GET", "/v1/anything", nil))
	if first.Code != http.StatusNoContent || first.Header().Get("RateLimit-Remaining") != "0" {
		t.Errorf("first request: %d, RateLimit-Remaining %q; want 204 and 0", first.Code, first.Header().Get("RateLimit-Remaining"))
	}

	second := httptest.NewRecorder()
	h.ServeHTTP(second, httptest.NewRequest("GET", "/v1/anything", nil))
	if second.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d %s; want 429", second.Code, second.Body)
	}
	wantHeaders := map[string]string{
		"Retry-After":         "50",
		"RateLimit-Limit":     "1",
		"RateLimit-Remaining": "0",
		"RateLimit-Reset":     "50",
	}
	for name, want := range wantHeaders {
		if got := second.Header().Get(name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(second.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["code"] != "rate_limit_exceeded" || body["rate_limit"] != 1.0 || body["rate_limit_reset"] != 50.0 {
		t.Errorf("429 body = %s; want code rate_limit_exceeded, rate_limit 1, rate_limit_reset 50", second.Body)
	}
}
