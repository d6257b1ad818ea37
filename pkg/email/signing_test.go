package email_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/envelopes"
)

func TestEnvelopeSigningLinks(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	links, err := email.EnvelopeSigningLinks(key, "https://app.example.com/sign/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	link, err := links(ctx, "env_1", "rcp_1")
	if err != nil {
		t.Fatal(err)
	}
	want := "https://app.example.com/sign/" + envelopes.SigningToken(key, "env_1", "rcp_1")
	if link != want {
		t.Errorf("link = %q; want %q", link, want)
	}
	if !strings.HasPrefix(link, "https://app.example.com/sign/"+envelopes.SigningTokenPrefix) {
		t.Errorf("link %q does not carry a signing token", link)
	}
	other, err := links(ctx, "env_1", "rcp_2")
	if err != nil {
		t.Fatal(err)
	}
	if other == link {
		t.Error("two recipients got the same link")
	}
}

func TestEnvelopeSigningLinksRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		key     []byte
		baseURL string
	}{
		{"short key", bytes.Repeat([]byte{3}, 31), "https://app.example.com/sign"},
		{"missing base URL", bytes.Repeat([]byte{3}, 32), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := email.EnvelopeSigningLinks(tc.key, tc.baseURL); err == nil {
				t.Error("EnvelopeSigningLinks accepted the configuration")
			}
		})
	}
}
