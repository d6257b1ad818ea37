package envelopes

import (
	"context"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
)

func TestFullFlowTwoSignersInOrderAndCC(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1), signer("bob", 2), cc("carol", 3))
	alice, bob := recipientByName(t, e, "alice"), recipientByName(t, e, "bob")
	aliceToken := SigningToken(testSigningKey, e.ID, alice.ID)
	bobToken := SigningToken(testSigningKey, e.ID, bob.ID)
	ctx := context.Background()

	if _, err := f.svc.View(ctx, bobToken, desktop); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("bob's link before his turn: %v; want not found", err)
	}

	view, err := f.svc.View(ctx, aliceToken, desktop)
	if err != nil {
		t.Fatalf("alice views: %v", err)
	}
	if view.Envelope.Title != "Lease agreement" || view.Recipient.ID != alice.ID || len(view.Documents) != 1 {
		t.Errorf("alice's view = %+v", view)
	}
	doc, body, err := f.svc.OpenSigningDocument(ctx, aliceToken, view.Documents[0].ID)
	if err != nil {
		t.Fatalf("alice downloads: %v", err)
	}
	content, _ := io.ReadAll(body)
	body.Close()
	if string(content) != string(testPDF("lease")) || doc.SHA256 != view.Documents[0].SHA256 {
		t.Error("alice's download differs from the uploaded document")
	}

	signed, err := f.svc.Sign(ctx, aliceToken, desktop, SignInput{TypedName: "Alice A."})
	if err != nil {
		t.Fatalf("alice signs: %v", err)
	}
	if signed.Recipient.Status != RecipientSigned || signed.Envelope.Status != StatusSent {
		t.Errorf("after alice: recipient %s envelope %s; want signed, sent", signed.Recipient.Status, signed.Envelope.Status)
	}
	mid := f.get(t, ada, e.ID)
	if got := recipientByName(t, mid, "bob").Status; got != RecipientActive {
		t.Errorf("bob after alice signed = %s; want active", got)
	}
	if got := recipientByName(t, mid, "carol").Status; got != RecipientPending {
		t.Errorf("carol after alice signed = %s; want pending", got)
	}

	if _, err := f.svc.Sign(ctx, bobToken, Client{IP: "198.51.100.7", UserAgent: "curl/8"}, SignInput{TypedName: "Bob B.", SignaturePNG: base64.StdEncoding.EncodeToString(testPNG(t, 300, 80))}); err != nil {
		t.Fatalf("bob signs: %v", err)
	}

	done := f.get(t, ada, e.ID)
	if done.Status != StatusCompleted || done.CompletedAt == nil {
		t.Errorf("envelope = %s completed_at %v; want completed", done.Status, done.CompletedAt)
	}
	if b := recipientByName(t, done, "bob"); b.Status != RecipientSigned || b.TypedName != "Bob B." || !b.HasSignatureImage || b.SignedAt == nil {
		t.Errorf("bob = %+v; want signed with typed name and image", b)
	}
	if c := recipientByName(t, done, "carol"); c.Status != RecipientPending || c.ActivatedAt != nil {
		t.Errorf("cc carol = %+v; want pending and never activated", c)
	}

	signedEvents := f.events(t, events.EnvelopeSigned, e.ID)
	if len(signedEvents) != 2 {
		t.Fatalf("envelope.signed events = %d; want 2", len(signedEvents))
	}
	if got := signedEvents[0].Data["activated_recipient_ids"].([]any); !slices.Equal(got, []any{bob.ID}) {
		t.Errorf("first envelope.signed activated %v; want [%s]", got, bob.ID)
	}
	if got := signedEvents[1].Data["activated_recipient_ids"].([]any); len(got) != 0 {
		t.Errorf("second envelope.signed activated %v; want none", got)
	}
	if signedEvents[1].Data["recipient_id"] != bob.ID {
		t.Errorf("second envelope.signed recipient_id = %v; want %s", signedEvents[1].Data["recipient_id"], bob.ID)
	}
	if n := len(f.events(t, events.EnvelopeCompleted, e.ID)); n != 1 {
		t.Errorf("envelope.completed events = %d; want 1", n)
	}

	trail, _, err := f.svc.ListAudit(ctx, ada, e.ID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range trail {
		actions = append(actions, a.Action+":"+a.ActorID)
	}
	want := []string{
		ActionCreated + ":" + ada.UserID,
		ActionDocumentAdded + ":" + ada.UserID,
		ActionSent + ":" + ada.UserID,
		ActionRecipientViewed + ":" + alice.ID,
		ActionSigned + ":" + alice.ID,
		ActionSigned + ":" + bob.ID,
		ActionCompleted + ":",
	}
	if !slices.Equal(actions, want) {
		t.Errorf("audit trail = %v\nwant %v", actions, want)
	}
	last := trail[5]
	if last.IP != "198.51.100.7" || last.UserAgent != "curl/8" || last.ActorType != ActorRecipient || last.CreatedAt.IsZero() {
		t.Errorf("bob's audit entry = %+v; want his IP, user agent and a time", last)
	}

	var debits int
	for _, entry := range f.ledger(t, ada.WorkspaceID) {
		if entry.Reason == LedgerReasonSend {
			debits++
		}
	}
	if debits != 1 || f.balance(t, ada.WorkspaceID) != 9 {
		t.Errorf("ledger has %d send debits and balance %d; want 1 and 9", debits, f.balance(t, ada.WorkspaceID))
	}
}

