package envelopes

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// Input limits.
const (
	MaxTitleLength     = 200
	MaxMessageLength   = 5000
	MaxNameLength      = 100
	MaxEmailLength     = 254
	MaxReasonLength    = 1000
	MaxFilenameLength  = 255
	MaxRecipients      = 20
	MaxDocuments       = 10
	MaxRoutingOrder    = 999
	MaxDocumentBytes   = 4 << 20
	MaxSignatureBytes  = 256 << 10
	maxSignatureWidth  = 4000
	maxSignatureHeight = 2000
)

// RecipientInput is a recipient as the sender gives it.
type RecipientInput struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	// Role is "signer" or "cc".
	Role string `json:"role"`
	// RoutingOrder is from 1 to 999; 0 or absent means 1.
	RoutingOrder int `json:"routing_order"`
}

// oneLine trims s and checks that it is 1 to maxLen characters of valid
// UTF-8 on one line.
func oneLine(field, s string, maxLen int, reason string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", apperr.InvalidField(field, reason, "Field %q is not valid UTF-8 text.", field)
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", apperr.InvalidField(field, reason, "Field %q is empty; give 1 to %d characters.", field, maxLen)
	}
	if n > maxLen || strings.ContainsFunc(s, isLineBreakOrControl) {
		return "", apperr.InvalidField(field, reason, "Field %q must be 1 to %d characters on one line; got %d characters.", field, maxLen, n)
	}
	return s, nil
}

// text trims s and checks that it is at most maxLen characters of valid
// UTF-8, where line breaks and tabs are allowed. Empty text is allowed
// unless required.
func text(field, s string, maxLen int, required bool, reason string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", apperr.InvalidField(field, reason, "Field %q is not valid UTF-8 text.", field)
	}
	n := utf8.RuneCountInString(s)
	if required && n == 0 {
		return "", apperr.InvalidField(field, reason, "Field %q is empty; give 1 to %d characters.", field, maxLen)
	}
	if n > maxLen {
		return "", apperr.InvalidField(field, reason, "Field %q has %d characters; the limit is %d.", field, n, maxLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) {
		return "", apperr.InvalidField(field, reason, "Field %q contains control characters.", field)
	}
	return s, nil
}

func isLineBreakOrControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
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

func checkEmailSetting(field, v string) error {
	switch v {
	case EmailAll, EmailCompletionOnly, EmailNone:
		return nil
	}
	return apperr.InvalidField(field, "invalid_email_notifications", "Field %q value %q is not a setting; use %q, %q or %q.",
		field, truncate(v, 40), EmailAll, EmailCompletionOnly, EmailNone)
}

// normalizeRecipients checks the recipient list and returns it trimmed,
// with absent routing orders set to 1. Email addresses must be unique
// within the list regardless of letter case.
func normalizeRecipients(in []RecipientInput) ([]RecipientInput, error) {
	if len(in) > MaxRecipients {
		return nil, apperr.InvalidField("recipients", "too_many_recipients", "Field \"recipients\" has %d entries; an envelope has at most %d recipients.", len(in), MaxRecipients)
	}
	out := make([]RecipientInput, 0, len(in))
	seen := map[string]int{}
	for i, r := range in {
		prefix := fmt.Sprintf("recipients[%d].", i)
		name, err := oneLine(prefix+"name", r.Name, MaxNameLength, "invalid_name")
		if err != nil {
			return nil, err
		}
		email, err := normalizeEmail(prefix+"email", r.Email)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[strings.ToLower(email)]; dup {
			return nil, apperr.InvalidField(prefix+"email", "duplicate_recipient",
				"Field %q value %q repeats the address of recipients[%d]; each address may appear once per envelope.", prefix+"email", email, first)
		}
		seen[strings.ToLower(email)] = i
		if r.Role != RoleSigner && r.Role != RoleCC {
			return nil, apperr.InvalidField(prefix+"role", "invalid_role", "Field %q value %q is not a recipient role; use %q or %q.",
				prefix+"role", truncate(r.Role, 40), RoleSigner, RoleCC)
		}
		order := r.RoutingOrder
		if order == 0 {
			order = 1
		}
		if order < 1 || order > MaxRoutingOrder {
			return nil, apperr.InvalidField(prefix+"routing_order", "invalid_routing_order", "Field %q value %d must be a whole number from 1 to %d.",
				prefix+"routing_order", r.RoutingOrder, MaxRoutingOrder)
		}
		out = append(out, RecipientInput{Name: name, Email: email, Role: r.Role, RoutingOrder: order})
	}
	return out, nil
}

// checkFilename checks a document's file name: 1 to MaxFilenameLength
// bytes of UTF-8 on one line, without path separators.
func checkFilename(name string) error {
	if name == "" {
		return apperr.InvalidField("filename", "invalid_filename", "Query parameter filename is missing; give the document's file name, such as filename=contract.pdf.")
	}
	if len(name) > MaxFilenameLength || !utf8.ValidString(name) || strings.ContainsAny(name, `/\`) ||
		strings.ContainsFunc(name, isLineBreakOrControl) || strings.TrimSpace(name) != name || name == "." || name == ".." {
		return apperr.InvalidField("filename", "invalid_filename",
			"Query parameter filename=%q must be 1 to %d bytes of text on one line, without slashes or surrounding spaces.", truncate(name, 80), MaxFilenameLength)
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}
