package orgs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/signsecure/signsecure/pkg/token"
)

// InvitationCodePrefix starts every invitation code.
const InvitationCodePrefix = "sic_"

// InvitationCode returns the code that proves its holder received an
// invitation's email: an HMAC-SHA256 of the invitation id and the
// lowercased address under key, as 24 base62 characters (143 bits).
// Nothing stores the code; the email function derives it from the ids in
// the invitation event, and accepting re-derives and compares it. Without
// it, anyone who signed up with, or changed their email to, an invited
// address could accept, because addresses are not verified.
func InvitationCode(key []byte, invitationID, email string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("signsecure invitation code v1\x00"))
	mac.Write([]byte(invitationID))
	mac.Write([]byte{0})
	mac.Write([]byte(strings.ToLower(email)))
	sum := mac.Sum(nil)

	var b strings.Builder
	b.WriteString(InvitationCodePrefix)
	for i := 0; i < 3; i++ {
		b.WriteString(token.EncodeBase62(binary.BigEndian.Uint64(sum[i*8:])>>16, 8))
	}
	return b.String()
}
