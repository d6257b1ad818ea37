package webhooks

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/envelopes"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/orgs"
)

// docExample matches a "### <type>" heading and the first JSON block after
// it.
var docExample = regexp.MustCompile("(?s)\n### ([a-z_.]+)\n.*?```json\n(.*?)\n```")

func TestDocsShowOneValidExamplePerEventType(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string][]byte{}
	for _, m := range docExample.FindAllSubmatch(doc, -1) {
		examples[string(m[1])] = m[2]
	}

	// The data of each type decodes into the producer's type with no
	// field left over, or has exactly the producer's keys.
	dataTypes := map[string]any{
		events.EnvelopeCreated:    &envelopes.EventData{},
		events.EnvelopeSent:       &envelopes.EventData{},
		events.EnvelopeSigned:     &envelopes.EventData{},
		events.EnvelopeCompleted:  &envelopes.EventData{},
		events.EnvelopeRejected:   &envelopes.EventData{},
		events.EnvelopeVoided:     &envelopes.EventData{},
		events.MemberJoined:       &orgs.MemberJoinedData{},
		events.MemberLeft:         &orgs.MemberLeftData{},
		events.MemberRoleChanged:  &orgs.MemberRoleChangedData{},
		events.InvitationReceived: &orgs.InvitationReceivedData{},
	}
	dataKeys := map[string][]string{
		// Written by package creditalerts and package billing as a map.
		events.LowCreditBalance:  {"balance", "below_since", "threshold", "workspace_id"},
		events.PurchaseCompleted: {"amount", "balance", "completed_at", "credits", "currency", "invoice_number", "pack_id", "purchase_id", "test"},
		TestEventType:            {"message", "webhook_id"},
	}

	for _, typ := range append(deliverableTypes(), TestEventType) {
		t.Run(typ, func(t *testing.T) {
			raw, ok := examples[typ]
			if !ok {
				t.Fatalf("docs/webhooks.md has no example for %s", typ)
			}
			var p struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("example: %v", err)
			}
			if p.Type != typ || p.Timestamp.IsZero() || len(p.Data) == 0 {
				t.Errorf("example has type %q, timestamp %v, data %s", p.Type, p.Timestamp, p.Data)
			}
			if target, ok := dataTypes[typ]; ok {
				dec := json.NewDecoder(bytes.NewReader(p.Data))
				dec.DisallowUnknownFields()
				if err := dec.Decode(target); err != nil {
					t.Errorf("data does not decode into %T: %v", target, err)
				}
				return
			}
			var data map[string]any
			if err := json.Unmarshal(p.Data, &data); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, dataKeys[typ]) {
				t.Errorf("data keys = %v; want %v", keys, dataKeys[typ])
			}
		})
	}
	if _, ok := examples[events.NewLogin]; ok {
		t.Error("docs/webhooks.md shows a security event, which webhooks never send")
	}
}
