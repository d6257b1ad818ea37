package billing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestNewWalletItemsStartingGrant(t *testing.T) {
	tests := []struct {
		name        string
		grant       int64
		threshold   int64
		wantEntries int
		wantLow     bool
	}{
		{name: "grant above threshold", grant: 10, threshold: 5, wantEntries: 1, wantLow: false},
		{name: "grant equal to threshold", grant: 5, threshold: 5, wantEntries: 1, wantLow: false},
		{name: "grant below threshold", grant: 3, threshold: 5, wantEntries: 1, wantLow: true},
		{name: "no grant", grant: 0, threshold: 5, wantEntries: 0, wantLow: true},
		{name: "no grant no threshold", grant: 0, threshold: 0, wantEntries: 0, wantLow: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.StartingCredits, cfg.LowBalanceThreshold = tt.grant, tt.threshold
			f := newFixture(t, cfg, nil)
			ws := f.newUser(t, "Ada Lovelace", "ada@example.com")

			w, err := f.svc.GetWallet(context.Background(), ws)
			if err != nil {
				t.Fatal(err)
			}
			if w.Balance != tt.grant {
				t.Errorf("balance = %d; want %d", w.Balance, tt.grant)
			}
			if w.LowBalanceThreshold != tt.threshold {
				t.Errorf("threshold = %d; want %d", w.LowBalanceThreshold, tt.threshold)
			}
			entries := f.ledger(t, ws)
			if len(entries) != tt.wantEntries {
				t.Fatalf("ledger has %d entries; want %d", len(entries), tt.wantEntries)
			}
			if len(entries) == 1 && (entries[0].Reason != ReasonStartingGrant || entries[0].BalanceAfter != tt.grant) {
				t.Errorf("ledger entry = %+v; want a starting grant with balance_after %d", entries[0], tt.grant)
			}
			if got := ledgerSum(entries); got != w.Balance {
				t.Errorf("ledger sum = %d; want the balance %d", got, w.Balance)
			}
			checkLowBalance(t, f, ws, tt.wantLow)
		})
	}
}

func TestNewWalletItemsTwiceFails(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")

	items, err := f.svc.NewWalletItems(ws, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = f.store.Transact(context.Background(), items...)
	if !store.FailedAt(err, 0) {
		t.Fatalf("second wallet for %s: err = %v; want the wallet put's condition to fail", ws, err)
	}
	if got := f.balance(t, ws); got != 10 {
		t.Errorf("balance = %d; want the first grant of 10 only", got)
	}
}

func TestNewWalletItemsRejectsBadWorkspace(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	if _, err := f.svc.NewWalletItems("key_01jf3k8x2q7m9v4n5b6c7d8e9f", f.clock.Now()); err == nil {
		t.Fatal("NewWalletItems accepted an id that is not a workspace")
	}
}

// checkLowBalance checks that the wallet's GSI2 keys, and its listing in
// GSI2, are present exactly when want is true.
func checkLowBalance(t *testing.T, f *fixture, workspaceID string, want bool) {
	t.Helper()
	item := f.rawWallet(t, workspaceID)
	pk, hasPK := stringAttr(item, "GSI2PK")
	sk, hasSK := stringAttr(item, "GSI2SK")
	_, hasSince := stringAttr(item, "below_since")
	balance, threshold := numberAttr(t, item, "balance"), numberAttr(t, item, "low_balance_threshold")

	if want != (balance < threshold) {
		t.Errorf("balance %d, threshold %d: test expects below=%v", balance, threshold, want)
	}
	if want {
		if pk != store.LowBalanceGSI2PK || sk != workspaceID {
			t.Errorf("balance %d < threshold %d: GSI2PK/GSI2SK = %q/%q; want %q/%q", balance, threshold, pk, sk, store.LowBalanceGSI2PK, workspaceID)
		}
		if !hasSince {
			t.Errorf("balance %d < threshold %d: below_since is missing", balance, threshold)
		}
	} else {
		if hasPK || hasSK {
			t.Errorf("balance %d >= threshold %d: GSI2PK/GSI2SK = %q/%q; want both absent", balance, threshold, pk, sk)
		}
		if hasSince {
			t.Errorf("balance %d >= threshold %d: below_since is present", balance, threshold)
		}
	}
	if got := f.lowBalanceWorkspaces(t)[workspaceID]; got != want {
		t.Errorf("GSI2 %s lists %s: %v; want %v", store.LowBalanceGSI2PK, workspaceID, got, want)
	}
}

func TestParallelDebitsSpendEachCreditOnce(t *testing.T) {
	f := newFixture(t, testConfig(), nil) // starting grant 10, threshold 5
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")

	const debits = 50
	var wg sync.WaitGroup
	errs := make([]error, debits)
	for i := range debits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.DebitWith(context.Background(), ws, 1, "envelope_send", "env_test")
		}()
	}
	wg.Wait()

	succeeded := 0
	for i, err := range errs {
		if err == nil {
			succeeded++
			continue
		}
		if ae := apperr.As(err); ae == nil || ae.ReasonCode() != "insufficient_credits" {
			t.Errorf("debit %d: error = %v; want insufficient_credits", i, err)
		}
	}
	if succeeded != 10 {
		t.Errorf("%d debits succeeded; want exactly 10", succeeded)
	}
	if got := f.balance(t, ws); got != 0 {
		t.Errorf("balance = %d; want 0", got)
	}
	entries := f.ledger(t, ws)
	if len(entries) != 11 {
		t.Errorf("ledger has %d entries; want the grant and 10 debits", len(entries))
	}
	if got := ledgerSum(entries); got != 0 {
		t.Errorf("ledger sum = %d; want the balance 0", got)
	}
	seen := map[int64]bool{}
	for _, e := range entries {
		if seen[e.BalanceAfter] {
			t.Errorf("two ledger entries have balance_after %d", e.BalanceAfter)
		}
		seen[e.BalanceAfter] = true
	}
	checkLowBalance(t, f, ws, true)
}

