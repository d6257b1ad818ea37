package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// testSigningKey derives signing links and invitation codes in tests.
var testSigningKey = bytes.Repeat([]byte{9}, 32)

// testConfig returns the default configuration over a test environment's
// table, bucket and webhook queue, with loopback webhook receivers allowed.
func testConfig(env *localstacktest.Env) Config {
	cfg := DefaultConfig(env.TableName, env.BucketName, bytes.Repeat([]byte{7}, 32), testSigningKey)
	cfg.Webhooks.QueueURL = env.Queues["WebhookDeliveriesQueue"].URL
	cfg.Webhooks.AllowInsecureLoopback = true
	return cfg
}

// testAPI is the whole route table behind its middleware on a loopback
// server, over a fresh table.
type testAPI struct {
	t     *testing.T
	url   string
	db    *dynamodb.Client
	table string
}

// newTestAPIApp returns the whole route table behind its middleware over a
// fresh table.
func newTestAPIApp(t *testing.T) http.Handler {
	h, _ := newTestHandler(t)
	return h
}

func newTestHandler(t *testing.T) (http.Handler, *localstacktest.Env) {
	t.Helper()
	env := localstacktest.New(t)
	cfg := testConfig(env)
	cfg.Accounts.Password = accounts.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	a, err := New(cfg, Deps{DynamoDB: env.Clients.DynamoDB, S3: env.Clients.S3, SQS: env.Clients.SQS, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.Handler(a.Routes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, env
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	h, env := newTestHandler(t)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testAPI{t: t, url: srv.URL, db: env.Clients.DynamoDB, table: env.TableName}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (api *testAPI) do(method, path, token string, body io.Reader, headers ...string) response {
	api.t.Helper()
	req, err := http.NewRequest(method, api.url+path, body)
	if err != nil {
		api.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		api.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

func (api *testAPI) json(method, path, token, body string) response {
	api.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return api.do(method, path, token, r)
}

func (api *testAPI) countItems() int {
	api.t.Helper()
	out, err := api.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &api.table, Select: types.SelectCount, ConsistentRead: new(true)})
	if err != nil {
		api.t.Fatal(err)
	}
	return int(out.Count)
}

func (api *testAPI) signup(email, password string) (userID, token string) {
	api.t.Helper()
	res := api.json("POST", "/v1/auth/signup", "", `{"name":"Ada","email":"`+email+`","password":"`+password+`"}`)
	if res.status != http.StatusCreated {
		api.t.Fatalf("signup %s: %d %s", email, res.status, res.raw)
	}
	return res.body["user"].(map[string]any)["id"].(string), res.body["session"].(map[string]any)["token"].(string)
}

// wantProblem checks a problem response's status, code and, when given,
// the field it names.
func wantProblem(t *testing.T, res response, status int, code, field string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d; want %d (body %s)", res.status, status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q; want application/problem+json", ct)
	}
	if res.body["code"] != code {
		t.Errorf("code = %v; want %q (body %s)", res.body["code"], code, res.raw)
	}
	if field != "" && res.body["field"] != field {
		t.Errorf("field = %v; want %q", res.body["field"], field)
	}
	if res.body["request_id"] == "" || res.body["request_id"] == nil {
		t.Errorf("problem has no request_id: %s", res.raw)
	}
	if d, _ := res.body["detail"].(string); d == "" {
		t.Errorf("problem has no detail: %s", res.raw)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")
	before := api.countItems()

	cases := []struct {
		name          string
		method, path  string
		token         string
		body          string
		status        int
		code, field   string
		detailMention string
	}{
		{"malformed JSON", "POST", "/v1/auth/signup", "", `{"name":`, 400, "malformed_json", "", ""},
		{"not an object", "POST", "/v1/auth/signup", "", `[1,2]`, 400, "malformed_json", "", ""},
		{"unknown field", "POST", "/v1/auth/signup", "", `{"name":"A","email":"b@example.com","password":"a long enough password","admin":true}`, 400, "unknown_field", "admin", "admin"},
		{"wrong type", "POST", "/v1/auth/signup", "", `{"name":42,"email":"b@example.com","password":"a long enough password"}`, 400, "wrong_type", "name", "name"},
		{"empty body", "POST", "/v1/auth/signup", "", ``, 400, "empty_body", "", ""},
		{"trailing data", "POST", "/v1/auth/signup", "", `{"name":"A","email":"b@example.com","password":"a long enough password"} {}`, 400, "malformed_json", "", ""},
		{"invalid email", "POST", "/v1/auth/signup", "", `{"name":"A","email":"not-an-email","password":"a long enough password"}`, 400, "invalid_email", "email", "not-an-email"},
		{"duplicate email", "POST", "/v1/auth/signup", "", `{"name":"A","email":"ADA@example.com","password":"a long enough password"}`, 409, "email_taken", "email", "ADA@example.com"},
		{"short password", "POST", "/v1/auth/signup", "", `{"name":"A","email":"b@example.com","password":"short"}`, 400, "invalid_password", "password", "password"},
		{"no authorization", "GET", "/v1/me", "", ``, 401, "missing_credentials", "", ""},
		{"unknown token", "GET", "/v1/me", "sess_0000000000000000000000000000000000000000000", ``, 401, "invalid_session", "", ""},
		{"API key on a session route", "PATCH", "/v1/me", "signsecure_abc", `{"name":"B"}`, 401, "session_required", "", ""},
		{"unknown profile field", "PATCH", "/v1/me", token, `{"nickname":"B"}`, 400, "unknown_field", "nickname", "nickname"},
		{"empty profile update", "PATCH", "/v1/me", token, `{}`, 400, "empty_update", "", ""},
		{"unknown route", "GET", "/v1/nothing-here", "", ``, 404, "route_not_found", "", "/v1/nothing-here"},
		{"wrong method", "DELETE", "/v1/me", token, ``, 405, "method_not_allowed", "", "DELETE"},
		{"bad limit", "GET", "/v1/me/sessions?limit=0", token, ``, 400, "invalid_limit", "limit", "0"},
		{"forged cursor", "GET", "/v1/me/sessions?cursor=abc", token, ``, 400, "invalid_cursor", "cursor", "abc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := api.json(tc.method, tc.path, tc.token, tc.body)
			wantProblem(t, res, tc.status, tc.code, tc.field)
			if d, _ := res.body["detail"].(string); tc.detailMention != "" && !strings.Contains(d, tc.detailMention) {
				t.Errorf("detail %q does not name %q", d, tc.detailMention)
			}
		})
	}
	if after := api.countItems(); after != before {
		t.Errorf("items after bad requests = %d; want %d", after, before)
	}
}

func TestMalformedAuthorizationHeader(t *testing.T) {
	api := newTestAPI(t)
	for _, value := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "sess_abc"} {
		res := api.do("GET", "/v1/me", "", nil, "Authorization", value)
		wantProblem(t, res, 401, "malformed_credentials", "")
		if res.header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: no WWW-Authenticate header", value)
		}
	}
}

