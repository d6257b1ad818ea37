package webhooks

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newVerifyingHandler returns a handler for SignSecure webhooks signed
// with secret ("whsec_..."). It is the receiver newReceiver that
// docs/webhooks.md shows.
func newVerifyingHandler(secret string) (http.HandlerFunc, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// Verify checks the signatures and that webhook-timestamp is
		// within five minutes of the receiver's clock.
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// Drop repeats by r.Header.Get("webhook-id"), then handle the event.
		w.WriteHeader(http.StatusNoContent)
	}, nil
}

// Example_verifyDelivery checks a delivery signed during a rotation
// window, with the previous secret and with the current one, as a receiver
// does with the Standard Webhooks library.
func Example_verifyDelivery() {
	previous, current := newSecret(), newSecret()
	body := `{"type":"webhook.test","timestamp":"2026-12-01T10:00:00Z","data":{"webhook_id":"whk_01kb1w5e6f7g8h9j0k1m2n3p4q"}}`
	now := time.Now()
	signature, err := signatureHeader([]string{current, previous}, "dlv_01kb1w3cd2vd1j0ft7y9zbyg4h", now, []byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, secret := range []string{previous, current, newSecret()} {
		handler, err := newVerifyingHandler(secret)
		if err != nil {
			fmt.Println(err)
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/signsecure", strings.NewReader(body))
		req.Header.Set(HeaderID, "dlv_01kb1w3cd2vd1j0ft7y9zbyg4h")
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(HeaderSignature, signature)
		rec := httptest.NewRecorder()
		handler(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 204
	// 204
	// 401
}