func TestDebitWithMoreThanBalance(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	before := f.countItems(t)

	_, err := f.svc.DebitWith(context.Background(), ws, 11, "envelope_send", "env_test")

	ae := wantCode(t, err, apperr.InsufficientCredit, "insufficient_credits")
	if ae.Extra["balance"] != int64(10) || ae.Extra["cost"] != int64(11) {
		t.Errorf("Extra = %v; want balance 10 and cost 11", ae.Extra)
	}
	if got := f.countItems(t); got != before {
		t.Errorf("table has %d items after the rejected debit; want %d", got, before)
	}
	if got := f.balance(t, ws); got != 10 {
		t.Errorf("balance = %d; want 10", got)
	}
}

func TestDebitWithoutWallet(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	_, err := f.svc.DebitWith(context.Background(), "usr_01jf3k8x2q7m9v4n5b6c7d8e9f", 1, "envelope_send", "env_test")
	ae := wantCode(t, err, apperr.InsufficientCredit, "insufficient_credits")
	if ae.Extra["balance"] != int64(0) {
		t.Errorf("Extra = %v; want balance 0", ae.Extra)
	}
}

// marker returns a transaction item that creates an item standing for the
// caller's own state change, such as an envelope becoming sent.
func (f *fixture) marker(t *testing.T, pk string) types.TransactWriteItem {
	t.Helper()
	it, err := f.store.PutNew(store.Item{PK: pk, SK: "MARKER", Entity: "marker"})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestDebitItemsJoinCallerTransaction(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()

	d, err := f.svc.DebitItems(ctx, ws, 3, "envelope_send", "env_1")
	if err != nil {
		t.Fatal(err)
	}
	items := append([]types.TransactWriteItem{f.marker(t, "MARKER#1")}, d.Items...)
	if err := d.Err(f.store.Transact(ctx, items...), 1); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := f.balance(t, ws); got != 7 {
		t.Errorf("balance = %d; want 7", got)
	}
	if d.Wallet.Balance != 7 || d.Entry.BalanceAfter != 7 || d.Entry.Amount != -3 {
		t.Errorf("debit = wallet %d, entry %+v; want balance 7 and amount -3", d.Wallet.Balance, d.Entry)
	}

	// The caller's own item fails: the error is returned unchanged, and
	// the wallet is not charged.
	d, err = f.svc.DebitItems(ctx, ws, 3, "envelope_send", "env_1")
	if err != nil {
		t.Fatal(err)
	}
	items = append([]types.TransactWriteItem{f.marker(t, "MARKER#1")}, d.Items...)
	err = d.Err(f.store.Transact(ctx, items...), 1)
	if !store.FailedAt(err, 0) {
		t.Errorf("err = %v; want the caller's item 0 to have failed", err)
	}
	if got := f.balance(t, ws); got != 7 {
		t.Errorf("balance = %d after the failed transaction; want 7", got)
	}
}

func TestDebitErrAfterWalletChanged(t *testing.T) {
	tests := []struct {
		name       string
		cost       int64
		wantReason string
	}{
		// Balance 10: the first debit leaves enough for the second, which
		// must be prepared again.
		{name: "enough left", cost: 4, wantReason: ""},
		// The first debit leaves 4, less than the second's cost of 6.
		{name: "too little left", cost: 6, wantReason: "insufficient_credits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig(), nil)
			ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
			ctx := context.Background()

			first, err := f.svc.DebitItems(ctx, ws, tt.cost, "envelope_send", "env_1")
			if err != nil {
				t.Fatal(err)
			}
			second, err := f.svc.DebitItems(ctx, ws, tt.cost, "envelope_send", "env_2")
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Err(f.store.Transact(ctx, first.Items...), 0); err != nil {
				t.Fatal(err)
			}
			err = second.Err(f.store.Transact(ctx, second.Items...), 0)

			if tt.wantReason == "" {
				if !errors.Is(err, ErrWalletChanged) {
					t.Fatalf("err = %v; want ErrWalletChanged", err)
				}
			} else {
				ae := wantCode(t, err, apperr.InsufficientCredit, tt.wantReason)
				if ae.Extra["balance"] != 10-tt.cost || ae.Extra["cost"] != tt.cost {
					t.Errorf("Extra = %v; want balance %d and cost %d", ae.Extra, 10-tt.cost, tt.cost)
				}
			}
			if got := f.balance(t, ws); got != 10-tt.cost {
				t.Errorf("balance = %d; want %d", got, 10-tt.cost)
			}
		})
	}
}

