package email

import (
	"context"
	"fmt"

	"github.com/signsecure/signsecure/pkg/envelopes"
)

// EnvelopeSigningLinks returns the SigningLinkFunc that rebuilds a signer's
// link as package envelopes made it when the signer's turn began. key and
// baseURL must be that package's Config.SigningKey and
// Config.SigningBaseURL (SIGNING_TOKEN_KEY and SIGNING_BASE_URL), or the
// emails carry links that do not work.
func EnvelopeSigningLinks(key []byte, baseURL string) (SigningLinkFunc, error) {
	if len(key) < envelopes.MinSigningKeyBytes {
		return nil, fmt.Errorf("envelope signing links: key has %d bytes, need at least %d", len(key), envelopes.MinSigningKeyBytes)
	}
	if baseURL == "" {
		return nil, fmt.Errorf("envelope signing links: missing base URL")
	}
	key = append([]byte(nil), key...)
	return func(ctx context.Context, envelopeID, recipientID string) (string, error) {
		return envelopes.SigningLink(baseURL, envelopes.SigningToken(key, envelopeID, recipientID)), nil
	}, nil
}
