package lambdahttp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// uploadedPDF is the document in upload-pdf-base64.json, before base64.
// The bytes after the second "%" are not valid UTF-8.
const uploadedPDF = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"

func TestRequestBase64Body(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "upload-pdf-base64.json"))

	if !bytes.Equal(got.body, []byte(uploadedPDF)) {
		t.Errorf("body = %q, want %q", got.body, uploadedPDF)
	}
	if got.request.ContentLength != int64(len(uploadedPDF)) {
		t.Errorf("ContentLength = %d, want %d", got.request.ContentLength, len(uploadedPDF))
	}
	if ct := got.request.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type = %q, want application/pdf", ct)
	}
}

func TestRequestTextBody(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "create-envelope-comma-headers.json"))

	want := `{"title":"Lease, 2026","email":"all"}`
	if string(got.body) != want {
		t.Errorf("body = %q, want %q", got.body, want)
	}
	if got.request.Method != http.MethodPost {
		t.Errorf("Method = %q, want POST", got.request.Method)
	}
}

func TestRequestRepeatedQueryKeys(t *testing.T) {
	event := loadEvent(t, "list-envelopes-repeated-query.json")
	got := captureRequest(t, event)
	query := got.request.URL.Query()

	if want := []string{"sent", "completed"}; !slices.Equal(query["status"], want) {
		t.Errorf(`Query()["status"] = %q, want %q`, query["status"], want)
	}
	if want := []string{"lease, draft"}; !slices.Equal(query["q"], want) {
		t.Errorf(`Query()["q"] = %q, want %q`, query["q"], want)
	}
	if want := []string{"20"}; !slices.Equal(query["limit"], want) {
		t.Errorf(`Query()["limit"] = %q, want %q`, query["limit"], want)
	}
	if want := "status=sent&status=completed&limit=20&q=lease%2C%20draft"; got.request.URL.RawQuery != want {
		t.Errorf("RawQuery = %q, want %q", got.request.URL.RawQuery, want)
	}
}

func TestRequestQueryIgnoresParameterMap(t *testing.T) {
	event := loadEvent(t, "list-envelopes-repeated-query.json")
	event.RawQueryString = ""

	got := captureRequest(t, event)

	if got.request.URL.RawQuery != "" {
		t.Errorf("RawQuery = %q, want empty when rawQueryString is empty", got.request.URL.RawQuery)
	}
}

func TestRequestHeaderValuesWithCommas(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "create-envelope-comma-headers.json"))

	tests := []struct {
		name string
		want string
	}{
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36"},
		{"Idempotency-Key", "import-2026-03,batch-7"},
		{"Authorization", "Bearer signsecure_7kQ2mXp9Lw4Rt8Vz1Nc6Hd3Fb5Gj0Sy2Ae"},
		{"If-None-Match", `"3f2a", "9b1c"`},
		{"Date", "Thu, 12 Mar 2026 09:16:45 GMT"},
		{"Accept", "application/json, application/problem+json"},
		{"Accept-Language", "en-GB,en;q=0.9,de;q=0.8"},
		{"X-Forwarded-For", "198.51.100.20, 203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := got.request.Header.Values(tt.name)
			if !slices.Equal(values, []string{tt.want}) {
				t.Errorf("Header.Values(%q) = %q, want one value %q", tt.name, values, tt.want)
			}
		})
	}
}

func TestRequestUserAgent(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "create-envelope-comma-headers.json"))

	want := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36"
	if got.request.UserAgent() != want {
		t.Errorf("UserAgent() = %q, want %q", got.request.UserAgent(), want)
	}
}

func TestRequestHost(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "create-envelope-comma-headers.json"))

	if want := "r3pmxmplak.execute-api.eu-west-1.amazonaws.com"; got.request.Host != want {
		t.Errorf("Host = %q, want %q", got.request.Host, want)
	}
	if values := got.request.Header.Values("Host"); len(values) != 0 {
		t.Errorf(`Header["Host"] = %q, want none, as from a net/http server`, values)
	}
}

