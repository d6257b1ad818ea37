package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestPurchaseWithTestProvider(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()

	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}

	if p.Status != StatusCompleted {
		t.Errorf("status = %q; want %q", p.Status, StatusCompleted)
	}
	if !p.Test || p.Provider != ProviderTest {
		t.Errorf("provider = %q, test = %v; want a test purchase of the test provider", p.Provider, p.Test)
	}
	if p.Credits != 50 || p.Amount != 2500 || p.Currency != "USD" || p.PackID != "starter" {
		t.Errorf("purchase = %+v; want the starter pack, 50 credits for 2500 USD", p)
	}
	if p.InvoiceNumber != "INV-000001" {
		t.Errorf("invoice number = %q; want INV-000001", p.InvoiceNumber)
	}
	if p.CompletedAt == nil || !p.CompletedAt.Equal(f.clock.Now()) {
		t.Errorf("completed_at = %v; want %v", p.CompletedAt, f.clock.Now())
	}
	if got := f.balance(t, ws); got != 60 {
		t.Errorf("balance = %d; want 10 + 50", got)
	}

	entries := f.ledger(t, ws)
	var purchaseEntries []ledgerItem
	for _, e := range entries {
		if e.Reason == ReasonPurchase {
			purchaseEntries = append(purchaseEntries, e)
		}
	}
	if len(purchaseEntries) != 1 || purchaseEntries[0].Reference != p.ID || purchaseEntries[0].Amount != 50 || purchaseEntries[0].BalanceAfter != 60 {
		t.Errorf("purchase ledger entries = %+v; want one +50 entry for %s with balance_after 60", purchaseEntries, p.ID)
	}
	if got := ledgerSum(entries); got != 60 {
		t.Errorf("ledger sum = %d; want 60", got)
	}

	evts := f.eventsOfType(t, events.PurchaseCompleted)
	if len(evts) != 1 {
		t.Fatalf("%d %s events; want 1", len(evts), events.PurchaseCompleted)
	}
	data, _ := stringAttr(evts[0], "data")
	var payload map[string]any
	if err := json.Unmarshal([]byte(data), &payload); err != nil {
		t.Fatal(err)
	}
	if payload["purchase_id"] != p.ID || payload["invoice_number"] != "INV-000001" || payload["credits"] != float64(50) || payload["balance"] != float64(60) {
		t.Errorf("event data = %v; want the purchase id, invoice number, 50 credits and balance 60", payload)
	}
	if ws2, _ := stringAttr(evts[0], "workspace_id"); ws2 != ws {
		t.Errorf("event workspace_id = %q; want %q", ws2, ws)
	}

	got, err := f.svc.GetPurchase(ctx, ws, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusCompleted || got.InvoiceNumber != p.InvoiceNumber {
		t.Errorf("GetPurchase = %+v; want the completed purchase", got)
	}
}

func TestCreatePurchaseUnknownPack(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	before := f.countItems(t)

	_, err := f.svc.CreatePurchase(context.Background(), ws, ws, "platinum")

	ae := wantCode(t, err, apperr.Invalid, "unknown_pack")
	if ae.Field != "pack_id" {
		t.Errorf("field = %q; want pack_id", ae.Field)
	}
	if got := f.countItems(t); got != before {
		t.Errorf("table has %d items after the rejected purchase; want %d", got, before)
	}
}

