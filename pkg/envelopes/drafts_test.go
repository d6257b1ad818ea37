package envelopes

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestCreateDraft(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e, err := f.svc.Create(context.Background(), ada, desktop, CreateInput{
		Title:      "  NDA  ",
		Message:    "Line one.\nLine two.",
		Recipients: []RecipientInput{signer("alice", 0), cc("carol", 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Title != "NDA" || e.Status != StatusDraft || e.EmailNotifications != EmailAll || e.WorkspaceID != ada.WorkspaceID || e.CreatedBy != ada.UserID {
		t.Errorf("draft = %+v", e)
	}
	if len(e.Recipients) != 2 || e.Recipients[0].RoutingOrder != 1 || e.Recipients[0].Status != RecipientPending {
		t.Errorf("recipients = %+v; want two pending, the first with routing order 1", e.Recipients)
	}

	got := f.get(t, ada, e.ID)
	if got.Title != e.Title || got.Message != e.Message || len(got.Recipients) != 2 || got.Recipients[0].ID != e.Recipients[0].ID {
		t.Errorf("read back %+v; want %+v", got, e)
	}
	if n := len(f.events(t, events.EnvelopeCreated, e.ID)); n != 1 {
		t.Errorf("envelope.created events = %d; want 1", n)
	}
}

func TestCreateInvalidInput(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	cases := []struct {
		name          string
		in            CreateInput
		reason, field string
	}{
		{"empty title", CreateInput{Title: " "}, "invalid_title", "title"},
		{"long title", CreateInput{Title: strings.Repeat("t", MaxTitleLength+1)}, "invalid_title", "title"},
		{"two-line title", CreateInput{Title: "a\nb"}, "invalid_title", "title"},
		{"unknown setting", CreateInput{Title: "T", EmailNotifications: "some"}, "invalid_email_notifications", "email_notifications"},
		{"unknown role", CreateInput{Title: "T", Recipients: []RecipientInput{{Name: "A", Email: "a@example.com", Role: "witness"}}}, "invalid_role", "recipients[0].role"},
		{"missing role", CreateInput{Title: "T", Recipients: []RecipientInput{{Name: "A", Email: "a@example.com"}}}, "invalid_role", "recipients[0].role"},
		{"duplicate email", CreateInput{Title: "T", Recipients: []RecipientInput{signer("alice", 1), {Name: "Al", Email: "ALICE@Example.com", Role: RoleCC}}}, "duplicate_recipient", "recipients[1].email"},
		{"bad email", CreateInput{Title: "T", Recipients: []RecipientInput{{Name: "A", Email: "Alice <a@example.com>", Role: RoleSigner}}}, "invalid_email", "recipients[0].email"},
		{"no name", CreateInput{Title: "T", Recipients: []RecipientInput{{Email: "a@example.com", Role: RoleSigner}}}, "invalid_name", "recipients[0].name"},
		{"routing order too high", CreateInput{Title: "T", Recipients: []RecipientInput{signer("alice", MaxRoutingOrder+1)}}, "invalid_routing_order", "recipients[0].routing_order"},
		{"negative routing order", CreateInput{Title: "T", Recipients: []RecipientInput{signer("alice", -1)}}, "invalid_routing_order", "recipients[0].routing_order"},
		{"too many recipients", CreateInput{Title: "T", Recipients: make([]RecipientInput, MaxRecipients+1)}, "too_many_recipients", "recipients"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Create(context.Background(), ada, desktop, tc.in)
			wantCode(t, err, apperr.Invalid, tc.reason)
			if got := apperr.As(err).Field; got != tc.field {
				t.Errorf("field = %q; want %q", got, tc.field)
			}
		})
	}
	if n := f.countItems(t); n != 2 {
		t.Errorf("items = %d; want 2, the wallet and its starting grant", n)
	}
}

func TestUpdateDraft(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.draft(t, ada, EmailAll, signer("alice", 1), signer("bob", 2))
	title, setting := "Lease v2", EmailNone
	recipients := []RecipientInput{signer("dave", 1)}

	got, err := f.svc.Update(context.Background(), ada, desktop, e.ID, UpdateInput{Title: &title, EmailNotifications: &setting, Recipients: &recipients})
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != title || got.EmailNotifications != EmailNone || got.Message != "Please sign." {
		t.Errorf("updated = %+v", got)
	}
	read := f.get(t, ada, e.ID)
	if len(read.Recipients) != 1 || read.Recipients[0].Name != "dave" || read.RecipientCount != 1 {
		t.Errorf("recipients after update = %+v; want only dave", read.Recipients)
	}
	if len(read.Documents) != 1 {
		t.Errorf("documents after update = %d; want 1", len(read.Documents))
	}

	_, err = f.svc.Update(context.Background(), ada, desktop, e.ID, UpdateInput{})
	wantCode(t, err, apperr.Invalid, "empty_update")
	bad := []RecipientInput{signer("x", 1), signer("x", 2)}
	_, err = f.svc.Update(context.Background(), ada, desktop, e.ID, UpdateInput{Recipients: &bad})
	wantCode(t, err, apperr.Invalid, "duplicate_recipient")
	if again := f.get(t, ada, e.ID); again.Version != read.Version {
		t.Errorf("version after refused updates = %d; want %d", again.Version, read.Version)
	}
}

func TestUpdateSentEnvelopeConflicts(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	title := "Changed"
	_, err := f.svc.Update(context.Background(), ada, desktop, e.ID, UpdateInput{Title: &title})
	wantCode(t, err, apperr.Conflict, "envelope_not_draft")
	err = f.svc.Delete(context.Background(), ada, e.ID)
	wantCode(t, err, apperr.Conflict, "envelope_not_draft")
}

func TestDeleteDraftRemovesEverything(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	itemsBefore, objectsBefore := f.countItems(t), f.countObjects(t)
	createdEvents := 1

	e := f.draft(t, ada, EmailAll, signer("alice", 1), cc("carol", 1))
	if err := f.svc.Delete(context.Background(), ada, e.ID); err != nil {
		t.Fatal(err)
	}

	if _, err := f.svc.Get(context.Background(), ada, e.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("get after delete: %v; want not found", err)
	}
	if got := f.countItems(t); got != itemsBefore+createdEvents {
		t.Errorf("items = %d; want %d: only the envelope.created event stays", got, itemsBefore+createdEvents)
	}
	if got := f.countObjects(t); got != objectsBefore {
		t.Errorf("objects = %d; want %d", got, objectsBefore)
	}
}

func TestListNewestFirstWithStatusFilter(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	var created []string
	for range 3 {
		created = append(created, f.draft(t, ada, EmailAll, signer("alice", 1)).ID)
	}
	sent := f.sent(t, ada, EmailAll, signer("bob", 1))
	other := f.personal(t)
	f.draft(t, other, EmailAll, signer("alice", 1))

	var all []string
	cursor := ""
	for {
		page, next, err := f.svc.List(context.Background(), ada, "", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			all = append(all, e.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{sent.ID, created[2], created[1], created[0]}
	if !slices.Equal(all, want) {
		t.Errorf("listing = %v; want %v", all, want)
	}

	drafts, _, err := f.svc.List(context.Background(), ada, StatusDraft, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(drafts) != 3 {
		t.Errorf("drafts = %d; want 3", len(drafts))
	}
	_, _, err = f.svc.List(context.Background(), ada, "archived", 10, "")
	wantCode(t, err, apperr.Invalid, "invalid_status")
	_, _, err = f.svc.List(context.Background(), other, "", 10, cursor)
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("another workspace's cursor: %v; want ErrInvalidCursor", err)
	}
}

func TestOtherWorkspaceEnvelopeIsNotFound(t *testing.T) {
	f := newFixture(t, 10)
	ada, eve := f.personal(t), f.personal(t)
	e := f.sent(t, ada, EmailNone, signer("alice", 1))
	draft := f.draft(t, ada, EmailAll, signer("bob", 1))
	docID := f.get(t, ada, draft.ID).Documents[0].ID
	ctx := context.Background()
	title := "mine"
	before := f.countItems(t)

	actions := map[string]func() error{
		"get": func() error { _, err := f.svc.Get(ctx, eve, e.ID); return err },
		"update": func() error {
			_, err := f.svc.Update(ctx, eve, desktop, draft.ID, UpdateInput{Title: &title})
			return err
		},
		"delete":        func() error { return f.svc.Delete(ctx, eve, draft.ID) },
		"send":          func() error { _, err := f.svc.Send(ctx, eve, desktop, draft.ID); return err },
		"void":          func() error { _, err := f.svc.Void(ctx, eve, desktop, e.ID, VoidInput{Reason: "x"}); return err },
		"audit":         func() error { _, _, err := f.svc.ListAudit(ctx, eve, e.ID, 10, ""); return err },
		"signing links": func() error { _, err := f.svc.SigningLinks(ctx, eve, desktop, e.ID); return err },
		"add document": func() error {
			_, err := f.svc.AddDocument(ctx, eve, desktop, draft.ID, "x.pdf", testPDF("x"))
			return err
		},
		"list documents":  func() error { _, err := f.svc.ListDocuments(ctx, eve, draft.ID); return err },
		"open document":   func() error { _, _, err := f.svc.OpenDocument(ctx, eve, draft.ID, docID); return err },
		"delete document": func() error { return f.svc.DeleteDocument(ctx, eve, desktop, draft.ID, docID) },
	}
	for _, name := range slices.Sorted(maps.Keys(actions)) {
		err := actions[name]()
		ae := apperr.As(err)
		if ae == nil || ae.Code != apperr.NotFound || ae.ReasonCode() != "envelope_not_found" {
			t.Errorf("%s on another workspace's envelope: %v; want envelope_not_found", name, err)
		}
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}

	list, _, err := f.svc.List(ctx, eve, "", 10, "")
	if err != nil || len(list) != 0 {
		t.Errorf("eve's listing = %d envelopes, %v; want none", len(list), err)
	}
	_, err = f.svc.Get(ctx, ada, "env_nope")
	wantCode(t, err, apperr.Invalid, "invalid_id")
}

func TestOrganizationAPIKeyEnvelopesBelongToOrganization(t *testing.T) {
	f := newFixture(t, 10)
	orgID, owner, member, key := f.org(t)
	e := f.sent(t, key, EmailAll, signer("alice", 1))

	if e.WorkspaceID != orgID || e.CreatedBy != key.UserID || e.CreatedByAPIKeyID != key.APIKeyID {
		t.Errorf("envelope by org key: workspace %s creator %s key %s; want %s, %s, %s", e.WorkspaceID, e.CreatedBy, e.CreatedByAPIKeyID, orgID, key.UserID, key.APIKeyID)
	}
	if f.balance(t, orgID) != 9 {
		t.Errorf("organization balance = %d; want 9", f.balance(t, orgID))
	}
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"owner", func() error { _, err := f.svc.Get(context.Background(), owner, e.ID); return err }},
		{"member", func() error { _, err := f.svc.Get(context.Background(), member, e.ID); return err }},
	} {
		if err := c.read(); err != nil {
			t.Errorf("%s reads the org key's envelope: %v", c.name, err)
		}
	}

	personalOwner := &authn.Caller{Kind: authn.KindSession, UserID: owner.UserID, WorkspaceID: owner.UserID}
	_, err := f.svc.Get(context.Background(), personalOwner, e.ID)
	wantCode(t, err, apperr.NotFound, "envelope_not_found")

	sent := f.events(t, events.EnvelopeSent, e.ID)
	if len(sent) != 1 || sent[0].WorkspaceID != orgID || sent[0].Data["sender_user_id"] != key.UserID {
		t.Errorf("envelope.sent events = %+v; want one in %s sent by %s", sent, orgID, key.UserID)
	}
}

func TestMemberChangesOnlyOwnEnvelopes(t *testing.T) {
	f := newFixture(t, 10)
	_, owner, member, key := f.org(t)
	byOwner := f.draft(t, owner, EmailAll, signer("alice", 1))
	byMember := f.draft(t, member, EmailAll, signer("bob", 1))
	title := "x"

	_, err := f.svc.Update(context.Background(), member, desktop, byOwner.ID, UpdateInput{Title: &title})
	wantCode(t, err, apperr.Forbidden, "not_envelope_sender")
	if _, err := f.svc.Update(context.Background(), member, desktop, byMember.ID, UpdateInput{Title: &title}); err != nil {
		t.Errorf("member updates own draft: %v", err)
	}
	if _, err := f.svc.Update(context.Background(), owner, desktop, byMember.ID, UpdateInput{Title: &title}); err != nil {
		t.Errorf("owner updates member's draft: %v", err)
	}
	if _, err := f.svc.Send(context.Background(), key, desktop, byMember.ID); err != nil {
		t.Errorf("org API key sends member's draft: %v", err)
	}
}

// TestEventDataFields pins the exact fields of every envelope event, which
// the notification pipeline decodes.
func TestEventDataFields(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	signedThenCompleted := f.sent(t, ada, EmailCompletionOnly, signer("alice", 1), cc("carol", 2))
	if _, err := f.svc.Sign(context.Background(), tokenOf(signedThenCompleted, 0), desktop, SignInput{TypedName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	rejected := f.sent(t, ada, EmailAll, signer("bob", 1))
	if _, err := f.svc.Reject(context.Background(), tokenOf(rejected, 0), desktop, RejectInput{Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	voided := f.sent(t, ada, EmailAll, signer("dave", 1))
	if _, err := f.svc.Void(context.Background(), ada, desktop, voided.ID, VoidInput{Reason: "stop"}); err != nil {
		t.Fatal(err)
	}

	common := []string{"envelope_id", "title", "sender_user_id", "workspace_id", "email_notifications", "status", "recipients"}
	cases := []struct {
		typ, envelopeID string
		extra           []string
		status          string
	}{
		{events.EnvelopeCreated, signedThenCompleted.ID, nil, StatusDraft},
		{events.EnvelopeSent, signedThenCompleted.ID, []string{"activated_recipient_ids"}, StatusSent},
		{events.EnvelopeSigned, signedThenCompleted.ID, []string{"activated_recipient_ids", "recipient_id"}, StatusCompleted},
		{events.EnvelopeCompleted, signedThenCompleted.ID, nil, StatusCompleted},
		{events.EnvelopeRejected, rejected.ID, []string{"recipient_id", "reason"}, StatusRejected},
		{events.EnvelopeVoided, voided.ID, []string{"reason", "voided_by"}, StatusVoided},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			list := f.events(t, tc.typ, tc.envelopeID)
			if len(list) != 1 {
				t.Fatalf("%s events = %d; want 1", tc.typ, len(list))
			}
			data := list[0].Data
			want := slices.Sorted(slices.Values(append(slices.Clone(common), tc.extra...)))
			if got := slices.Sorted(maps.Keys(data)); !slices.Equal(got, want) {
				t.Errorf("fields = %v; want %v", got, want)
			}
			if data["status"] != tc.status || data["workspace_id"] != ada.WorkspaceID || data["sender_user_id"] != ada.UserID {
				t.Errorf("status %v workspace %v sender %v", data["status"], data["workspace_id"], data["sender_user_id"])
			}
			recipient := data["recipients"].([]any)[0].(map[string]any)
			if got := slices.Sorted(maps.Keys(recipient)); !slices.Equal(got, []string{"email", "id", "name", "role", "routing_order", "status"}) {
				t.Errorf("recipient fields = %v", got)
			}
			if strings.Contains(list[0].Raw, SigningTokenPrefix) {
				t.Errorf("%s data carries a signing token: %s", tc.typ, list[0].Raw)
			}
		})
	}
}