func TestRequestPathParameters(t *testing.T) {
	tests := []struct {
		name    string
		rawPath string // empty keeps the fixture's rawPath
		wantID  string
	}{
		// The client sent /v1/things/caf%C3%A9%20%231?expand=owner.
		{name: "fixture", wantID: "café #1"},
		{name: "plain", rawPath: "/v1/things/key_01JP2V6N9Q", wantID: "key_01JP2V6N9Q"},
		// The client sent %2525, which API Gateway decodes twice.
		{name: "percent sign", rawPath: "/v1/things/100%", wantID: "100%"},
		{name: "question mark", rawPath: "/v1/things/a?b", wantID: "a?b"},
		{name: "plus sign", rawPath: "/v1/things/a+b", wantID: "a+b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := loadEvent(t, "get-thing-encoded-path.json")
			if tt.rawPath != "" {
				event.RawPath = tt.rawPath
				event.RequestContext.HTTP.Path = tt.rawPath
			}

			var gotID, gotExpand string
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
				gotID = r.PathValue("id")
				gotExpand = r.URL.Query().Get("expand")
				w.WriteHeader(http.StatusOK)
			})

			resp := invoke(t, mux, event)

			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200 from the matched route", resp.StatusCode)
			}
			if gotID != tt.wantID {
				t.Errorf(`PathValue("id") = %q, want %q`, gotID, tt.wantID)
			}
			if gotExpand != "owner" {
				t.Errorf(`Query().Get("expand") = %q, want "owner"`, gotExpand)
			}
		})
	}
}

func TestRequestURI(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "get-thing-encoded-path.json"))

	if want := "/v1/things/café #1"; got.request.URL.Path != want {
		t.Errorf("URL.Path = %q, want %q", got.request.URL.Path, want)
	}
	if want := "/v1/things/caf%C3%A9%20%231?expand=owner"; got.request.RequestURI != want {
		t.Errorf("RequestURI = %q, want %q", got.request.RequestURI, want)
	}
	if got.request.Proto != "HTTP/1.1" || got.request.ProtoMajor != 1 || got.request.ProtoMinor != 1 {
		t.Errorf("Proto = %q %d.%d, want HTTP/1.1", got.request.Proto, got.request.ProtoMajor, got.request.ProtoMinor)
	}
}

func TestRequestCookies(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "get-me-cookies.json"))

	var pairs []string
	for _, cookie := range got.request.Cookies() {
		pairs = append(pairs, cookie.Name+"="+cookie.Value)
	}
	want := []string{"session=s3ss10nV4lu3", "theme=dark", "consent=analytics,ads"}
	if !slices.Equal(pairs, want) {
		t.Errorf("Cookies() = %q, want %q", pairs, want)
	}

	session, err := got.request.Cookie("session")
	if err != nil {
		t.Fatalf(`Cookie("session"): %v`, err)
	}
	if session.Value != "s3ss10nV4lu3" {
		t.Errorf(`Cookie("session").Value = %q, want "s3ss10nV4lu3"`, session.Value)
	}
}

func TestRequestWithoutCookies(t *testing.T) {
	got := captureRequest(t, loadEvent(t, "get-me-named-stage.json"))

	if cookies := got.request.Cookies(); len(cookies) != 0 {
		t.Errorf("Cookies() = %v, want none", cookies)
	}
	if values := got.request.Header.Values("Cookie"); len(values) != 0 {
		t.Errorf(`Header["Cookie"] = %q, want none`, values)
	}
}

func TestRequestStagePrefix(t *testing.T) {
	tests := []struct {
		name     string
		stage    string // empty keeps the fixture's stage "prod"
		rawPath  string // empty keeps the fixture's "/prod/v1/me"
		wantPath string
	}{
		{name: "named stage", wantPath: "/v1/me"},
		{name: "default stage", stage: "$default", wantPath: "/prod/v1/me"},
		{name: "stage root", rawPath: "/prod", wantPath: "/"},
		{name: "stage as name prefix", rawPath: "/production/v1/me", wantPath: "/production/v1/me"},
		{name: "custom domain without stage", rawPath: "/v1/me", wantPath: "/v1/me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := loadEvent(t, "get-me-named-stage.json")
			if tt.stage != "" {
				event.RequestContext.Stage = tt.stage
			}
			if tt.rawPath != "" {
				event.RawPath = tt.rawPath
				event.RequestContext.HTTP.Path = tt.rawPath
			}

			got := captureRequest(t, event)

			if got.request.URL.Path != tt.wantPath {
				t.Errorf("URL.Path = %q, want %q", got.request.URL.Path, tt.wantPath)
			}
		})
	}
}