func TestLowBalanceIndexFollowsEveryWrite(t *testing.T) {
	f := newFixture(t, testConfig(), nil) // starting grant 10, threshold 5
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()

	debit := func(cost int64) func(t *testing.T) {
		return func(t *testing.T) {
			if _, err := f.svc.DebitWith(ctx, ws, cost, "envelope_send", "env_test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	threshold := func(n int64) func(t *testing.T) {
		return func(t *testing.T) {
			if _, err := f.svc.UpdateSettings(ctx, ws, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	purchase := func(t *testing.T) {
		if _, err := f.svc.CreatePurchase(ctx, ws, ws, "starter"); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name    string
		do      func(t *testing.T)
		balance int64
		low     bool
	}{
		{"debit to 6 of threshold 5", debit(4), 6, false},
		{"debit to 5, equal to threshold", debit(1), 5, false},
		{"debit to 4, below threshold", debit(1), 4, true},
		{"debit to 3, still below", debit(1), 3, true},
		{"threshold lowered to 3", threshold(3), 3, false},
		{"threshold raised to 4", threshold(4), 3, true},
		{"threshold lowered to 0", threshold(0), 3, false},
		{"threshold raised to 60", threshold(60), 3, true},
		{"purchase of 50 credits, still below 60", purchase, 53, true},
		{"threshold lowered to 53", threshold(53), 53, false},
		{"debit to 52", debit(1), 52, true},
		{"purchase of 50 credits", purchase, 102, false},
	}
	for _, step := range steps {
		f.clock.Advance(time.Minute)
		step.do(t)
		if got := f.balance(t, ws); got != step.balance {
			t.Fatalf("after %s: balance = %d; want %d", step.name, got, step.balance)
		}
		t.Run(step.name, func(t *testing.T) { checkLowBalance(t, f, ws, step.low) })
	}
	if got := ledgerSum(f.ledger(t, ws)); got != 102 {
		t.Errorf("ledger sum = %d; want the balance 102", got)
	}
}

func TestBelowSinceKeptWhileBelow(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()

	if _, err := f.svc.DebitWith(ctx, ws, 6, "envelope_send", "env_1"); err != nil {
		t.Fatal(err)
	}
	dropped, err := f.svc.GetWallet(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if dropped.BelowThresholdSince == nil || !dropped.BelowThresholdSince.Equal(f.clock.Now()) {
		t.Fatalf("below_threshold_since = %v; want %v", dropped.BelowThresholdSince, f.clock.Now())
	}

	f.clock.Advance(time.Hour)
	if _, err := f.svc.DebitWith(ctx, ws, 1, "envelope_send", "env_2"); err != nil {
		t.Fatal(err)
	}
	still, err := f.svc.GetWallet(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if still.BelowThresholdSince == nil || !still.BelowThresholdSince.Equal(*dropped.BelowThresholdSince) {
		t.Errorf("below_threshold_since = %v after a second debit; want the first drop %v", still.BelowThresholdSince, dropped.BelowThresholdSince)
	}
}

func TestUpdateSettingsRejectsBadThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold int64
	}{
		{"negative", -1},
		{"too large", maxCredits + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig(), nil)
			ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
			before := f.rawWallet(t, ws)

			_, err := f.svc.UpdateSettings(context.Background(), ws, tt.threshold)

			wantCode(t, err, apperr.Invalid, "invalid_threshold")
			after := f.rawWallet(t, ws)
			if numberAttr(t, after, "low_balance_threshold") != 5 || numberAttr(t, after, "version") != numberAttr(t, before, "version") {
				t.Errorf("wallet changed after a rejected threshold: %v", after)
			}
		})
	}
}

func TestUpdateSettingsCreatesMissingWallet(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := "org_01jf3k8x2q7m9v4n5b6c7d8e9f"

	w, err := f.svc.UpdateSettings(context.Background(), ws, 2)
	if err != nil {
		t.Fatal(err)
	}
	if w.Balance != 0 || w.LowBalanceThreshold != 2 || !w.BelowThreshold {
		t.Errorf("wallet = %+v; want balance 0 below threshold 2", w)
	}
	checkLowBalance(t, f, ws, true)
}

func TestCreditAddsLedgerEntry(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")

	entry, err := f.svc.Credit(context.Background(), ws, 15, "support_grant", "ticket-42")
	if err != nil {
		t.Fatal(err)
	}
	if entry.Amount != 15 || entry.BalanceAfter != 25 || entry.Reason != "support_grant" || entry.Reference != "ticket-42" {
		t.Errorf("entry = %+v; want +15 to 25 for support_grant ticket-42", entry)
	}
	if got := ledgerSum(f.ledger(t, ws)); got != 25 {
		t.Errorf("ledger sum = %d; want 25", got)
	}
}

func TestSignupCreatesWallet(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	cfg := accounts.DefaultConfig()
	cfg.Password = accounts.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	acc, err := accounts.NewService(f.store, cfg, f.clock.Now, f.svc.NewWalletItems)
	if err != nil {
		t.Fatal(err)
	}

	user, _, err := acc.Signup(context.Background(), accounts.SignupInput{Name: "Ada Lovelace", Email: "ada@example.com", Password: "a long enough password"},
		accounts.Client{IP: "203.0.113.10", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}

	if got := f.balance(t, user.ID); got != 10 {
		t.Errorf("balance = %d; want the starting grant of 10", got)
	}
	entries := f.ledger(t, user.ID)
	if len(entries) != 1 || entries[0].Reason != ReasonStartingGrant {
		t.Errorf("ledger = %+v; want one starting grant", entries)
	}
}
