package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/store"
)

type payload struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Tags  []string
}

func decode(body, contentType string) error {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	var p payload
	return httpapi.DecodeJSON(httptest.NewRecorder(), req, &p)
}

func TestDecodeJSONErrors(t *testing.T) {
	cases := []struct {
		name, body, contentType string
		code                    apperr.Code
		reason, field           string
	}{
		{"empty", "", "", apperr.Invalid, "empty_body", ""},
		{"whitespace", "  \n", "", apperr.Invalid, "empty_body", ""},
		{"syntax", `{"name":}`, "", apperr.Invalid, "malformed_json", ""},
		{"truncated", `{"name":"a"`, "", apperr.Invalid, "malformed_json", ""},
		{"array", `[]`, "", apperr.Invalid, "malformed_json", ""},
		{"unknown field", `{"nme":"a"}`, "", apperr.Invalid, "unknown_field", "nme"},
		{"wrong type", `{"count":"3"}`, "", apperr.Invalid, "wrong_type", "count"},
		{"trailing", `{"name":"a"}{"name":"b"}`, "", apperr.Invalid, "malformed_json", ""},
		{"too large", `{"name":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, "", apperr.TooLarge, "body_too_large", ""},
		{"case-folded field", `{"NAME":"a"}`, "", apperr.Invalid, "unknown_field", "NAME"},
		{"duplicate field", `{"name":"a","name":"b"}`, "", apperr.Invalid, "duplicate_field", "name"},
		{"invalid UTF-8", "{\"name\":\"\xff\xfe\"}", "", apperr.Invalid, "malformed_json", ""},
		{"null body", `null`, "", apperr.Invalid, "malformed_json", ""},
		{"form content type", `{"name":"a"}`, "application/x-www-form-urlencoded", apperr.Invalid, "unsupported_content_type", "Content-Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := decode(tc.body, tc.contentType)
			ae := apperr.As(err)
			if ae == nil {
				t.Fatalf("error = %v; want an *apperr.Error", err)
			}
			if ae.Code != tc.code {
				t.Errorf("code = %s; want %s", ae.Code, tc.code)
			}
			if ae.ReasonCode() != tc.reason {
				t.Errorf("reason = %s; want %s", ae.ReasonCode(), tc.reason)
			}
			if ae.Field != tc.field {
				t.Errorf("field = %q; want %q", ae.Field, tc.field)
			}
		})
	}
}

func TestDecodeJSONAccepts(t *testing.T) {
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/merge-patch+json"} {
		if err := decode(`{"name":"a","count":2}`, ct); err != nil {
			t.Errorf("Content-Type %q: %v", ct, err)
		}
	}
}

func newMux(t *testing.T) http.Handler {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, 200, map[string]string{"id": r.PathValue("id")})
	})
	mux, err := httpapi.NewMux([]httpapi.Route{
		{Name: "thing-get", Method: "GET", Path: "/v1/things/{id}", Handler: ok},
		{Name: "thing-delete", Method: "DELETE", Path: "/v1/things/{id}", Handler: ok},
		{Name: "boom", Method: "GET", Path: "/v1/boom", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") })},
		{Name: "fail", Method: "GET", Path: "/v1/fail", Handler: httpapi.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			return errors.New("database password=hunter2 unreachable")
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
}

func serve(h http.Handler, method, path string) (*httptest.ResponseRecorder, map[string]any) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec, body
}

func TestMuxProblems(t *testing.T) {
	h := newMux(t)
	cases := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown path", "GET", "/v1/nope", 404, "route_not_found"},
		{"wrong method", "PATCH", "/v1/things/1", 405, "method_not_allowed"},
		{"panic", "GET", "/v1/boom", 500, "internal"},
		{"internal error", "GET", "/v1/fail", 500, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, body := serve(h, tc.method, tc.path)
			if rec.Code != tc.status {
				t.Errorf("status = %d; want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != httpapi.ProblemContentType {
				t.Errorf("Content-Type = %q", ct)
			}
			if body["code"] != tc.code {
				t.Errorf("code = %v; want %s", body["code"], tc.code)
			}
			if body["request_id"] != rec.Header().Get("X-Request-Id") || body["request_id"] == "" {
				t.Errorf("request_id %v does not match X-Request-Id %q", body["request_id"], rec.Header().Get("X-Request-Id"))
			}
		})
	}
}

func TestInternalErrorTextNotSent(t *testing.T) {
	rec, _ := serve(newMux(t), "GET", "/v1/fail")
	if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "database") {
		t.Errorf("500 body leaks the internal error: %s", rec.Body)
	}
}

func TestMuxAllowHeader(t *testing.T) {
	rec, _ := serve(newMux(t), "POST", "/v1/things/1")
	if got := rec.Header().Get("Allow"); got != "GET, DELETE" {
		t.Errorf("Allow = %q; want \"GET, DELETE\"", got)
	}
}

func TestMuxPathValue(t *testing.T) {
	rec, body := serve(newMux(t), "GET", "/v1/things/abc")
	if rec.Code != 200 || body["id"] != "abc" {
		t.Errorf("GET /v1/things/abc = %d %v", rec.Code, body)
	}
}

func TestNewMuxRejectsDuplicateNames(t *testing.T) {
	h := http.NotFoundHandler()
	_, err := httpapi.NewMux([]httpapi.Route{
		{Name: "a", Method: "GET", Path: "/a", Handler: h},
		{Name: "a", Method: "GET", Path: "/b", Handler: h},
	})
	if err == nil {
		t.Error("NewMux accepted two routes named a")
	}
	_, err = httpapi.NewMux([]httpapi.Route{
		{Name: "a", Method: "GET", Path: "/a", Handler: h},
		{Name: "b", Method: "GET", Path: "/a", Handler: h},
	})
	if err == nil {
		t.Error("NewMux accepted two routes with one pattern")
	}
}

func TestProblemRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	httpapi.WriteError(rec, httptest.NewRequest("GET", "/", nil), &apperr.Error{Code: apperr.RateLimited, Message: "slow down", RetryAfter: 1500e6})
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("status %d Retry-After %q; want 429 and 2", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestPageParams(t *testing.T) {
	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-1"} {
		_, _, err := httpapi.PageParams(httptest.NewRequest("GET", "/?"+q, nil))
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("%s: error = %v; want invalid", q, err)
		}
	}
	limit, cursor, err := httpapi.PageParams(httptest.NewRequest("GET", "/?limit=5&cursor=abc", nil))
	if err != nil || limit != 5 || cursor != "abc" {
		t.Errorf("PageParams = %d %q %v", limit, cursor, err)
	}
}

func TestRequestLogHasRouteNotPath(t *testing.T) {
	var logs strings.Builder
	mux, err := httpapi.NewMux([]httpapi.Route{{Name: "secret", Method: "GET", Path: "/v1/signing/{token}", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/signing/sst_supersecret", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/signing/sst_supersecret/typo", nil))

	if strings.Contains(logs.String(), "supersecret") {
		t.Errorf("request log contains the path's token: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"route":"GET /v1/signing/{token}"`) {
		t.Errorf("request log lacks the route pattern: %s", logs.String())
	}
}

func TestNotFoundDetailRedactsTokens(t *testing.T) {
	rec, body := serve(newMux(t), "GET", "/v1/signing/sst_abcdefSECRET/nope")
	if rec.Code != 404 || strings.Contains(rec.Body.String(), "SECRET") {
		t.Errorf("404 body echoes the token: %s", rec.Body)
	}
	if d, _ := body["detail"].(string); !strings.Contains(d, "sst_[redacted]") {
		t.Errorf("detail = %q; want the redacted segment", d)
	}
}

func TestWriteErrorMapsStoreCursorError(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/things?cursor=forged", nil)
	httpapi.WriteError(rec, req, fmt.Errorf("list things: %w", store.ErrInvalidCursor))

	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 400 {
		t.Errorf("status = %d; want 400", rec.Code)
	}
	if body["code"] != "invalid_cursor" || body["field"] != "cursor" {
		t.Errorf("problem = %v; want code invalid_cursor on field cursor", body)
	}
	if d, _ := body["detail"].(string); !strings.Contains(d, "forged") {
		t.Errorf("detail %q does not name the cursor", d)
	}
}
