package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/events"
)

func syntheticEnvelopeEvent(t *testing.T, typ, setting string, extra map[string]any) (events.Event, envelopeData) {
	t.Helper()
	data := map[string]any{
		"envelope_id":         "env_1",
		"title":               "Lease",
		"sender_user_id":      "usr_sender",
		"workspace_id":        "usr_sender",
		"email_notifications": setting,
		"recipients": []map[string]any{
			{"id": "rcp_1", "name": "One", "email": "one@example.com", "role": "signer", "routing_order": 1, "status": "signed"},
			{"id": "rcp_2", "name": "Two", "email": "two@example.com", "role": "signer", "routing_order": 2, "status": "active"},
			{"id": "rcp_3", "name": "Three", "email": "three@example.com", "role": "signer", "routing_order": 3, "status": "pending"},
			{"id": "rcp_4", "name": "Copy", "email": "cc@example.com", "role": "cc", "routing_order": 4, "status": "pending"},
		},
	}
	for k, v := range extra {
		data[k] = v
	}
	e, err := events.New(typ, "usr_sender", data, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var d envelopeData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return e, d
}

func TestEnvelopeEmailSettings(t *testing.T) {
	sent := map[string]any{"activated_recipient_ids": []string{"rcp_1"}}
	signed := map[string]any{"recipient_id": "rcp_1", "activated_recipient_ids": []string{"rcp_2"}}
	rejected := map[string]any{"recipient_id": "rcp_2", "reason": "no"}
	voided := map[string]any{"reason": "superseded"}

	all := []string{"cc@example.com", "one@example.com", "three@example.com", "two@example.com"}
	cases := []struct {
		typ     string
		extra   map[string]any
		setting string
		want    []string // "kind to"
	}{
		{events.EnvelopeSent, sent, "all", []string{"signing_request one@example.com"}},
		{events.EnvelopeSent, sent, "", []string{"signing_request one@example.com"}},
		{events.EnvelopeSent, sent, "completion_only", nil},
		{events.EnvelopeSent, sent, "none", nil},
		{events.EnvelopeSigned, signed, "all", []string{"next_signer two@example.com"}},
		{events.EnvelopeSigned, signed, "completion_only", nil},
		{events.EnvelopeSigned, signed, "none", nil},
		{events.EnvelopeCompleted, nil, "all", kindTo("envelope_completed", all)},
		{events.EnvelopeCompleted, nil, "completion_only", kindTo("envelope_completed", all)},
		{events.EnvelopeCompleted, nil, "none", nil},
		{events.EnvelopeRejected, rejected, "all", kindTo("envelope_rejected", []string{"one@example.com"})},
		{events.EnvelopeRejected, rejected, "completion_only", nil},
		{events.EnvelopeRejected, rejected, "none", nil},
		{events.EnvelopeVoided, voided, "all", kindTo("envelope_voided", []string{"one@example.com", "two@example.com"})},
		{events.EnvelopeVoided, voided, "completion_only", nil},
		{events.EnvelopeVoided, voided, "none", nil},
		{events.EnvelopeSent, sent, "sometimes", nil},
		{events.EnvelopeCreated, nil, "all", nil},
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %q", tc.typ, tc.setting), func(t *testing.T) {
			e, d := syntheticEnvelopeEvent(t, tc.typ, tc.setting, tc.extra)
			jobs := envelopeEmails(e, d, "Sam", logger)

			var got []string
			for _, j := range jobs {
				got = append(got, string(j.Kind)+" "+j.To)
				if err := j.Validate(); err != nil {
					t.Errorf("job %s is invalid: %v", j.ID, err)
				}
				if j.ID != email.JobID(e.ID, e.Timestamp, j.Kind, j.To) {
					t.Errorf("job id %s is not derived from the event, kind and address", j.ID)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("jobs = %v; want %v", got, tc.want)
			}
		})
	}
}

func TestEnvelopeEmailLinksAndVars(t *testing.T) {
	e, d := syntheticEnvelopeEvent(t, events.EnvelopeSent, "all", map[string]any{"activated_recipient_ids": []string{"rcp_1", "rcp_missing"}})
	jobs := envelopeEmails(e, d, "Sam", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(jobs) != 1 {
		t.Fatalf("jobs = %d; want 1, because rcp_missing is not a recipient", len(jobs))
	}
	j := jobs[0]
	if j.EnvelopeID != "env_1" || j.RecipientID != "rcp_1" {
		t.Errorf("link target = %s/%s; want env_1/rcp_1", j.EnvelopeID, j.RecipientID)
	}
	want := map[string]string{"envelope_title": "Lease", "sender_name": "Sam", "recipient_name": "One"}
	for k, v := range want {
		if j.Vars[k] != v {
			t.Errorf("var %s = %q; want %q", k, j.Vars[k], v)
		}
	}
}

func kindTo(kind string, addresses []string) []string {
	out := make([]string, 0, len(addresses))
	for _, a := range addresses {
		out = append(out, kind+" "+a)
	}
	return out
}
