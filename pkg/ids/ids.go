// Package ids makes the public identifiers of SignSecure resources: a type
// prefix, an underscore and a lowercase ULID, such as
// "usr_01jf3k8x2q7m9v4n5b6c7d8e9f". ULIDs sort by creation time, so keys
// built from them list newest or oldest first without a second attribute.
package ids

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Prefixes of the resource types.
const (
	User         = "usr"
	Session      = "ses"
	Organization = "org"
	Invitation   = "inv"
	APIKey       = "key"
	Envelope     = "env"
	Document     = "doc"
	Recipient    = "rcp"
	Webhook      = "whk"
	Delivery     = "dlv"
	Event        = "evt"
	Notification = "ntf"
	Purchase     = "pur"
	Ledger       = "led"
	Request      = "req"
)

// New returns a new identifier with the prefix, made at the current time.
func New(prefix string) string {
	return NewAt(prefix, time.Now())
}

// NewAt returns a new identifier with the prefix whose time part is t.
func NewAt(prefix string, t time.Time) string {
	id := ulid.MustNew(ulid.Timestamp(t), rand.Reader)
	return prefix + "_" + strings.ToLower(id.String())
}

// Valid reports whether s is an identifier with the prefix: the prefix, an
// underscore and 26 characters of Crockford base32.
func Valid(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(strings.ToUpper(rest))
	return err == nil
}
