package token

import (
	"strings"
	"testing"
)

func TestBase62(t *testing.T) {
	a, b := Base62(40), Base62(40)
	if len(a) != 40 || !IsBase62(a) {
		t.Errorf("Base62(40) = %q", a)
	}
	if a == b {
		t.Error("two random strings are equal")
	}
}

func TestEncodeBase62(t *testing.T) {
	cases := map[uint64]string{0: "000000", 61: "00000z", 62: "000010", 4294967295: "4gfFC3"}
	for v, want := range cases {
		if got := EncodeBase62(v, 6); got != want {
			t.Errorf("EncodeBase62(%d) = %q; want %q", v, got, want)
		}
	}
}

func TestIsBase62(t *testing.T) {
	for _, s := range []string{"abc-", "a b", "é", "a_b"} {
		if IsBase62(s) {
			t.Errorf("IsBase62(%q) = true", s)
		}
	}
}

func TestHash(t *testing.T) {
	got := Hash("abc")
	if got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Hash(abc) = %s", got)
	}
	if strings.ToLower(got) != got {
		t.Error("hash is not lowercase hex")
	}
}
