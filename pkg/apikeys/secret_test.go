package apikeys

import (
	"strings"
	"testing"
)

func TestNewSecretIsValid(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := newSecret()
		if !Valid(s) {
			t.Fatalf("Valid(%q) = false for a new secret", s)
		}
		if len(s) != keyLength {
			t.Fatalf("len(%q) = %d; want %d", s, len(s), keyLength)
		}
		if seen[s] {
			t.Fatalf("newSecret returned %q twice", s)
		}
		seen[s] = true
	}
}

func TestValidRejectsMalformedKeys(t *testing.T) {
	good := newSecret()
	random := good[len(Prefix) : len(Prefix)+randomChars]
	sum := good[len(Prefix)+randomChars:]

	// flip returns s with the character at i replaced by another base62
	// character.
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}

	cases := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", Prefix},
		{"wrong prefix", "signsecret_" + random + sum},
		{"upper-case prefix", strings.ToUpper(Prefix) + random + sum},
		{"session token", "sess_" + random + sum},
		{"one character short", good[:len(good)-1]},
		{"one character long", good + "0"},
		{"non-base62 character", good[:len(Prefix)+3] + "-" + good[len(Prefix)+4:]},
		{"space inside", good[:len(Prefix)+3] + " " + good[len(Prefix)+4:]},
		{"non-ASCII character", good[:len(good)-2] + "é"},
		{"random part changed", flip(good, len(Prefix)+5)},
		{"checksum changed", flip(good, len(good)-1)},
		{"checksum of other random part", Prefix + random + checksum(flip(random, 0))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if Valid(tc.key) {
				t.Errorf("Valid(%q) = true; want false", tc.key)
			}
		})
	}
}

func TestDisplayPrefixAndLastFour(t *testing.T) {
	s := newSecret()
	if got := displayPrefix(s); got != s[:len(Prefix)+4] || !strings.HasPrefix(got, Prefix) {
		t.Errorf("displayPrefix(%q) = %q; want the prefix and 4 random characters", s, got)
	}
	if got := lastFour(s); got != s[len(s)-4:] {
		t.Errorf("lastFour(%q) = %q", s, got)
	}
}
