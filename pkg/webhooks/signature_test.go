package webhooks

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestNewSecretFormat(t *testing.T) {
	a, b := newSecret(), newSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	encoded, ok := strings.CutPrefix(a, "whsec_")
	if !ok {
		t.Fatalf("secret %q does not start with whsec_", a)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatalf("secret is not standard base64 after the prefix: %v", err)
	}
	if len(key) < 24 {
		t.Errorf("key has %d bytes; want at least 24", len(key))
	}
}

func signedHeaders(t *testing.T, secrets []string, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	sig, err := signatureHeader(secrets, id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h
}

func TestSignatureVerifiesWithStandardWebhooks(t *testing.T) {
	secret := newSecret()
	body := []byte(`{"type":"envelope.completed","timestamp":"2026-12-01T10:00:00Z","data":{"envelope_id":"env_1"}}`)
	now := time.Now()
	headers := signedHeaders(t, []string{secret}, "dlv_01jf3k8x2q7m9v4n5b6c7d8e9f", now, body)

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, headers); err != nil {
		t.Errorf("Verify: %v", err)
	}

	tampered := []byte(strings.Replace(string(body), "env_1", "env_2", 1))
	if err := wh.Verify(tampered, headers); err == nil {
		t.Error("Verify accepted a changed body")
	}
	other, err := standardwebhooks.NewWebhook(newSecret())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Verify(body, headers); err == nil {
		t.Error("Verify accepted another secret")
	}
	changedID := headers.Clone()
	changedID.Set(HeaderID, "dlv_other")
	if err := wh.Verify(body, changedID); err == nil {
		t.Error("Verify accepted another webhook-id")
	}
}

func TestSignatureHeaderWithTwoSecrets(t *testing.T) {
	current, previous := newSecret(), newSecret()
	body := []byte(`{"type":"webhook.test"}`)
	headers := signedHeaders(t, []string{current, previous}, "dlv_x", time.Now(), body)

	sigs := strings.Split(headers.Get(HeaderSignature), " ")
	if len(sigs) != 2 {
		t.Fatalf("signature header %q has %d signatures; want 2", headers.Get(HeaderSignature), len(sigs))
	}
	for name, secret := range map[string]string{"current": current, "previous": previous} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, headers); err != nil {
			t.Errorf("%s secret: Verify: %v", name, err)
		}
	}
}

func TestSignatureMatchesLibrarySign(t *testing.T) {
	secret := newSecret()
	at := time.Unix(1_764_583_200, 0)
	body := []byte(`{"a":1}`)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	want, err := wh.Sign("dlv_1", at, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sign(secret, "dlv_1", at, body)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("sign = %q; library signs %q", got, want)
	}
}

func TestSecretKeyRejectsMalformedSecrets(t *testing.T) {
	for _, secret := range []string{"", "whsec_", "whsec_***", "abc"} {
		if _, err := secretKey(secret); err == nil {
			t.Errorf("secretKey(%q) = nil error; want an error", secret)
		}
	}
}
