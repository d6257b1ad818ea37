package apidoc_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/signsecure/signsecure/pkg/apidoc"
)

const (
	userJSON     = `{"id":"usr_01jf3k8x2q7m9v4n5b6c7d8e9f","name":"Ada","email":"ada@example.com","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00.5Z"}`
	notFoundJSON = `{"type":"about:blank","title":"Not Found","status":404,"detail":"Envelope env_x was not found.","code":"envelope_not_found","request_id":"req_1"}`
)

func jsonHeader(contentType string) http.Header {
	return http.Header{"Content-Type": {contentType}, "X-Request-Id": {"req_1"}}
}

// TestValidateResponseAccepts pins responses that match the document, so
// that the cases of TestValidateResponseRejects fail for their one defect.
func TestValidateResponseAccepts(t *testing.T) {
	cases := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
	}{
		{"user", "GET", "/v1/me", 200, jsonHeader("application/json"), userJSON},
		{"problem", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", 404, jsonHeader("application/problem+json"), notFoundJSON},
		{"problem extension member", "POST", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f/send", 402, jsonHeader("application/problem+json"),
			`{"type":"about:blank","title":"Payment Required","status":402,"detail":"d","code":"insufficient_credits","request_id":"r","balance":0,"cost":1}`},
		{"no content", "DELETE", "/v1/api-keys/key_01jf3k8x2q7m9v4n5b6c7d8e9f", 204, http.Header{"X-Request-Id": {"req_1"}}, ""},
		{"unknown route", "GET", "/v1/nope", 404, jsonHeader("application/problem+json"),
			`{"type":"about:blank","title":"Not Found","status":404,"detail":"d","code":"route_not_found","request_id":"r"}`},
		{"method not allowed", "DELETE", "/v1/me", 405, http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"r"}, "Allow": {"GET, PATCH"}},
			`{"type":"about:blank","title":"Method Not Allowed","status":405,"detail":"d","code":"method_not_allowed","request_id":"r"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if err := apidoc.ValidateResponse(req, tc.status, tc.header, []byte(tc.body)); err != nil {
				t.Errorf("ValidateResponse: %v", err)
			}
		})
	}
}

// withField returns the JSON object with the member set, or removed when
// value is nil.
func withField(t *testing.T, object, name string, value any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(object), &m); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(m, name)
	} else {
		m[name] = value
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestValidateResponseRejects(t *testing.T) {
	cases := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		wantInError  string
	}{
		{"missing required member", "GET", "/v1/me", 200, jsonHeader("application/json"), withField(t, userJSON, "email", nil), "email"},
		{"unknown member", "GET", "/v1/me", 200, jsonHeader("application/json"), withField(t, userJSON, "password_hash", "x"), "password_hash"},
		{"member of another type", "GET", "/v1/me", 200, jsonHeader("application/json"), withField(t, userJSON, "name", 42), "name"},
		{"id without its prefix", "GET", "/v1/me", 200, jsonHeader("application/json"), withField(t, userJSON, "id", "01jf3k8x2q7m9v4n5b6c7d8e9f"), "id"},
		{"time not in UTC", "GET", "/v1/me", 200, jsonHeader("application/json"), withField(t, userJSON, "created_at", "2024-01-01T01:00:00+01:00"), "created_at"},
		{"status not declared", "GET", "/v1/me", 402, jsonHeader("application/problem+json"), notFoundJSON, "status is not supported"},
		{"content type not declared", "GET", "/v1/me", 200, jsonHeader("text/plain"), userJSON, "text/plain"},
		{"missing X-Request-Id", "GET", "/v1/me", 200, http.Header{"Content-Type": {"application/json"}}, userJSON, "X-Request-Id"},
		{"problem code of another status", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", 404, jsonHeader("application/problem+json"),
			withField(t, notFoundJSON, "code", "email_taken"), "code"},
		{"problem status member differs", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", 404, jsonHeader("application/problem+json"),
			withField(t, notFoundJSON, "status", 409), "status"},
		{"problem without request_id", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", 404, jsonHeader("application/problem+json"),
			withField(t, notFoundJSON, "request_id", nil), "request_id"},
		{"problem as application/json", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", 404, jsonHeader("application/json"), notFoundJSON, "application/json"},
		{"created without Location", "POST", "/v1/api-keys", 201, jsonHeader("application/json"), `{}`, "Location"},
		{"unknown route answered", "GET", "/v1/nope", 200, jsonHeader("application/json"), `{}`, "status is not supported"},
		{"405 without Allow", "DELETE", "/v1/me", 405, jsonHeader("application/problem+json"),
			`{"type":"about:blank","title":"Method Not Allowed","status":405,"detail":"d","code":"method_not_allowed","request_id":"r"}`, "Allow"},
		{"rate limit header not a number", "GET", "/v1/billing/wallet", 429,
			http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"r"}, "Retry-After": {"1"}, "Ratelimit-Remaining": {"many"}},
			`{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"d","code":"rate_limit_exceeded","request_id":"r"}`, "RateLimit-Remaining"},
		{"429 without Retry-After", "GET", "/v1/billing/wallet", 429, jsonHeader("application/problem+json"),
			`{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"d","code":"rate_limit_exceeded","request_id":"r"}`, "Retry-After"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			err := apidoc.ValidateResponse(req, tc.status, tc.header, []byte(tc.body))
			if err == nil {
				t.Fatal("ValidateResponse accepted the response")
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error %q does not mention %q", err, tc.wantInError)
			}
		})
	}
}

func TestHandlerServesDocument(t *testing.T) {
	rec := httptest.NewRecorder()
	apidoc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d; want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	if rec.Body.String() != string(apidoc.Document()) {
		t.Error("the body is not Document()")
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("the body is not JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v; want 3.1.0", doc["openapi"])
	}
}

func TestDocumentReturnsCopy(t *testing.T) {
	first := apidoc.Document()
	first[0] = 'X'
	if apidoc.Document()[0] == 'X' {
		t.Error("changing the result of Document changed the next result")
	}
}

func TestValidateResponseConcurrent(t *testing.T) {
	withoutEmail := withField(t, userJSON, "email", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("GET", "/v1/me", nil)
			body := userJSON
			if i%2 == 1 {
				body = withoutEmail
			}
			err := apidoc.ValidateResponse(req, 200, jsonHeader("application/json"), []byte(body))
			if (err == nil) == (i%2 == 1) {
				errs <- fmt.Errorf("goroutine %d: ValidateResponse = %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
