package accounts

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// Input limits.
const (
	MaxNameLength     = 100
	MaxEmailLength    = 254
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// normalizeName trims the name and checks its length and characters:
// control characters, format characters (zero-width and bidirectional
// controls among them) and line or paragraph separators are rejected,
// because names are shown in emails, invoices and logs.
func normalizeName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 {
		return "", apperr.InvalidField(field, "invalid_name", "Field %q is empty; give a name of 1 to %d characters.", field, MaxNameLength)
	}
	if n > MaxNameLength {
		return "", apperr.InvalidField(field, "invalid_name", "Field %q must be 1 to %d characters; got %d characters.", field, MaxNameLength, n)
	}
	for i, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return "", apperr.InvalidField(field, "invalid_name", "Field %q has a control, invisible or line-separator character (U+%04X) at byte %d; use printable characters on one line.", field, r, i)
		}
	}
	return name, nil
}

// normalizeEmail trims the address and checks that it is a bare ASCII
// address (no display name) whose domain is a host name of dotted labels.
// Non-ASCII addresses are rejected, because look-alike and invisible
// characters would otherwise let one mailbox hold several accounts; an
// internationalized domain is accepted in its xn-- form.
func normalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	invalid := apperr.InvalidField(field, "invalid_email", "Field %q value %q is not a valid email address such as ada@example.com (ASCII only; write an internationalized domain in its xn-- form).", field, truncate(email, 80))
	if email == "" || len(email) > MaxEmailLength {
		return "", invalid
	}
	for i := 0; i < len(email); i++ {
		if email[i] <= ' ' || email[i] >= 0x7f {
			return "", invalid
		}
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", invalid
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || !validDomain(email[at+1:]) {
		return "", invalid
	}
	return email, nil
}

// validDomain reports whether d is a host name of at least two labels of
// letters, digits and inner hyphens, with an alphabetic top-level label.
// IP literals are rejected.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 || len(d) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.HasPrefix(tld, "xn--") {
		return true
	}
	for i := 0; i < len(tld); i++ {
		if '0' <= tld[i] && tld[i] <= '9' {
			return false
		}
	}
	return true
}

// checkPassword checks a new password's length. The value is never echoed.
func checkPassword(field, password string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength || n > MaxPasswordLength {
		return apperr.InvalidField(field, "invalid_password", "Field %q must be %d to %d characters long; the one given has %d.", field, MinPasswordLength, MaxPasswordLength, n)
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}