func TestGetPurchaseOfAnotherWorkspace(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ada := f.newUser(t, "Ada Lovelace", "ada@example.com")
	bob := f.newUser(t, "Bob Babbage", "bob@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ada, ada, "starter")
	if err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{p.ID, "pur_01jf3k8x2q7m9v4n5b6c7d8e9f", "not-an-id"} {
		_, err := f.svc.GetPurchase(ctx, bob, id)
		wantCode(t, err, apperr.NotFound, "purchase_not_found")
		_, err = f.svc.GetInvoice(ctx, bob, id)
		wantCode(t, err, apperr.NotFound, "purchase_not_found")
	}
}

func TestInvoiceNumbersHaveNoGaps(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	workspaces := []string{
		f.newUser(t, "Ada Lovelace", "ada@example.com"),
		f.newUser(t, "Bob Babbage", "bob@example.com"),
		f.newOrg(t, "Analytical Engines Ltd"),
	}
	buyer := workspaces[0]
	const perWorkspace = 4

	var wg sync.WaitGroup
	var mu sync.Mutex
	var numbers []string
	for _, ws := range workspaces {
		for range perWorkspace {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := f.svc.CreatePurchase(context.Background(), ws, buyer, "starter")
				if err != nil {
					t.Errorf("purchase in %s: %v", ws, err)
					return
				}
				mu.Lock()
				numbers = append(numbers, p.InvoiceNumber)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()

	sort.Strings(numbers)
	total := len(workspaces) * perWorkspace
	if len(numbers) != total {
		t.Fatalf("%d purchases completed; want %d", len(numbers), total)
	}
	for i, n := range numbers {
		if want := fmt.Sprintf("INV-%06d", i+1); n != want {
			t.Errorf("invoice number %d = %q; want %q (numbers: %v)", i, n, want, numbers)
		}
	}
	for _, ws := range workspaces {
		if got := f.balance(t, ws); got != 10+perWorkspace*50 {
			t.Errorf("balance of %s = %d; want %d", ws, got, 10+perWorkspace*50)
		}
		if got := ledgerSum(f.ledger(t, ws)); got != 10+perWorkspace*50 {
			t.Errorf("ledger sum of %s = %d; want %d", ws, got, 10+perWorkspace*50)
		}
	}
	var counter counterItem
	if err := f.store.Get(context.Background(), store.InvoiceCounterKey(f.cfg.Seller.ID), &counter); err != nil {
		t.Fatal(err)
	}
	if counter.Last != int64(total) {
		t.Errorf("counter = %d; want %d", counter.Last, total)
	}
}

func TestListPurchasesNewestFirst(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	var created []string
	for _, pack := range []string{"starter", "team", "business"} {
		f.clock.Advance(time.Second)
		p, err := f.svc.CreatePurchase(ctx, ws, ws, pack)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, p.ID)
	}

	first, next, err := f.svc.ListPurchases(ctx, ws, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].ID != created[2] || first[1].ID != created[1] || next == "" {
		t.Fatalf("first page = %v, next %q; want the two newest and a cursor", purchaseIDs(first), next)
	}
	second, next, err := f.svc.ListPurchases(ctx, ws, 2, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 || second[0].ID != created[0] || next != "" {
		t.Errorf("second page = %v, next %q; want the oldest and no cursor", purchaseIDs(second), next)
	}
}

func purchaseIDs(ps []Purchase) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestPurchaseCreatesMissingWallet(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	buyer := f.newUser(t, "Ada Lovelace", "ada@example.com")
	org := "org_01jf3k8x2q7m9v4n5b6c7d8e9f"
	profile, err := f.store.PutNew(map[string]any{"PK": store.OrgPK(org), "SK": "PROFILE", "entity": "organization", "name": "Old Org Ltd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Transact(context.Background(), profile); err != nil {
		t.Fatal(err)
	}

	if _, err := f.svc.CreatePurchase(context.Background(), org, buyer, "starter"); err != nil {
		t.Fatal(err)
	}

	if got := f.balance(t, org); got != 50 {
		t.Errorf("balance = %d; want the 50 purchased credits", got)
	}
	if got := ledgerSum(f.ledger(t, org)); got != 50 {
		t.Errorf("ledger sum = %d; want 50", got)
	}
	if got := numberAttr(t, f.rawWallet(t, org), "version"); got != 1 {
		t.Errorf("wallet version = %d; want 1 for a wallet created by the purchase", got)
	}
	checkLowBalance(t, f, org, false)
}