func TestSignSameSignerConcurrently(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	tok := tokenOf(e, 0)
	objectsBefore := f.countObjects(t)

	const n = 6
	var wg sync.WaitGroup
	var ok, already atomic.Int32
	start := make(chan struct{})
	image := base64.StdEncoding.EncodeToString(testPNG(t, 120, 40))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := f.svc.Sign(context.Background(), tok, desktop, SignInput{TypedName: "Alice", SignaturePNG: image})
			switch {
			case err == nil:
				ok.Add(1)
			case apperr.As(err) != nil && apperr.As(err).ReasonCode() == "already_signed",
				apperr.As(err) != nil && apperr.As(err).ReasonCode() == "envelope_completed":
				already.Add(1)
			default:
				t.Errorf("sign: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()

	if ok.Load() != 1 || already.Load() != n-1 {
		t.Errorf("signatures accepted %d, refused %d; want 1 and %d", ok.Load(), already.Load(), n-1)
	}
	if got := len(f.events(t, events.EnvelopeSigned, e.ID)); got != 1 {
		t.Errorf("envelope.signed events = %d; want 1", got)
	}
	if got := len(f.events(t, events.EnvelopeCompleted, e.ID)); got != 1 {
		t.Errorf("envelope.completed events = %d; want 1", got)
	}
	if got := f.countObjects(t); got != objectsBefore+1 {
		t.Errorf("objects = %d; want %d: only the accepted signature image stays", got, objectsBefore+1)
	}
}

func TestSignLastTwoSignersConcurrently(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("first", 1), signer("alice", 2), signer("bob", 2))
	if _, err := f.svc.Sign(context.Background(), tokenOf(e, 0), desktop, SignInput{TypedName: "First"}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, idx := range []int{1, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f.svc.Sign(context.Background(), tokenOf(e, idx), desktop, SignInput{TypedName: e.Recipients[idx].Name})
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("signer %d: %v", i, err)
		}
	}
	if got := len(f.events(t, events.EnvelopeCompleted, e.ID)); got != 1 {
		t.Errorf("envelope.completed events = %d; want 1", got)
	}
	if got := len(f.events(t, events.EnvelopeSigned, e.ID)); got != 3 {
		t.Errorf("envelope.signed events = %d; want 3", got)
	}
	if got := f.get(t, ada, e.ID).Status; got != StatusCompleted {
		t.Errorf("status = %s; want completed", got)
	}
}

func TestSignInvalidInput(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	tok := tokenOf(e, 0)
	jpeg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	cases := []struct {
		name   string
		in     SignInput
		reason string
	}{
		{"no typed name", SignInput{TypedName: "  "}, "invalid_typed_name"},
		{"typed name too long", SignInput{TypedName: strings.Repeat("x", MaxNameLength+1)}, "invalid_typed_name"},
		{"not base64", SignInput{TypedName: "A", SignaturePNG: "%%%"}, "invalid_signature_png"},
		{"not a PNG", SignInput{TypedName: "A", SignaturePNG: base64.StdEncoding.EncodeToString(jpeg)}, "invalid_signature_png"},
		{"PNG magic only", SignInput{TypedName: "A", SignaturePNG: base64.StdEncoding.EncodeToString(pngMagic)}, "invalid_signature_png"},
		{"too large", SignInput{TypedName: "A", SignaturePNG: base64.StdEncoding.EncodeToString(append(testPNG(t, 10, 10), make([]byte, MaxSignatureBytes)...))}, "invalid_signature_png"},
		{"too wide", SignInput{TypedName: "A", SignaturePNG: base64.StdEncoding.EncodeToString(testPNG(t, maxSignatureWidth+1, 1))}, "invalid_signature_png"},
	}
	before := f.countItems(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Sign(context.Background(), tok, desktop, tc.in)
			wantCode(t, err, apperr.Invalid, tc.reason)
		})
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
}