func TestRequestStagePrefixRoutes(t *testing.T) {
	var called bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/me", func(w http.ResponseWriter, r *http.Request) {
		called = true
		w.WriteHeader(http.StatusOK)
	})

	resp := invoke(t, mux, loadEvent(t, "get-me-named-stage.json"))

	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
	if !called {
		t.Error(`route "GET /v1/me" was not called`)
	}
}

func TestRequestRemoteAddr(t *testing.T) {
	tests := []struct {
		fixture  string
		wantHost string
	}{
		{"upload-pdf-base64.json", "203.0.113.7"},
		{"get-thing-encoded-path.json", "2001:db8:85a3::8a2e:370:7334"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got := captureRequest(t, loadEvent(t, tt.fixture))

			host, _, err := net.SplitHostPort(got.request.RemoteAddr)
			if err != nil {
				t.Fatalf("SplitHostPort(%q): %v", got.request.RemoteAddr, err)
			}
			if host != tt.wantHost {
				t.Errorf("RemoteAddr host = %q, want %q", host, tt.wantHost)
			}
			if _, err := netip.ParseAddr(host); err != nil {
				t.Errorf("RemoteAddr host %q is not an IP address: %v", host, err)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	var id string
	var ok bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok = RequestID(r.Context())
		w.WriteHeader(http.StatusOK)
	})

	invoke(t, h, loadEvent(t, "upload-pdf-base64.json"))

	if !ok {
		t.Fatal("RequestID reported no ID")
	}
	if id != "HkXmPLvHcESJw0A=" {
		t.Errorf("RequestID = %q, want %q", id, "HkXmPLvHcESJw0A=")
	}
}

func TestRequestIDWithoutEvent(t *testing.T) {
	id, ok := RequestID(context.Background())

	if ok {
		t.Error("RequestID reported an ID for a context without an event")
	}
	if id != "" {
		t.Errorf("RequestID = %q, want empty", id)
	}
}

func TestRequestConversionFailure(t *testing.T) {
	tests := []struct {
		name   string
		secret string // a value of the event that must not be logged
		modify func(event *events.APIGatewayV2HTTPRequest)
	}{
		{
			name:   "invalid base64 body",
			secret: "secret-document-text",
			modify: func(event *events.APIGatewayV2HTTPRequest) { event.Body = "%% secret-document-text %%" },
		},
		{
			name:   "invalid method",
			secret: "/v1/envelopes/env_01JP2V6N9Q5K3T8W4Z7X1C0B2D/documents",
			modify: func(event *events.APIGatewayV2HTTPRequest) { event.RequestContext.HTTP.Method = "POST /upload" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := loadEvent(t, "upload-pdf-base64.json")
			tt.modify(&event)

			called := false
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
			logger, logs := newTestLogger()

			resp, err := newHandler(h, logger)(context.Background(), event)

			if err != nil {
				t.Fatalf("handler returned error %v, want nil", err)
			}
			checkInternalError(t, resp.StatusCode, resp.Headers, resp.Body)
			if called {
				t.Error("handler was called for an event that failed to convert")
			}

			lines := logLines(t, logs)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1", len(lines))
			}
			if lines[0]["level"] != "ERROR" {
				t.Errorf("log level = %v, want ERROR", lines[0]["level"])
			}
			if lines[0]["request_id"] != "HkXmPLvHcESJw0A=" {
				t.Errorf("log request_id = %v, want HkXmPLvHcESJw0A=", lines[0]["request_id"])
			}
			if strings.Contains(logs.String(), tt.secret) {
				t.Errorf("log contains %q: %s", tt.secret, logs.String())
			}
		})
	}
}

// checkInternalError checks the adapter's own 500 problem response.
func checkInternalError(t *testing.T, status int, headers map[string]string, body string) {
	t.Helper()

	if status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", status)
	}
	if ct := headers["Content-Type"]; ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	want := `{"type":"about:blank","title":"Internal Server Error","status":500,"code":"internal","detail":"The server failed to process the request."}`
	if body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}
