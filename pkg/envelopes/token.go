package envelopes

import (
	"crypto/hmac"
	"crypto/sha256"
	"math/big"
	"strings"

	"github.com/signsecure/signsecure/pkg/token"
)

// SigningTokenPrefix starts every signing token, so a leaked one is
// recognisable and cannot be mistaken for a session token or an API key.
const SigningTokenPrefix = "sst_"

// signingTokenChars is the length of the base62 part: 43 characters hold
// any 256-bit HMAC value.
const signingTokenChars = 43

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// SigningToken returns the signing token of a recipient of an envelope:
// "sst_" followed by the base62 HMAC-SHA256, under key, of
// envelopeID + "|" + recipientID.
//
// The token is derived rather than random, so that the email function can
// rebuild a signer's link from the ids in an envelope event. This package
// therefore never stores a token or puts one in an event: the table holds
// only its SHA-256. The two ids name one activation, because a recipient's turn
// begins only from the pending status and nothing returns it there.
func SigningToken(key []byte, envelopeID, recipientID string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(envelopeID + "|" + recipientID))
	return SigningTokenPrefix + encodeBase62(mac.Sum(nil), signingTokenChars)
}

// SigningLink returns the signing link that carries the token: baseURL
// (Config.SigningBaseURL) without its trailing slashes, a slash and the
// token.
func SigningLink(baseURL, token string) string {
	return strings.TrimRight(baseURL, "/") + "/" + token
}

// wellFormedToken reports whether s has the shape of a signing token, so a
// malformed one is rejected without a read.
func wellFormedToken(s string) bool {
	rest, ok := strings.CutPrefix(s, SigningTokenPrefix)
	return ok && len(rest) == signingTokenChars && token.IsBase62(rest)
}

// encodeBase62 returns b, read as a big-endian number, in base62,
// left-padded with zeros to width.
func encodeBase62(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	base := big.NewInt(62)
	digit := new(big.Int)
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		out[i] = base62Alphabet[digit.Int64()]
	}
	return string(out)
}
