package apidoc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apidoc"
	"github.com/signsecure/signsecure/pkg/envelopes"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/orgs"
)

var eventTime = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)

// envelopeData returns the data of an envelope event as package envelopes
// builds it, with the envelope status and the recipients' statuses.
func envelopeData(status string, recipients ...string) envelopes.EventData {
	d := envelopes.EventData{
		EnvelopeID:         ids.New(ids.Envelope),
		Title:              "Lease",
		SenderUserID:       ids.New(ids.User),
		WorkspaceID:        ids.New(ids.Organization),
		EmailNotifications: envelopes.EmailAll,
		Status:             status,
		Recipients:         []envelopes.EventRecipient{},
	}
	for i, st := range recipients {
		d.Recipients = append(d.Recipients, envelopes.EventRecipient{
			ID: ids.New(ids.Recipient), Name: "Signer", Email: "signer@example.com", Role: envelopes.RoleSigner, RoutingOrder: i + 1, Status: st,
		})
	}
	return d
}

// payload returns a delivery body of the type with the data, as package
// webhooks posts it.
func payload(t *testing.T, typ string, data any) []byte {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.New(typ, ids.New(ids.User), json.RawMessage(raw), eventTime)
	if err != nil {
		t.Fatal(err)
	}
	return webhookBody(t, e)
}

// validPayloads returns a payload for every type that webhooks deliver,
// built from the producers' data types where they are exported, and as
// the producers' maps otherwise (billing.purchase_completed in package
// billing, billing.low_credit_balance in package creditalerts).
func validPayloads(t *testing.T) map[string][]byte {
	t.Helper()
	sent := envelopeData(envelopes.StatusSent, envelopes.RecipientActive, envelopes.RecipientPending)
	sent.ActivatedRecipientIDs = []string{sent.Recipients[0].ID}
	signed := envelopeData(envelopes.StatusSent, envelopes.RecipientSigned, envelopes.RecipientActive)
	signed.RecipientID, signed.ActivatedRecipientIDs = signed.Recipients[0].ID, []string{signed.Recipients[1].ID}
	rejected := envelopeData(envelopes.StatusRejected, envelopes.RecipientRejected)
	rejected.RecipientID, rejected.Reason = rejected.Recipients[0].ID, "Wrong terms."
	voided := envelopeData(envelopes.StatusVoided, envelopes.RecipientActive)
	voided.Reason, voided.VoidedBy = "Replaced.", ids.New(ids.User)
	orgID, userID := ids.New(ids.Organization), ids.New(ids.User)

	return map[string][]byte{
		events.EnvelopeCreated:   payload(t, events.EnvelopeCreated, envelopeData(envelopes.StatusDraft, envelopes.RecipientPending)),
		events.EnvelopeSent:      payload(t, events.EnvelopeSent, sent),
		events.EnvelopeSigned:    payload(t, events.EnvelopeSigned, signed),
		events.EnvelopeCompleted: payload(t, events.EnvelopeCompleted, envelopeData(envelopes.StatusCompleted, envelopes.RecipientSigned)),
		events.EnvelopeRejected:  payload(t, events.EnvelopeRejected, rejected),
		events.EnvelopeVoided:    payload(t, events.EnvelopeVoided, voided),
		events.MemberJoined: payload(t, events.MemberJoined, orgs.MemberJoinedData{
			OrganizationID: orgID, OrganizationName: "Engines", UserID: userID, Role: "member", InvitationID: ids.New(ids.Invitation), InvitedBy: ids.New(ids.User),
		}),
		events.MemberLeft: payload(t, events.MemberLeft, orgs.MemberLeftData{
			OrganizationID: orgID, OrganizationName: "Engines", UserID: userID, Role: "admin", Reason: orgs.LeftByRemoval, RemovedBy: ids.New(ids.User),
		}),
		events.MemberRoleChanged: payload(t, events.MemberRoleChanged, orgs.MemberRoleChangedData{
			OrganizationID: orgID, OrganizationName: "Engines", UserID: userID, OldRole: "member", NewRole: "admin", ChangedBy: ids.New(ids.User),
		}),
		events.InvitationReceived: payload(t, events.InvitationReceived, orgs.InvitationReceivedData{
			OrganizationID: orgID, OrganizationName: "Engines", InvitationID: ids.New(ids.Invitation), Email: "Bob@Example.com",
			Role: "member", InvitedBy: userID, ExpiresAt: eventTime.Add(7 * 24 * time.Hour),
		}),
		events.LowCreditBalance: payload(t, events.LowCreditBalance, map[string]any{
			"workspace_id": orgID, "balance": 2, "threshold": 5, "below_since": eventTime,
		}),
		events.PurchaseCompleted: payload(t, events.PurchaseCompleted, map[string]any{
			"purchase_id": ids.New(ids.Purchase), "pack_id": "starter", "credits": 50, "amount": 2500, "currency": "USD",
			"invoice_number": "SS-000001", "balance": 51, "test": true, "completed_at": eventTime,
		}),
	}
}