func TestOversizedBodyRejected(t *testing.T) {
	api := newTestAPI(t)
	body := `{"name":"` + strings.Repeat("a", 2<<20) + `","email":"b@example.com","password":"a long enough password"}`
	res := api.json("POST", "/v1/auth/signup", "", body)
	wantProblem(t, res, http.StatusRequestEntityTooLarge, "body_too_large", "")
	if n := api.countItems(); n != 0 {
		t.Errorf("items after an oversized signup = %d; want 0", n)
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	api := newTestAPI(t)
	res := api.json("PUT", "/v1/me", "", `{}`)
	if got := res.header.Get("Allow"); got != "GET, PATCH" {
		t.Errorf("Allow = %q; want \"GET, PATCH\"", got)
	}
}

func TestProfileWalkthrough(t *testing.T) {
	api := newTestAPI(t)
	_, first := api.signup("ada@example.com", "a long enough password")

	login := api.json("POST", "/v1/auth/login", "", `{"email":"ADA@EXAMPLE.COM","password":"a long enough password"}`)
	if login.status != 200 {
		t.Fatalf("login: %d %s", login.status, login.raw)
	}
	second := login.body["session"].(map[string]any)["token"].(string)

	if me := api.json("GET", "/v1/me", second, ""); me.status != 200 || me.body["email"] != "ada@example.com" {
		t.Fatalf("GET /v1/me: %d %s", me.status, me.raw)
	}
	if res := api.json("PATCH", "/v1/me", second, `{"name":"Ada King","email":"countess@example.com","current_password":"a long enough password"}`); res.status != 200 || res.body["name"] != "Ada King" {
		t.Fatalf("PATCH /v1/me: %d %s", res.status, res.raw)
	}
	sessions := api.json("GET", "/v1/me/sessions", second, "")
	if n := len(sessions.body["data"].([]any)); n != 2 {
		t.Errorf("sessions listed = %d; want 2", n)
	}

	res := api.json("POST", "/v1/me/password", second, `{"current_password":"a long enough password","new_password":"an even longer password"}`)
	if res.status != 204 {
		t.Fatalf("change password: %d %s", res.status, res.raw)
	}
	wantProblem(t, api.json("GET", "/v1/me", first, ""), 401, "invalid_session", "")
	if res := api.json("GET", "/v1/me", second, ""); res.status != 200 {
		t.Errorf("GET /v1/me with the session that changed the password: %d", res.status)
	}

	if res := api.json("POST", "/v1/auth/logout", second, ""); res.status != 204 {
		t.Fatalf("logout: %d %s", res.status, res.raw)
	}
	wantProblem(t, api.json("GET", "/v1/me", second, ""), 401, "invalid_session", "")
}

func TestLoginThrottleSetsRetryAfter(t *testing.T) {
	api := newTestAPI(t)
	api.signup("ada@example.com", "a long enough password")
	var res response
	for range accounts.DefaultConfig().MaxFailuresPerAccount + 1 {
		res = api.json("POST", "/v1/auth/login", "", `{"email":"ada@example.com","password":"wrong password"}`)
	}
	wantProblem(t, res, http.StatusTooManyRequests, "too_many_login_attempts", "")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 response has no Retry-After header")
	}
}

func stringsReader(body string) io.Reader {
	if body == "" {
		return nil
	}
	return strings.NewReader(body)
}

func TestLoginWithHugeUserAgent(t *testing.T) {
	api := newTestAPI(t)
	api.signup("ada@example.com", "a long enough password")
	res := api.do("POST", "/v1/auth/login", "", strings.NewReader(`{"email":"ada@example.com","password":"a long enough password"}`),
		"User-Agent", strings.Repeat("x", 100_000))
	if res.status != http.StatusOK {
		t.Fatalf("login with a 100,000-character User-Agent: %d %s", res.status, res.raw)
	}
	if ua, _ := res.body["session"].(map[string]any)["user_agent"].(string); len(ua) > 300 {
		t.Errorf("session user agent has %d characters; want it cut", len(ua))
	}
}
