package lambdahttp

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestResponseBodyEncoding(t *testing.T) {
	tests := []struct {
		name            string
		contentType     string // empty leaves Content-Type unset
		contentEncoding string
		body            string
		wantBase64      bool
		wantType        string
	}{
		{name: "binary PDF", contentType: "application/pdf", body: uploadedPDF, wantBase64: true},
		{name: "PDF that is valid UTF-8", contentType: "application/pdf", body: "%PDF-1.7\n%%EOF\n", wantBase64: true},
		{name: "octet stream", contentType: "application/octet-stream", body: "plain ASCII", wantBase64: true},
		{name: "JSON", contentType: "application/json", body: `{"id":"env_01","title":"Lease, café"}`},
		{name: "problem JSON", contentType: "application/problem+json", body: `{"status":404}`},
		{name: "plain text", contentType: "text/plain; charset=utf-8", body: "signed"},
		{name: "SVG", contentType: "image/svg+xml", body: `<svg xmlns="http://www.w3.org/2000/svg"/>`},
		{name: "text with invalid UTF-8", contentType: "text/plain", body: "caf\xe9", wantBase64: true},
		{name: "gzip JSON", contentType: "application/json", contentEncoding: "gzip", body: "not really gzip", wantBase64: true},
		{name: "unparsable type", contentType: "pdf", body: "%PDF-1.7\n", wantBase64: true},
		{name: "sniffed HTML", body: "<html><body>signed</body></html>", wantType: "text/html; charset=utf-8"},
		{name: "empty PDF", contentType: "application/pdf", body: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				if tt.contentEncoding != "" {
					w.Header().Set("Content-Encoding", tt.contentEncoding)
				}
				w.Write([]byte(tt.body))
			})

			resp := invoke(t, h, loadEvent(t, "get-me-cookies.json"))

			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if resp.IsBase64Encoded != tt.wantBase64 {
				t.Errorf("IsBase64Encoded = %v, want %v", resp.IsBase64Encoded, tt.wantBase64)
			}
			body := resp.Body
			if resp.IsBase64Encoded {
				decoded, err := base64.StdEncoding.DecodeString(resp.Body)
				if err != nil {
					t.Fatalf("decode base64 body: %v", err)
				}
				body = string(decoded)
			}
			if body != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			wantType := tt.wantType
			if wantType == "" {
				wantType = tt.contentType
			}
			if got := resp.Headers["Content-Type"]; got != wantType {
				t.Errorf("Content-Type = %q, want %q", got, wantType)
			}
		})
	}
}

func TestResponseSetCookies(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "n3wS3ss10n", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "light", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "csrf", Value: "", Path: "/", MaxAge: -1})
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	})

	resp := invoke(t, h, loadEvent(t, "get-me-cookies.json"))

	want := []string{
		"session=n3wS3ss10n; Path=/; HttpOnly; Secure; SameSite=Lax",
		"theme=light; Path=/",
		"csrf=; Path=/; Max-Age=0",
	}
	if !slices.Equal(resp.Cookies, want) {
		t.Errorf("Cookies = %q, want %q", resp.Cookies, want)
	}
	for name := range resp.Headers {
		if strings.EqualFold(name, "Set-Cookie") {
			t.Errorf("Headers has %q, want Set-Cookie only in Cookies", name)
		}
	}
	if got := resp.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
}

func TestResponseWithoutWrite(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantHeader map[string]string
	}{
		{
			name:       "nothing written",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			wantHeader: map[string]string{},
		},
		{
			name:       "header only",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Cache-Control", "no-store") },
			wantHeader: map[string]string{"Cache-Control": "no-store"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, tt.handler, loadEvent(t, "get-me-cookies.json"))

			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if resp.Body != "" {
				t.Errorf("body = %q, want empty", resp.Body)
			}
			if resp.IsBase64Encoded {
				t.Error("IsBase64Encoded = true for an empty body")
			}
			for name, want := range tt.wantHeader {
				if got := resp.Headers[name]; got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestResponseWriteHeaderRules(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantHeader map[string]string // "" means absent
	}{
		{
			name: "first status wins",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.WriteHeader(http.StatusInternalServerError)
			},
			wantStatus: http.StatusCreated,
		},
		{
			name: "status after write ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("done"))
				w.WriteHeader(http.StatusNotFound)
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "header after status ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/v1/envelopes/env_01")
				w.WriteHeader(http.StatusCreated)
				w.Header().Set("X-Late", "yes")
				w.Header().Set("Location", "/elsewhere")
			},
			wantStatus: http.StatusCreated,
			wantHeader: map[string]string{"Location": "/v1/envelopes/env_01", "X-Late": ""},
		},
		{
			name: "informational status skipped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
			},
			wantStatus: http.StatusAccepted,
		},
		{
			name: "no content",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			},
			wantStatus: http.StatusNoContent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := invoke(t, tt.handler, loadEvent(t, "get-me-cookies.json"))

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			for name, want := range tt.wantHeader {
				if got := resp.Headers[name]; got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestNewHandlerPanic(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{
			name:    "handler panics",
			handler: func(w http.ResponseWriter, r *http.Request) { panic("boom") },
		},
		{
			name: "panic after partial response",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("partial"))
				panic("boom")
			},
		},
		{
			name:    "invalid status code",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(42) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newTestLogger()

			resp, err := newHandler(tt.handler, logger)(context.Background(), loadEvent(t, "get-me-cookies.json"))

			if err != nil {
				t.Fatalf("handler returned error %v, want nil", err)
			}
			checkInternalError(t, resp.StatusCode, resp.Headers, resp.Body)

			lines := logLines(t, logs)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1", len(lines))
			}
			if lines[0]["request_id"] != "HkXmyHvHcESJw9w=" {
				t.Errorf("log request_id = %v, want HkXmyHvHcESJw9w=", lines[0]["request_id"])
			}
			if stack, _ := lines[0]["stack"].(string); !strings.Contains(stack, "lambdahttp") {
				t.Errorf("log stack = %q, want the panic's stack", stack)
			}
			if strings.Contains(logs.String(), "s3ss10nV4lu3") {
				t.Errorf("log contains the session cookie: %s", logs.String())
			}
		})
	}
}

func TestNewHandlerConcurrentEvents(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, r.PathValue("id"))
	})
	handler := NewHandler(mux)
	fixture := loadEvent(t, "get-thing-encoded-path.json")

	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()

			event := fixture
			id := fmt.Sprintf("thing_%02d", i)
			event.RawPath = "/v1/things/" + id

			resp, err := handler(context.Background(), event)
			if err != nil {
				t.Errorf("event %d: handler returned error %v", i, err)
				return
			}
			if resp.Body != id {
				t.Errorf("event %d: body = %q, want %q", i, resp.Body, id)
			}
		}()
	}
	wg.Wait()
}
