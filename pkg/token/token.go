// Package token makes and hashes bearer secrets: session tokens, API keys,
// signing tokens and webhook secrets. Only hashes of such secrets are stored.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Base62 returns n random base62 characters drawn from crypto/rand without
// modulo bias. Each character carries log2(62), about 5.95, bits.
func Base62(n int) string {
	out := make([]byte, n)
	limit := big.NewInt(int64(len(base62Alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, limit)
		if err != nil {
			// crypto/rand.Read never returns an error on supported platforms.
			panic("token: crypto/rand failed: " + err.Error())
		}
		out[i] = base62Alphabet[v.Int64()]
	}
	return string(out)
}

// EncodeBase62 returns v in base62, left-padded with zeros to width.
func EncodeBase62(v uint64, width int) string {
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		out[i] = base62Alphabet[v%62]
		v /= 62
	}
	return string(out)
}

// IsBase62 reports whether s is made only of base62 characters.
func IsBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// Hash returns the lowercase hex SHA-256 of s, the form in which secrets
// are stored and looked up.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