func TestWebhookPayloadsValidate(t *testing.T) {
	for typ, body := range validPayloads(t) {
		if err := apidoc.ValidateWebhookPayload(typ, body); err != nil {
			t.Errorf("%s: %v\nbody: %s", typ, err, body)
		}
	}
}

// mutate decodes a payload, applies change to its top level and data, and
// encodes it again.
func mutate(t *testing.T, body []byte, change func(top, data map[string]any)) []byte {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	change(top, top["data"].(map[string]any))
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWebhookPayloadsRejectWrongFields(t *testing.T) {
	valid := validPayloads(t)
	cases := []struct {
		name   string
		typ    string
		change func(top, data map[string]any)
	}{
		{"type of another event", events.EnvelopeSent, func(top, _ map[string]any) { top["type"] = events.EnvelopeCreated }},
		{"missing timestamp", events.EnvelopeSent, func(top, _ map[string]any) { delete(top, "timestamp") }},
		{"timestamp not in UTC", events.EnvelopeSent, func(top, _ map[string]any) { top["timestamp"] = "2025-03-04T06:06:07+01:00" }},
		{"extra top-level member", events.EnvelopeSent, func(top, _ map[string]any) { top["id"] = ids.New(ids.Event) }},
		{"missing data member", events.EnvelopeSent, func(_, data map[string]any) { delete(data, "recipients") }},
		{"unknown data member", events.EnvelopeCreated, func(_, data map[string]any) { data["signing_token"] = "sst_x" }},
		{"status of another event", events.EnvelopeCompleted, func(_, data map[string]any) { data["status"] = envelopes.StatusSent }},
		{"sent without activated signers", events.EnvelopeSent, func(_, data map[string]any) { delete(data, "activated_recipient_ids") }},
		{"created with a reason", events.EnvelopeCreated, func(_, data map[string]any) { data["reason"] = "why" }},
		{"rejected without the recipient", events.EnvelopeRejected, func(_, data map[string]any) { delete(data, "recipient_id") }},
		{"voided without voided_by", events.EnvelopeVoided, func(_, data map[string]any) { delete(data, "voided_by") }},
		{"recipient with a bad id", events.EnvelopeCompleted, func(_, data map[string]any) {
			data["recipients"].([]any)[0].(map[string]any)["id"] = "usr_01jf3k8x2q7m9v4n5b6c7d8e9f"
		}},
		{"removal without remover", events.MemberLeft, func(_, data map[string]any) { delete(data, "removed_by") }},
		{"leaving with a remover", events.MemberLeft, func(_, data map[string]any) { data["reason"] = orgs.LeftByLeaving }},
		{"role that does not exist", events.MemberRoleChanged, func(_, data map[string]any) { data["new_role"] = "boss" }},
		{"balance as text", events.LowCreditBalance, func(_, data map[string]any) { data["balance"] = "2" }},
		{"purchase without invoice number", events.PurchaseCompleted, func(_, data map[string]any) { delete(data, "invoice_number") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := mutate(t, valid[tc.typ], tc.change)
			if err := apidoc.ValidateWebhookPayload(tc.typ, body); err == nil {
				t.Errorf("ValidateWebhookPayload accepted %s", body)
			}
		})
	}
}

func TestWebhookPayloadOfUndeliveredType(t *testing.T) {
	body := payload(t, events.NewLogin, map[string]any{"user_id": ids.New(ids.User)})
	err := apidoc.ValidateWebhookPayload(events.NewLogin, body)
	if err == nil || !strings.Contains(err.Error(), "never delivered") {
		t.Errorf("security.new_login: error = %v; want one saying security events are never delivered", err)
	}
	if err := apidoc.ValidateWebhookPayload("envelope.lost", []byte(`{}`)); err == nil {
		t.Error("an unknown event type validated")
	}
}
