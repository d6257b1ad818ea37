package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Delivery request headers, as Standard Webhooks names them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const (
	// secretPrefix starts every signing secret.
	secretPrefix = "whsec_"
	// secretBytes is the size of a signing key: 256 bits, the size of an
	// HMAC-SHA256 block's output.
	secretBytes = 32
)

// newSecret returns a new signing secret: "whsec_" and the standard base64
// of secretBytes random bytes.
func newSecret() string {
	key := make([]byte, secretBytes)
	rand.Read(key) // Never returns an error since Go 1.24.
	return secretPrefix + base64.StdEncoding.EncodeToString(key)
}

// secretKey returns the HMAC key of a secret: the base64-decoded text
// after the "whsec_" prefix.
func secretKey(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("signing secret does not start with %s", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("signing secret is not %s followed by standard base64", secretPrefix)
	}
	return key, nil
}

// sign returns the Standard Webhooks signature "v1,<base64>" of a message:
// the HMAC-SHA256, keyed with the secret's key, of the message id, the
// timestamp in Unix seconds and the body, joined by dots.
func sign(secret, messageID string, timestamp time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(messageID + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// signatureHeader returns the webhook-signature header value: one
// signature per secret, separated by spaces, in the order of secrets.
func signatureHeader(secrets []string, messageID string, timestamp time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		sig, err := sign(secret, messageID, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}
