package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apidoc"
)

// client calls the API as one credential and validates every response
// against the OpenAPI document.
type client struct {
	t         *testing.T
	token     string
	workspace string
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r reply) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}

func (r reply) list() []map[string]any {
	var out []map[string]any
	items, _ := r.body["data"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) as(token string) *client {
	return &client{t: c.t, token: token, workspace: c.workspace}
}

func (c *client) in(workspace string) *client {
	return &client{t: c.t, token: c.token, workspace: workspace}
}

// call sends a request; body may be nil, a string (JSON) or []byte (PDF).
func (c *client) call(method, path string, body any, headers ...string) reply {
	c.t.Helper()
	var r io.Reader
	contentType := ""
	switch b := body.(type) {
	case string:
		r, contentType = strings.NewReader(b), "application/json"
	case []byte:
		r, contentType = bytes.NewReader(b), "application/pdf"
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = shared.api + path
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.workspace != "" {
		req.Header.Set("X-Workspace-Id", c.workspace)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)

	if err := apidoc.ValidateResponse(req, res.StatusCode, res.Header, raw); err != nil {
		c.t.Errorf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", method, path, res.StatusCode, err, truncate(raw))
	}
	out := reply{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.Contains(res.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

// must sends a request and fails the test unless the status matches.
func (c *client) must(status int, method, path string, body any, headers ...string) reply {
	c.t.Helper()
	r := c.call(method, path, body, headers...)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, truncate(r.raw))
	}
	return r
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// eventually retries check for up to 15 seconds.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mail is one message the SES emulator holds.
type mail struct {
	To      []string
	Subject string
	Text    string
}

// mailTo returns the mail the SES emulator holds for an address.
func mailTo(t *testing.T, address string) []mail {
	t.Helper()
	res, err := http.Get(shared.ses + "/store")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var store struct {
		Emails []struct {
			Destination struct {
				To []string `json:"to"`
			} `json:"destination"`
			Subject string `json:"subject"`
			Body    struct {
				Text string `json:"text"`
			} `json:"body"`
		} `json:"emails"`
	}
	if err := json.NewDecoder(res.Body).Decode(&store); err != nil {
		t.Fatal(err)
	}
	var out []mail
	for _, e := range store.Emails {
		for _, to := range e.Destination.To {
			if strings.Contains(strings.ToLower(to), strings.ToLower(address)) {
				out = append(out, mail{To: e.Destination.To, Subject: e.Subject, Text: e.Body.Text})
			}
		}
	}
	return out
}
