package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/signsecure/signsecure/pkg/apidoc"
)

// receiver is a webhook endpoint on loopback that verifies each delivery's
// signature with the Standard Webhooks library and validates its payload
// against the OpenAPI document's webhook schemas.
type receiver struct {
	url string

	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	types    map[string]int
	problems []string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{types: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hooks"
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.problems {
			t.Error(p)
		}
	})
	return r
}

func (r *receiver) setSecret(t *testing.T, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("webhook secret %q is not a Standard Webhooks secret: %v", secret[:min(6, len(secret))], err)
	}
	r.mu.Lock()
	r.verifier = wh
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.verifier == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := r.verifier.Verify(body, req.Header); err != nil {
		r.problems = append(r.problems, "delivery with a bad signature: "+err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var payload struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		r.problems = append(r.problems, "delivery is not JSON: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := apidoc.ValidateWebhookPayload(payload.Type, body); err != nil {
		r.problems = append(r.problems, "delivery of "+payload.Type+" does not match its schema: "+err.Error())
	}
	r.types[payload.Type]++
	w.WriteHeader(http.StatusNoContent)
}

// waitFor waits until a delivery of each type has arrived.
func (r *receiver) waitFor(t *testing.T, types ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		missing := []string{}
		for _, typ := range types {
			if r.types[typ] == 0 {
				missing = append(missing, typ)
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook deliveries never arrived for %v", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