func TestSigningLinkInvalidOrExpired(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	cases := []struct {
		name, token, reason string
	}{
		{"malformed", "sst_short", "signing_link_invalid"},
		{"other prefix", "sess_" + strings.Repeat("a", 43), "signing_link_invalid"},
		{"unknown", SigningToken([]byte("another key of at least 32 bytes!!"), e.ID, e.Recipients[0].ID), "signing_link_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.View(context.Background(), tc.token, desktop)
			wantCode(t, err, apperr.NotFound, tc.reason)
		})
	}

	f.clock.Advance(f.cfg.SigningLinkTTL)
	_, err := f.svc.Sign(context.Background(), tokenOf(e, 0), desktop, SignInput{TypedName: "Alice"})
	wantCode(t, err, apperr.NotFound, "signing_link_expired")
}

func TestRejectEndsEnvelopeAndInvalidatesLinks(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1), signer("bob", 1), signer("dave", 2))
	alice, bob := tokenOf(e, 0), tokenOf(e, 1)

	if _, err := f.svc.Sign(context.Background(), alice, desktop, SignInput{TypedName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Reject(context.Background(), bob, desktop, RejectInput{Reason: "Wrong rent amount."})
	if err != nil {
		t.Fatalf("reject: %v", err)
	}

	got := f.get(t, ada, e.ID)
	if got.Status != StatusRejected || got.RejectedBy != e.Recipients[1].ID || got.RejectReason != "Wrong rent amount." {
		t.Errorf("envelope = %s by %s (%q); want rejected by bob", got.Status, got.RejectedBy, got.RejectReason)
	}
	for _, r := range e.Recipients[:2] {
		it, ok := f.signingItemOf(t, e.ID, r.ID)
		if !ok || it.Valid {
			t.Errorf("signing token of %s: stored %v valid %v; want stored and invalid", r.Name, ok, it.Valid)
		}
	}
	if _, ok := f.signingItemOf(t, e.ID, e.Recipients[2].ID); ok {
		t.Error("dave, whose turn never came, has a signing token")
	}
	_, err = f.svc.View(context.Background(), alice, desktop)
	wantCode(t, err, apperr.Conflict, "envelope_rejected")

	rejected := f.events(t, events.EnvelopeRejected, e.ID)
	if len(rejected) != 1 {
		t.Fatalf("envelope.rejected events = %d; want 1", len(rejected))
	}
	if rejected[0].Data["recipient_id"] != e.Recipients[1].ID || rejected[0].Data["reason"] != "Wrong rent amount." {
		t.Errorf("envelope.rejected data = %v", rejected[0].Data)
	}
}

func TestVoidEndsEnvelopeAndInvalidatesLinks(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailNone, signer("alice", 1))

	got, err := f.svc.Void(context.Background(), ada, desktop, e.ID, VoidInput{Reason: "Sent to the wrong person."})
	if err != nil {
		t.Fatalf("void: %v", err)
	}
	if got.Status != StatusVoided || got.VoidedBy != ada.UserID || got.VoidedAt == nil {
		t.Errorf("voided envelope = %+v", got)
	}
	if it, ok := f.signingItemOf(t, e.ID, e.Recipients[0].ID); !ok || it.Valid {
		t.Errorf("signing token: stored %v valid %v; want stored and invalid", ok, it.Valid)
	}
	voided := f.events(t, events.EnvelopeVoided, e.ID)
	if len(voided) != 1 {
		t.Fatalf("envelope.voided events = %d; want 1", len(voided))
	}
	if voided[0].Data["reason"] != "Sent to the wrong person." || voided[0].Data["voided_by"] != ada.UserID {
		t.Errorf("envelope.voided data = %v", voided[0].Data)
	}
	if f.balance(t, ada.WorkspaceID) != 9 {
		t.Errorf("balance after void = %d; want 9, because voiding refunds nothing", f.balance(t, ada.WorkspaceID))
	}
}

func TestVoidNeedsReasonAndSentEnvelope(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	draft := f.draft(t, ada, EmailAll, signer("alice", 1))
	sent := f.sent(t, ada, EmailAll, signer("bob", 1))

	_, err := f.svc.Void(context.Background(), ada, desktop, sent.ID, VoidInput{Reason: " "})
	wantCode(t, err, apperr.Invalid, "invalid_reason")
	_, err = f.svc.Void(context.Background(), ada, desktop, draft.ID, VoidInput{Reason: "no"})
	wantCode(t, err, apperr.Conflict, "envelope_not_sent")
}

