package envelopes

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/events"
)

func TestSendActivatesFirstRoutingOrder(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("bob", 2), signer("alice", 1), cc("carol", 1), signer("dave", 1))

	if e.Status != StatusSent || e.CreditsSpent != 1 || e.SentAt == nil {
		t.Errorf("sent envelope: status %s, credits %d, sent_at %v; want sent, 1, set", e.Status, e.CreditsSpent, e.SentAt)
	}
	wantStatus := map[string]string{"alice": RecipientActive, "dave": RecipientActive, "bob": RecipientPending, "carol": RecipientPending}
	got := f.get(t, ada, e.ID)
	for name, want := range wantStatus {
		r := recipientByName(t, got, name)
		if r.Status != want {
			t.Errorf("recipient %s status = %s; want %s", name, r.Status, want)
		}
		_, hasToken := f.signingItemOf(t, e.ID, r.ID)
		if hasToken != (want == RecipientActive) {
			t.Errorf("recipient %s has a signing token item: %v; want %v", name, hasToken, want == RecipientActive)
		}
	}

	sentEvents := f.events(t, events.EnvelopeSent, e.ID)
	if len(sentEvents) != 1 {
		t.Fatalf("envelope.sent events = %d; want 1", len(sentEvents))
	}
	activated := sentEvents[0].Data["activated_recipient_ids"].([]any)
	wantIDs := []any{recipientByName(t, got, "alice").ID, recipientByName(t, got, "dave").ID}
	if !slices.Equal(activated, wantIDs) {
		t.Errorf("activated_recipient_ids = %v; want %v", activated, wantIDs)
	}
}

func TestSendDebitsOneCreditOnce(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))

	if got := f.balance(t, ada.WorkspaceID); got != 9 {
		t.Errorf("balance = %d; want 9", got)
	}
	var debits []billing.LedgerEntry
	for _, entry := range f.ledger(t, ada.WorkspaceID) {
		if entry.Reason == LedgerReasonSend {
			debits = append(debits, entry)
		}
	}
	if len(debits) != 1 {
		t.Fatalf("send debits = %d; want 1", len(debits))
	}
	if debits[0].Amount != -1 || debits[0].Reference != e.ID {
		t.Errorf("debit = %d for %q; want -1 for %s", debits[0].Amount, debits[0].Reference, e.ID)
	}
}

func TestSendConcurrentOnlyOneSucceeds(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e := f.draft(t, ada, EmailAll, signer("alice", 1), signer("bob", 1))

	const n = 8
	var wg sync.WaitGroup
	var sent, conflicts atomic.Int32
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := f.svc.Send(context.Background(), ada, desktop, e.ID)
			switch {
			case err == nil:
				sent.Add(1)
			case apperr.CodeOf(err) == apperr.Conflict:
				conflicts.Add(1)
			default:
				t.Errorf("send: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()

	if sent.Load() != 1 {
		t.Errorf("successful sends = %d; want 1", sent.Load())
	}
	if conflicts.Load() != n-1 {
		t.Errorf("conflicts = %d; want %d", conflicts.Load(), n-1)
	}
	if got := f.balance(t, ada.WorkspaceID); got != 9 {
		t.Errorf("balance = %d; want 9", got)
	}
	if got := len(f.events(t, events.EnvelopeSent, e.ID)); got != 1 {
		t.Errorf("envelope.sent events = %d; want 1", got)
	}
}

func TestSendConcurrentEnvelopesShareTheLastCredit(t *testing.T) {
	f := newFixture(t, 1)
	ada := f.personal(t)
	a := f.draft(t, ada, EmailAll, signer("alice", 1))
	b := f.draft(t, ada, EmailAll, signer("bob", 1))

	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, id := range []string{a.ID, b.ID} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Send(context.Background(), ada, desktop, id)
		}()
	}
	wg.Wait()

	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
		} else if apperr.CodeOf(err) != apperr.InsufficientCredit {
			t.Errorf("send: %v; want success or insufficient credit", err)
		}
	}
	if succeeded != 1 {
		t.Errorf("successful sends = %d; want 1", succeeded)
	}
	if got := f.balance(t, ada.WorkspaceID); got != 0 {
		t.Errorf("balance = %d; want 0", got)
	}
}

func TestSendWithoutCreditsChangesNothing(t *testing.T) {
	f := newFixture(t, 0)
	ada := f.personal(t)
	e := f.draft(t, ada, EmailAll, signer("alice", 1))
	before := f.countItems(t)

	_, err := f.svc.Send(context.Background(), ada, desktop, e.ID)
	wantCode(t, err, apperr.InsufficientCredit, "insufficient_credits")

	if after := f.countItems(t); after != before {
		t.Errorf("items after refused send = %d; want %d", after, before)
	}
	got := f.get(t, ada, e.ID)
	if got.Status != StatusDraft || got.Version != e.Version+1 {
		t.Errorf("envelope after refused send: status %s version %d; want draft, %d", got.Status, got.Version, e.Version+1)
	}
	if got.Recipients[0].Status != RecipientPending {
		t.Errorf("recipient status = %s; want pending", got.Recipients[0].Status)
	}
	if _, ok := f.signingItemOf(t, e.ID, got.Recipients[0].ID); ok {
		t.Error("a refused send stored a signing token")
	}
	if n := len(f.events(t, events.EnvelopeSent, e.ID)); n != 0 {
		t.Errorf("envelope.sent events = %d; want 0", n)
	}
}

func TestSendNotReady(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	cases := []struct {
		name       string
		recipients []RecipientInput
		document   bool
		reason     string
	}{
		{"no document", []RecipientInput{signer("alice", 1)}, false, "no_documents"},
		{"no recipient", nil, true, "no_signers"},
		{"only cc", []RecipientInput{cc("carol", 1)}, true, "no_signers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := f.svc.Create(context.Background(), ada, desktop, CreateInput{Title: "T", Recipients: tc.recipients})
			if err != nil {
				t.Fatal(err)
			}
			if tc.document {
				if _, err := f.svc.AddDocument(context.Background(), ada, desktop, e.ID, "a.pdf", testPDF("a")); err != nil {
					t.Fatal(err)
				}
			}
			before := f.countItems(t)

			_, err = f.svc.Send(context.Background(), ada, desktop, e.ID)
			wantCode(t, err, apperr.Conflict, tc.reason)
			if after := f.countItems(t); after != before {
				t.Errorf("items = %d; want %d", after, before)
			}
		})
	}
	if got := f.balance(t, ada.WorkspaceID); got != 10 {
		t.Errorf("balance = %d; want 10", got)
	}
}

func TestSendFreeWhenCostIsZero(t *testing.T) {
	f := newFixture(t, 0)
	f.svc.cfg.SendCost = 0
	ada := f.personal(t)
	e := f.sent(t, ada, EmailAll, signer("alice", 1))
	if e.Status != StatusSent || e.CreditsSpent != 0 {
		t.Errorf("free send: status %s credits %d; want sent, 0", e.Status, e.CreditsSpent)
	}
}

func TestSendTwentyParallelSigners(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	var recipients []RecipientInput
	for i := range MaxRecipients {
		recipients = append(recipients, signer(string(rune('a'+i))+"-signer", 1))
	}
	e := f.sent(t, ada, EmailAll, recipients...)
	for _, r := range f.get(t, ada, e.ID).Recipients {
		if r.Status != RecipientActive {
			t.Errorf("recipient %s status = %s; want active", r.Name, r.Status)
		}
	}
}
