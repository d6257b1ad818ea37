package apikeys

import (
	"hash/crc32"
	"strings"

	"github.com/signsecure/signsecure/pkg/token"
)

// Prefix starts every API key, so a leaked key is recognizable by secret
// scanners and cannot be mistaken for a session token.
const Prefix = "signsecure_"

const (
	// randomChars is the length of a key's random part: 32 base62
	// characters carry about 190 bits. The display prefix and the last four
	// characters reveal about 48 of them, which leaves more than 128 unseen.
	randomChars = 32
	// checksumChars is the length of the CRC-32 (IEEE) of the random part
	// in base62; 62^6 is larger than 2^32, so every checksum fits.
	checksumChars = 6
	// keyLength is the length of a whole key.
	keyLength = len(Prefix) + randomChars + checksumChars
	// shownRandomChars is how many random characters the display prefix
	// keeps after Prefix.
	shownRandomChars = 4
)

// newSecret returns a new random API key.
func newSecret() string {
	random := token.Base62(randomChars)
	return Prefix + random + checksum(random)
}

// Valid reports whether raw has the form of an API key: Prefix, 32 base62
// characters and the 6-character base62 CRC-32 of those characters. It
// reads no data, so a typo or a truncated copy is rejected without a
// database lookup. A valid form does not mean that the key exists.
func Valid(raw string) bool {
	rest, ok := strings.CutPrefix(raw, Prefix)
	if !ok || len(raw) != keyLength || !token.IsBase62(rest) {
		return false
	}
	random, sum := rest[:randomChars], rest[randomChars:]
	return checksum(random) == sum
}

func checksum(random string) string {
	return token.EncodeBase62(uint64(crc32.ChecksumIEEE([]byte(random))), checksumChars)
}

// displayPrefix returns the part of a key shown in listings, such as
// "signsecure_Ab3x".
func displayPrefix(secret string) string {
	return secret[:len(Prefix)+shownRandomChars]
}

// lastFour returns the last four characters of a key.
func lastFour(secret string) string {
	return secret[len(secret)-4:]
}
