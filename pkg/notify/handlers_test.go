package notify_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/notify"
)

// testAPI serves the notification routes with the caller that the
// X-Test-User header names, as a session in the personal workspace, or as
// an API key when X-Test-Kind is api_key.
func testAPI(t *testing.T, f *fixture) http.Handler {
	t.Helper()
	session := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			userID := r.Header.Get("X-Test-User")
			kind := authn.KindSession
			if r.Header.Get("X-Test-Kind") == authn.KindAPIKey {
				kind = authn.KindAPIKey
			}
			ctx := authn.WithCaller(r.Context(), &authn.Caller{Kind: kind, UserID: userID, WorkspaceID: userID})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	mux, err := httpapi.NewMux(notify.Routes(notify.Handlers{Service: f.service}, session, session))
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.Wrap(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

type response struct {
	status int
	body   map[string]any
}

func call(t *testing.T, h http.Handler, userID, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("X-Test-User", userID)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out := response{status: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &out.body); err != nil {
		t.Fatalf("%s %s: response is not a JSON object: %q", method, path, rec.Body.String())
	}
	return out
}

func TestNotificationRoutes(t *testing.T) {
	f := newFixture(t)
	h := testAPI(t, f)
	userID := ids.New(ids.User)
	created := f.create(t, userID, 3)

	list := call(t, h, userID, "GET", "/v1/notifications?limit=2", "")
	if list.status != http.StatusOK {
		t.Fatalf("list status = %d; body %v", list.status, list.body)
	}
	data := list.body["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["id"] != created[2] {
		t.Errorf("first page = %v; want 2 items starting with %s", data, created[2])
	}
	if list.body["next_cursor"] == nil {
		t.Error("first page has no next_cursor")
	}
	first := data[0].(map[string]any)
	for _, field := range []string{"id", "type", "title", "body", "event_id", "data", "read_at", "created_at"} {
		if _, ok := first[field]; !ok {
			t.Errorf("notification lacks field %q", field)
		}
	}

	if got := call(t, h, userID, "GET", "/v1/notifications/unread-count", ""); got.body["unread"] != 3.0 {
		t.Errorf("unread-count = %v; want 3", got.body)
	}
	read := call(t, h, userID, "POST", "/v1/notifications/"+created[0]+"/read", "")
	if read.status != http.StatusOK || read.body["read_at"] == nil {
		t.Errorf("read = %d %v; want 200 with read_at", read.status, read.body)
	}
	if got := call(t, h, userID, "GET", "/v1/notifications?unread=true", ""); len(got.body["data"].([]any)) != 2 {
		t.Errorf("unread list = %v; want 2 items", got.body["data"])
	}
	if got := call(t, h, userID, "POST", "/v1/notifications/read-all", ""); got.status != http.StatusOK || got.body["marked"] != 2.0 {
		t.Errorf("read-all = %d %v; want 200 marked 2", got.status, got.body)
	}
	if got := call(t, h, userID, "GET", "/v1/notifications/unread-count", ""); got.body["unread"] != 0.0 {
		t.Errorf("unread-count after read-all = %v; want 0", got.body)
	}
}

func TestNotificationRoutesErrors(t *testing.T) {
	f := newFixture(t)
	h := testAPI(t, f)
	ada, bob := ids.New(ids.User), ids.New(ids.User)
	adaIDs := f.create(t, ada, 1)

	cases := []struct {
		name, userID, method, path, body string
		status                           int
		code                             string
	}{
		{"read another user's notification", bob, "POST", "/v1/notifications/" + adaIDs[0] + "/read", "", 404, "notification_not_found"},
		{"read unknown id", ada, "POST", "/v1/notifications/" + ids.New(ids.Notification) + "/read", "", 404, "notification_not_found"},
		{"bad unread filter", ada, "GET", "/v1/notifications?unread=yes", "", 400, "invalid_unread"},
		{"bad limit", ada, "GET", "/v1/notifications?limit=0", "", 400, "invalid_limit"},
		{"forged cursor", ada, "GET", "/v1/notifications?cursor=abc", "", 400, "invalid_cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, h, tc.userID, tc.method, tc.path, tc.body)
			if got.status != tc.status {
				t.Errorf("status = %d; want %d", got.status, tc.status)
			}
			if got.body["code"] != tc.code {
				t.Errorf("code = %v; want %s", got.body["code"], tc.code)
			}
		})
	}
	if n := f.unread(t, ada); n != 1 {
		t.Errorf("Ada's unread = %d; want 1, because no request changed anything", n)
	}
}

func TestAPIKeyCallerRejected(t *testing.T) {
	f := newFixture(t)
	h := testAPI(t, f)
	req := httptest.NewRequest("GET", "/v1/notifications", nil)
	req.Header.Set("X-Test-User", ids.New(ids.User))
	req.Header.Set("X-Test-Kind", authn.KindAPIKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d; want 401", rec.Code)
	}
}

func TestPreferenceRoutes(t *testing.T) {
	f := newFixture(t)
	h := testAPI(t, f)
	userID := ids.New(ids.User)

	got := call(t, h, userID, "GET", "/v1/notification-preferences", "")
	if got.status != http.StatusOK || len(got.body) != len(notify.Types) {
		t.Fatalf("get = %d %v; want 200 with %d types", got.status, got.body, len(notify.Types))
	}
	for _, typ := range notify.Types {
		if got.body[typ] != true {
			t.Errorf("%s = %v; want true", typ, got.body[typ])
		}
	}

	got = call(t, h, userID, "PATCH", "/v1/notification-preferences", `{"envelope.signed": false}`)
	if got.status != http.StatusOK || got.body[events.EnvelopeSigned] != false || got.body[events.NewLogin] != true {
		t.Errorf("patch = %d %v; want envelope.signed off and the rest on", got.status, got.body)
	}
}

func TestPreferenceRoutesRejectBadInput(t *testing.T) {
	cases := []struct {
		name, body, code, field string
	}{
		{"unknown type", `{"envelope.signed": false, "envelope.exploded": false}`, "unknown_notification_type", "envelope.exploded"},
		{"not a boolean", `{"envelope.signed": "no"}`, "wrong_type", "envelope.signed"},
		{"null", `{"envelope.signed": null}`, "wrong_type", "envelope.signed"},
		{"empty object", `{}`, "empty_preferences", ""},
		{"array", `[]`, "malformed_json", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h := testAPI(t, f)
			userID := ids.New(ids.User)

			got := call(t, h, userID, "PATCH", "/v1/notification-preferences", tc.body)
			if got.status != http.StatusBadRequest {
				t.Errorf("status = %d; want 400", got.status)
			}
			if got.body["code"] != tc.code {
				t.Errorf("code = %v; want %s", got.body["code"], tc.code)
			}
			if tc.field != "" && got.body["field"] != tc.field {
				t.Errorf("field = %v; want %s", got.body["field"], tc.field)
			}
			if tc.field != "" && !strings.Contains(got.body["detail"].(string), tc.field) {
				t.Errorf("detail %q does not name %s", got.body["detail"], tc.field)
			}
			prefs := call(t, h, userID, "GET", "/v1/notification-preferences", "")
			if prefs.body[events.EnvelopeSigned] != true {
				t.Error("a rejected request turned envelope.signed off")
			}
		})
	}
}
