package envelopes

import (
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestSigningTokenShape(t *testing.T) {
	tok := SigningToken(testSigningKey, "env_a", "rcp_b")
	if !strings.HasPrefix(tok, SigningTokenPrefix) || len(tok) != len(SigningTokenPrefix)+signingTokenChars {
		t.Errorf("token %q: want %q and %d base62 characters", tok, SigningTokenPrefix, signingTokenChars)
	}
	if !wellFormedToken(tok) {
		t.Errorf("wellFormedToken(%q) = false", tok)
	}
	if again := SigningToken(testSigningKey, "env_a", "rcp_b"); again != tok {
		t.Errorf("SigningToken is not deterministic: %q then %q", tok, again)
	}
}

func TestSigningTokenDependsOnEveryInput(t *testing.T) {
	base := SigningToken(testSigningKey, "env_a", "rcp_b")
	others := map[string]string{
		"other envelope":  SigningToken(testSigningKey, "env_c", "rcp_b"),
		"other recipient": SigningToken(testSigningKey, "env_a", "rcp_c"),
		"other key":       SigningToken([]byte("a different key of 32 bytes or more"), "env_a", "rcp_b"),
		"shifted ids":     SigningToken(testSigningKey, "env_a|rcp", "_b"),
	}
	for name, tok := range others {
		if tok == base {
			t.Errorf("%s gives the same token", name)
		}
	}
}

func TestWellFormedToken(t *testing.T) {
	good := SigningToken(testSigningKey, "env_a", "rcp_b")
	for _, bad := range []string{"", "sst_", good[:len(good)-1], good + "x", "sst_" + strings.Repeat("-", signingTokenChars), "SST_" + good[4:]} {
		if wellFormedToken(bad) {
			t.Errorf("wellFormedToken(%q) = true", bad)
		}
	}
}

func TestEncodeBase62(t *testing.T) {
	cases := []struct {
		in    []byte
		width int
		want  string
	}{
		{[]byte{0}, 3, "000"},
		{[]byte{61}, 2, "0z"},
		{[]byte{62}, 2, "10"},
		{[]byte{0x01, 0x00}, 3, "048"},
	}
	for _, tc := range cases {
		if got := encodeBase62(tc.in, tc.width); got != tc.want {
			t.Errorf("encodeBase62(%v, %d) = %q; want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestEncodeBase62FitsLargestHMAC(t *testing.T) {
	largest := make([]byte, 32)
	for i := range largest {
		largest[i] = 0xff
	}
	encoded := encodeBase62(largest, signingTokenChars)
	decoded := new(big.Int)
	for _, c := range []byte(encoded) {
		decoded.Mul(decoded, big.NewInt(62))
		decoded.Add(decoded, big.NewInt(int64(strings.IndexByte(base62Alphabet, c))))
	}
	if decoded.Cmp(new(big.Int).SetBytes(largest)) != 0 {
		t.Errorf("2^256-1 does not survive %d base62 characters: %s", signingTokenChars, encoded)
	}
}

func TestSigningLink(t *testing.T) {
	for _, base := range []string{"https://sign.example.com/s", "https://sign.example.com/s/", "https://sign.example.com/s//"} {
		if got := SigningLink(base, "sst_x"); got != "https://sign.example.com/s/sst_x" {
			t.Errorf("SigningLink(%q) = %q", base, got)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(testSigningKey)
	env := map[string]string{
		"SIGNING_TOKEN_KEY":  key,
		"ENVELOPE_SEND_COST": "3",
		"SIGNING_BASE_URL":   "https://app.example.com/sign",
		"SIGNING_LINK_TTL":   "720h",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SendCost != 3 || cfg.SigningBaseURL != "https://app.example.com/sign" || cfg.SigningLinkTTL != 720*time.Hour || string(cfg.SigningKey) != string(testSigningKey) {
		t.Errorf("config = %+v", cfg)
	}

	bad := map[string]map[string]string{
		"no key":        {},
		"short key":     {"SIGNING_TOKEN_KEY": base64.StdEncoding.EncodeToString([]byte("short"))},
		"negative cost": {"SIGNING_TOKEN_KEY": key, "ENVELOPE_SEND_COST": "-1"},
		"relative URL":  {"SIGNING_TOKEN_KEY": key, "SIGNING_BASE_URL": "/sign"},
		"short TTL":     {"SIGNING_TOKEN_KEY": key, "SIGNING_LINK_TTL": "5m"},
	}
	for name, vars := range bad {
		if _, err := ConfigFromEnv(func(k string) string { return vars[k] }); err == nil {
			t.Errorf("%s: ConfigFromEnv accepted it", name)
		}
	}
}
