package envelopes

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// api serves the envelope routes with a test authentication middleware:
// "Authorization: Bearer <name>" selects a caller registered under name.
type api struct {
	t       *testing.T
	handler http.Handler
	callers map[string]*authn.Caller
	// responses collects every response, to search them for tokens.
	responses []response
}

type response struct {
	route string
	body  string
}

func newAPI(t *testing.T, f *fixture) *api {
	t.Helper()
	a := &api{t: t, callers: map[string]*authn.Caller{}}
	authenticate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			c, ok := a.callers[name]
			if !ok {
				http.Error(w, "test middleware: unknown caller", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), c)))
		})
	}
	mux, err := httpapi.NewMux(Routes(Handlers{Service: f.svc}, authenticate, authenticate))
	if err != nil {
		t.Fatal(err)
	}
	a.handler = httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	return a
}

func (a *api) do(caller, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.44:51000"
	req.Header.Set("User-Agent", "envelopes-test/1.0")
	if caller != "" {
		req.Header.Set("Authorization", "Bearer "+caller)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	a.responses = append(a.responses, response{route: method + " " + path, body: rec.Body.String()})
	return rec
}

func (a *api) json(caller, method, path string, in any, wantStatus int, out any) *httptest.ResponseRecorder {
	a.t.Helper()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			a.t.Fatal(err)
		}
	}
	rec := a.do(caller, method, path, "application/json", body)
	if rec.Code != wantStatus {
		a.t.Fatalf("%s %s = %d %s; want %d", method, path, rec.Code, rec.Body, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, rec.Body, err)
		}
	}
	return rec
}

func problemCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var p struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %s: %v", rec.Body, err)
	}
	return p.Code
}

func TestHTTPFlowNeverShowsTokens(t *testing.T) {
	f := newFixture(t, 10)
	a := newAPI(t, f)
	a.callers["ada"] = f.personal(t)

	var e Envelope
	a.json("ada", "POST", "/v1/envelopes", map[string]any{
		"title": "Sale", "email_notifications": "none",
		"recipients": []map[string]any{
			{"name": "Alice", "email": "alice@example.com", "role": "signer", "routing_order": 1},
			{"name": "Bob", "email": "bob@example.com", "role": "signer", "routing_order": 2},
		},
	}, http.StatusCreated, &e)

	rec := a.do("ada", "POST", "/v1/envelopes/"+e.ID+"/documents?filename=sale.pdf", "application/pdf", testPDF("sale"))
	if rec.Code != http.StatusCreated {
		t.Fatalf("upload = %d %s", rec.Code, rec.Body)
	}
	var doc Document
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}

	a.json("ada", "POST", "/v1/envelopes/"+e.ID+"/send", nil, http.StatusOK, &e)
	a.json("ada", "GET", "/v1/envelopes", nil, http.StatusOK, nil)
	a.json("ada", "GET", "/v1/envelopes/"+e.ID, nil, http.StatusOK, nil)
	a.json("ada", "GET", "/v1/envelopes/"+e.ID+"/documents", nil, http.StatusOK, nil)

	aliceToken, bobToken := tokenOf(e, 0), tokenOf(e, 1)
	var links httpapi.Page[SigningLinkInfo]
	linksRec := a.json("ada", "GET", "/v1/envelopes/"+e.ID+"/signing-links", nil, http.StatusOK, &links)
	if len(links.Data) != 1 || !strings.HasSuffix(links.Data[0].URL, "/"+aliceToken) {
		t.Fatalf("signing links = %+v; want alice's", links.Data)
	}
	linksResponse := len(a.responses) - 1

	var view SigningView
	viewRec := a.json("", "GET", "/v1/signing/"+aliceToken, nil, http.StatusOK, &view)
	if viewRec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("signing view Referrer-Policy = %q; want no-referrer", viewRec.Header().Get("Referrer-Policy"))
	}
	if len(view.Documents) != 1 || view.Documents[0].DownloadPath != "/v1/signing/{token}/documents/"+doc.ID {
		t.Errorf("signing view documents = %+v", view.Documents)
	}

	download := a.do("", "GET", "/v1/signing/"+aliceToken+"/documents/"+doc.ID, "", nil)
	if download.Code != http.StatusOK || download.Header().Get("Content-Type") != PDFContentType || !bytes.Equal(download.Body.Bytes(), testPDF("sale")) {
		t.Errorf("signer download = %d %q", download.Code, download.Header().Get("Content-Type"))
	}
	if cd := download.Header().Get("Content-Disposition"); cd != `attachment; filename=sale.pdf` {
		t.Errorf("Content-Disposition = %q", cd)
	}

	a.json("", "POST", "/v1/signing/"+aliceToken+"/sign", map[string]any{"typed_name": "Alice"}, http.StatusOK, nil)
	a.json("", "POST", "/v1/signing/"+bobToken+"/sign", map[string]any{"typed_name": "Bob"}, http.StatusOK, nil)
	again := a.do("", "POST", "/v1/signing/"+bobToken+"/sign", "application/json", []byte(`{"typed_name":"Bob"}`))
	if again.Code != http.StatusConflict {
		t.Errorf("second signature = %d; want 409", again.Code)
	}

	var trail httpapi.Page[AuditEntry]
	a.json("ada", "GET", "/v1/envelopes/"+e.ID+"/audit", nil, http.StatusOK, &trail)
	if last := trail.Data[len(trail.Data)-1]; last.Action != ActionCompleted {
		t.Errorf("last audit action = %s; want %s", last.Action, ActionCompleted)
	}
	for _, entry := range trail.Data {
		if entry.ActorType != ActorSystem && (entry.IP != "192.0.2.44" || entry.UserAgent != "envelopes-test/1.0") {
			t.Errorf("audit entry %s: ip %q user agent %q; want the request's", entry.Action, entry.IP, entry.UserAgent)
		}
	}
	a.json("ada", "GET", "/v1/envelopes/"+e.ID, nil, http.StatusOK, &e)
	if e.Status != StatusCompleted {
		t.Errorf("status = %s; want completed", e.Status)
	}

	for i, resp := range a.responses {
		if i == linksResponse {
			continue
		}
		if strings.Contains(resp.body, SigningTokenPrefix) || strings.Contains(resp.body, aliceToken[4:]) || strings.Contains(resp.body, bobToken[4:]) {
			t.Errorf("response to %s carries a signing token: %s", resp.route, resp.body)
		}
	}
	if !strings.Contains(linksRec.Body.String(), aliceToken) {
		t.Error("the signing-links response does not carry the link")
	}
	if strings.Contains(f.logs.String(), SigningTokenPrefix) {
		t.Errorf("service logs carry a signing token: %s", f.logs)
	}
}

