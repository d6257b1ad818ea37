package orgs

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
)

// Input limits.
const (
	MaxNameLength  = 100
	MaxEmailLength = 254
)

// normalizeName trims an organization name and checks its length.
func normalizeName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", apperr.InvalidField(field, "invalid_name", "Field %q is not valid UTF-8 text.", field)
	}
	n := utf8.RuneCountInString(name)
	if n == 0 {
		return "", apperr.InvalidField(field, "invalid_name", "Field %q is empty; give a name of 1 to %d characters.", field, MaxNameLength)
	}
	if n > MaxNameLength || strings.ContainsAny(name, "\x00\r\n") {
		return "", apperr.InvalidField(field, "invalid_name", "Field %q must be 1 to %d characters on one line; got %d characters.", field, MaxNameLength, n)
	}
	return name, nil
}

// normalizeEmail trims an address and checks that it is a bare address
// (no display name) with a dotted domain.
func normalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	invalid := apperr.InvalidField(field, "invalid_email", "Field %q value %q is not a valid email address such as ada@example.com.", field, truncate(email, 80))
	if email == "" || len(email) > MaxEmailLength {
		return "", invalid
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", invalid
	}
	at := strings.LastIndexByte(email, '@')
	domain := email[at+1:]
	if at < 1 || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", invalid
	}
	return email, nil
}

// checkRole checks that role is one of the organization roles.
func checkRole(field, role string) error {
	if !authn.ValidRole(role) {
		return apperr.InvalidField(field, "invalid_role", "Field %q value %q is not a role; use %q, %q or %q.",
			field, truncate(role, 40), authn.RoleOwner, authn.RoleAdmin, authn.RoleMember)
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}
