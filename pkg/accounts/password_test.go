package accounts

import (
	"strings"
	"testing"
)

var testParams = PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

func TestHashPasswordRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse battery", testParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("hash %q does not start with the argon2id PHC prefix and parameters", hash)
	}
	ok, err := VerifyPassword("correct horse battery", hash)
	if err != nil || !ok {
		t.Errorf("VerifyPassword(right password) = %v, %v; want true, nil", ok, err)
	}
	ok, err = VerifyPassword("correct horse batterx", hash)
	if err != nil || ok {
		t.Errorf("VerifyPassword(wrong password) = %v, %v; want false, nil", ok, err)
	}
}

func TestHashPasswordSaltsEachHash(t *testing.T) {
	a, _ := HashPassword("same password here", testParams)
	b, _ := HashPassword("same password here", testParams)
	if a == b {
		t.Error("two hashes of one password are equal; the salt is not random")
	}
}

func TestDefaultPasswordParamsMeetOWASP(t *testing.T) {
	p := DefaultPasswordParams
	if p.MemoryKiB < 19*1024 || p.Iterations < 2 || p.Parallelism < 1 {
		t.Errorf("DefaultPasswordParams = %+v; OWASP's minimum is m=19456 KiB, t=2, p=1", p)
	}
}

func TestVerifyPasswordMalformedHash(t *testing.T) {
	for _, hash := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=18$m=1024,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=x,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!!$aGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$",
	} {
		if ok, err := VerifyPassword("password", hash); err == nil || ok {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false and an error", hash, ok, err)
		}
	}
}