func TestHTTPBadInput(t *testing.T) {
	f := newFixture(t, 0)
	a := newAPI(t, f)
	a.callers["ada"] = f.personal(t)
	var e Envelope
	a.json("ada", "POST", "/v1/envelopes", map[string]any{
		"title": "T", "recipients": []map[string]any{{"name": "Alice", "email": "alice@example.com", "role": "signer"}},
	}, http.StatusCreated, &e)
	docs := "/v1/envelopes/" + e.ID + "/documents"

	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
		code                            string
	}{
		{"unknown role", "POST", "/v1/envelopes", "application/json", []byte(`{"title":"T","recipients":[{"name":"A","email":"a@example.com","role":"approver"}]}`), 400, "invalid_role"},
		{"duplicate recipient", "POST", "/v1/envelopes", "application/json", []byte(`{"title":"T","recipients":[{"name":"A","email":"a@example.com","role":"signer"},{"name":"B","email":"A@EXAMPLE.COM","role":"cc"}]}`), 400, "duplicate_recipient"},
		{"unknown field", "POST", "/v1/envelopes", "application/json", []byte(`{"title":"T","cost":0}`), 400, "unknown_field"},
		{"document not a PDF", "POST", docs + "?filename=a.pdf", "application/pdf", []byte("GIF89a...."), 400, "invalid_pdf"},
		{"document of 5 MiB", "POST", docs + "?filename=a.pdf", "application/pdf", append(testPDF("x"), make([]byte, 5<<20)...), 413, "document_too_large"},
		{"document as JSON", "POST", docs + "?filename=a.pdf", "application/json", testPDF("x"), 400, "unsupported_content_type"},
		{"document without filename", "POST", docs, "application/pdf", testPDF("x"), 400, "invalid_filename"},
		{"send without document", "POST", "/v1/envelopes/" + e.ID + "/send", "", nil, 409, "no_documents"},
		{"malformed id", "GET", "/v1/envelopes/nope", "", nil, 400, "invalid_id"},
		{"unknown id", "GET", "/v1/envelopes/env_01jf3k8x2q7m9v4n5b6c7d8e9f", "", nil, 404, "envelope_not_found"},
		{"bad status filter", "GET", "/v1/envelopes?status=lost", "", nil, 400, "invalid_status"},
		{"bad cursor", "GET", "/v1/envelopes?cursor=abc", "", nil, 400, "invalid_cursor"},
		{"signing links of emailed envelope", "GET", "/v1/envelopes/" + e.ID + "/signing-links", "", nil, 409, "signing_links_emailed"},
		{"unknown signing token", "GET", "/v1/signing/sst_" + strings.Repeat("A", 43), "", nil, 404, "signing_link_invalid"},
	}
	before := f.countItems(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.do("ada", tc.method, tc.path, tc.contentType, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status = %d %s; want %d", rec.Code, rec.Body, tc.status)
			}
			if got := problemCode(t, rec); got != tc.code {
				t.Errorf("code = %s; want %s", got, tc.code)
			}
		})
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}

	rec := a.do("ada", "POST", docs+"?filename=a.pdf", "application/pdf", testPDF("ok"))
	if rec.Code != http.StatusCreated {
		t.Fatalf("upload = %d %s", rec.Code, rec.Body)
	}
	before = f.countItems(t)
	rec = a.do("ada", "POST", "/v1/envelopes/"+e.ID+"/send", "", nil)
	if rec.Code != http.StatusPaymentRequired || problemCode(t, rec) != "insufficient_credits" {
		t.Errorf("send without credits = %d %s; want 402 insufficient_credits", rec.Code, rec.Body)
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items after 402 = %d; want %d", after, before)
	}
}

func TestRoutesSigningNeedsNoAuthentication(t *testing.T) {
	// The stand-in middleware responds 204 with a marker header, so a route
	// behind it never reaches its handler.
	authenticate := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test-Authenticated", "1")
			w.WriteHeader(http.StatusNoContent)
		})
	}
	routes := Routes(Handlers{}, authenticate, authenticate)
	if len(routes) != 17 {
		t.Errorf("routes = %d; want 17", len(routes))
	}
	for _, rt := range routes {
		rec := httptest.NewRecorder()
		// A malformed token fails before the handler uses its service.
		rt.Handler.ServeHTTP(rec, httptest.NewRequest(rt.Method, "/", nil))
		authenticated := rec.Header().Get("X-Test-Authenticated") == "1"
		if signing := strings.HasPrefix(rt.Name, "signing-"); signing == authenticated {
			t.Errorf("route %s: behind authentication %v; want %v", rt.Name, authenticated, !signing)
		}
	}
}
