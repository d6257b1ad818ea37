package ids

import (
	"testing"
	"time"
)

func TestNewIsValidAndSorted(t *testing.T) {
	a := NewAt(User, time.Unix(1000, 0))
	b := NewAt(User, time.Unix(2000, 0))
	if !Valid(User, a) || !Valid(User, b) {
		t.Fatalf("ids %q %q are not valid", a, b)
	}
	if a >= b {
		t.Errorf("%q does not sort before %q", a, b)
	}
}

func TestValidRejects(t *testing.T) {
	good := New(Session)
	for _, s := range []string{"", "ses_", "usr_" + good[4:], good + "x", "ses_../../etc/passwd", "ses_" + "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if Valid(Session, s) {
			t.Errorf("Valid(ses, %q) = true", s)
		}
	}
}