// TestTerminalStatesRefuseActions puts an envelope in each terminal state
// and checks that every action on it is a 409.
func TestTerminalStatesRefuseActions(t *testing.T) {
	f := newFixture(t, 20)
	ada := f.personal(t)
	ctx := context.Background()

	finish := map[string]func(e Envelope){
		StatusCompleted: func(e Envelope) {
			for i := range e.Recipients {
				if _, err := f.svc.Sign(ctx, tokenOf(e, i), desktop, SignInput{TypedName: "X"}); err != nil {
					t.Fatal(err)
				}
			}
		},
		StatusRejected: func(e Envelope) {
			if _, err := f.svc.Reject(ctx, tokenOf(e, 0), desktop, RejectInput{Reason: "No."}); err != nil {
				t.Fatal(err)
			}
		},
		StatusVoided: func(e Envelope) {
			if _, err := f.svc.Void(ctx, ada, desktop, e.ID, VoidInput{Reason: "Stop."}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, status := range []string{StatusCompleted, StatusRejected, StatusVoided} {
		t.Run(status, func(t *testing.T) {
			e := f.sent(t, ada, EmailNone, signer("alice", 1), signer("bob", 1))
			finish[status](e)
			docID := f.get(t, ada, e.ID).Documents[0].ID
			title := "New"
			before := f.countItems(t)

			actions := map[string]func() error{
				"update": func() error {
					_, err := f.svc.Update(ctx, ada, desktop, e.ID, UpdateInput{Title: &title})
					return err
				},
				"delete": func() error { return f.svc.Delete(ctx, ada, e.ID) },
				"send": func() error {
					_, err := f.svc.Send(ctx, ada, desktop, e.ID)
					return err
				},
				"void": func() error {
					_, err := f.svc.Void(ctx, ada, desktop, e.ID, VoidInput{Reason: "again"})
					return err
				},
				"add document": func() error {
					_, err := f.svc.AddDocument(ctx, ada, desktop, e.ID, "b.pdf", testPDF("b"))
					return err
				},
				"delete document": func() error { return f.svc.DeleteDocument(ctx, ada, desktop, e.ID, docID) },
				"signing links": func() error {
					_, err := f.svc.SigningLinks(ctx, ada, desktop, e.ID)
					return err
				},
				"sign": func() error {
					_, err := f.svc.Sign(ctx, tokenOf(e, 1), desktop, SignInput{TypedName: "Bob"})
					return err
				},
				"reject": func() error {
					_, err := f.svc.Reject(ctx, tokenOf(e, 1), desktop, RejectInput{Reason: "late"})
					return err
				},
			}
			for name, act := range actions {
				if err := act(); apperr.CodeOf(err) != apperr.Conflict {
					t.Errorf("%s on a %s envelope: %v; want a conflict", name, status, err)
				}
			}
			if after := f.countItems(t); after != before {
				t.Errorf("items = %d; want %d", after, before)
			}
		})
	}
}

func TestViewRecordsFirstViewOnce(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	for range 3 {
		if _, err := f.svc.View(context.Background(), tokenOf(e, 0), desktop); err != nil {
			t.Fatal(err)
		}
	}
	trail, _, err := f.svc.ListAudit(context.Background(), ada, e.ID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	views := 0
	for _, a := range trail {
		if a.Action == ActionRecipientViewed {
			views++
		}
	}
	if views != 1 {
		t.Errorf("view entries = %d; want 1", views)
	}
	if got := recipientByName(t, f.get(t, ada, e.ID), "alice").ViewedAt; got == nil {
		t.Error("viewed_at is not set")
	}
}

func TestSigningLinksOnlyWithoutEmails(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	quiet := f.sent(t, ada, EmailNone, signer("alice", 1), signer("bob", 2))
	loud := f.sent(t, ada, EmailAll, signer("carol", 1))

	links, err := f.svc.SigningLinks(context.Background(), ada, desktop, quiet.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Fatalf("links = %d; want 1, for the active signer only", len(links))
	}
	wantURL := "https://sign.example.com/s/" + tokenOf(quiet, 0)
	if links[0].RecipientID != quiet.Recipients[0].ID || links[0].URL != wantURL {
		t.Errorf("link = %+v; want alice's %s", links[0], wantURL)
	}
	if !links[0].ExpiresAt.After(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("link expires at %s; want about 90 days after sending", links[0].ExpiresAt)
	}

	_, err = f.svc.SigningLinks(context.Background(), ada, desktop, loud.ID)
	wantCode(t, err, apperr.Conflict, "signing_links_emailed")
}
