package notify

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// derivedID returns prefix, an underscore and a lowercase ULID whose time
// part is t (the Unix epoch for earlier times) and whose entropy is the
// first 80 bits of a SHA-256 over parts. The same inputs always give the
// same id, so a redelivered event derives the ids it derived before.
func derivedID(prefix string, t time.Time, parts ...string) string {
	if t.Before(time.Unix(0, 0)) {
		t = time.Unix(0, 0)
	}
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	id := ulid.MustNew(ulid.Timestamp(t), bytes.NewReader(h.Sum(nil)))
	return prefix + "_" + strings.ToLower(id.String())
}
