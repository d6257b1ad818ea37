package apidoc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apidoc"
	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// Test keys of the app under test.
var (
	testCursorKey  = bytes.Repeat([]byte{7}, 32)
	testSigningKey = bytes.Repeat([]byte{9}, 32)
)

// testApp is the whole route table behind its middleware on a loopback
// server over a fresh table, with a client that validates every response
// against the document.
type testApp struct {
	app    *app.App
	env    *localstacktest.Env
	client *apiClient
}

// newTestApp builds the app from cfg (nil for the test defaults) over a
// fresh table and serves it.
func newTestApp(t *testing.T, configure func(*app.Config)) *testApp {
	t.Helper()
	env := localstacktest.New(t)
	cfg := app.DefaultConfig(env.TableName, env.BucketName, testCursorKey, testSigningKey)
	cfg.Accounts.Password = accounts.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	cfg.Webhooks.QueueURL = env.Queues["WebhookDeliveriesQueue"].URL
	cfg.Webhooks.AllowInsecureLoopback = true // the test's receiver listens on 127.0.0.1
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(cfg, app.Deps{DynamoDB: env.Clients.DynamoDB, S3: env.Clients.S3, SQS: env.Clients.SQS, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}

	routes := a.Routes()
	if !hasPattern(routes, openAPIRoute) {
		routes = append(routes, httpapi.Route{Name: "openapi-get", Method: http.MethodGet, Path: "/v1/openapi.json", Handler: apidoc.Handler(), Auth: httpapi.AuthNone})
	}
	h, err := a.Handler(routes, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testApp{app: a, env: env, client: newAPIClient(srv.URL, routes)}
}

func hasPattern(routes []httpapi.Route, pattern string) bool {
	for _, rt := range routes {
		if rt.Pattern() == pattern {
			return true
		}
	}
	return false
}

// apiClient sends requests and validates each response against the
// document. It records the statuses that each route responded with.
type apiClient struct {
	base     string
	patterns *http.ServeMux

	mu       sync.Mutex
	statuses map[string]map[int]int // by route pattern
}

func newAPIClient(base string, routes []httpapi.Route) *apiClient {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Pattern(), http.NotFoundHandler())
	}
	return &apiClient{base: base, patterns: mux, statuses: map[string]map[int]int{}}
}

// reply is a response, read whole.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// request describes one call. A string body is sent as JSON, and a []byte
// body with contentType.
type request struct {
	method, path string
	token        string
	body         any
	contentType  string
	headers      map[string]string
}

// send performs the request, validates the response against the document
// and returns it.
func (c *apiClient) send(t *testing.T, in request) reply {
	t.Helper()
	var body io.Reader
	contentType := in.contentType
	switch b := in.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
		if contentType == "" {
			contentType = "application/json"
		}
	case []byte:
		body = bytes.NewReader(b)
	default:
		t.Fatalf("request body of type %T", in.body)
	}
	req, err := http.NewRequest(in.method, c.base+in.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if in.token != "" {
		req.Header.Set("Authorization", "Bearer "+in.token)
	}
	for k, v := range in.headers {
		req.Header.Set(k, v)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", in.method, in.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", in.method, in.path, err)
	}
	out := reply{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.Contains(res.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &out.body)
	}

	if err := apidoc.ValidateResponse(req, res.StatusCode, res.Header, raw); err != nil {
		t.Errorf("response does not match the document: %v\nbody: %.600s", err, raw)
	}
	c.record(req, res.StatusCode)
	return out
}

func (c *apiClient) record(req *http.Request, status int) {
	_, pattern := c.patterns.Handler(req)
	if pattern == "" {
		pattern = "(no route)"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statuses[pattern] == nil {
		c.statuses[pattern] = map[int]int{}
	}
	c.statuses[pattern][status]++
}

// coverage returns the statuses seen by route pattern, sorted, as lines
// such as "GET /v1/me: 200x3 401x2".
func (c *apiClient) coverage() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for pattern, counts := range c.statuses {
		var statuses []int
		for s := range counts {
			statuses = append(statuses, s)
		}
		sort.Ints(statuses)
		line := pattern + ":"
		for _, s := range statuses {
			line += fmt.Sprintf(" %dx%d", s, counts[s])
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return lines
}

// merge adds the statuses that other recorded to c's.
func (c *apiClient) merge(other *apiClient) {
	other.mu.Lock()
	defer other.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for pattern, counts := range other.statuses {
		if c.statuses[pattern] == nil {
			c.statuses[pattern] = map[int]int{}
		}
		for status, n := range counts {
			c.statuses[pattern][status] += n
		}
	}
}

// succeeded reports whether the route responded with a 2xx status.
func (c *apiClient) succeeded(pattern string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.statuses[pattern] {
		if s >= 200 && s < 300 {
			return true
		}
	}
	return false
}

// wantStatus fails the test at once when the status differs, because the
// steps after it depend on the call.
func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d; want %d; body %.600s", r.status, status, r.raw)
	}
}

// wantProblem checks a problem response's status and code.
func wantProblem(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d; want %d (%s); body %.600s", r.status, status, code, r.raw)
		return
	}
	if got, _ := r.body["code"].(string); got != code {
		t.Errorf("code = %q; want %q; body %.600s", got, code, r.raw)
	}
}

// field returns the string at a path of nested objects, or "".
func field(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = obj[p]
	}
	s, _ := v.(string)
	return s
}

// items returns the data array of a list response.
func items(r reply) []map[string]any {
	list, _ := r.body["data"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
