package creditalerts

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// step changes a wallet, runs the handler and checks the run's result and
// the number of low-balance events in the outbox afterwards.
type step struct {
	name       string
	change     func(t *testing.T, f *fixture, workspaceID string)
	want       Result
	wantEvents int
}

func runSteps(t *testing.T, f *fixture, workspaceID string, steps []step) {
	t.Helper()
	for _, s := range steps {
		f.clock.Advance(time.Minute)
		if s.change != nil {
			s.change(t, f, workspaceID)
		}
		if got := f.run(t); got != s.want {
			t.Errorf("%s: result = %+v; want %+v", s.name, got, s.want)
		}
		if got := len(f.lowBalanceEvents(t)); got != s.wantEvents {
			t.Errorf("%s: %d low-balance events; want %d", s.name, got, s.wantEvents)
		}
	}
}

func debitStep(n int64) func(*testing.T, *fixture, string) {
	return func(t *testing.T, f *fixture, ws string) { f.debit(t, ws, n) }
}

func creditStep(n int64) func(*testing.T, *fixture, string) {
	return func(t *testing.T, f *fixture, ws string) { f.credit(t, ws, n) }
}

func thresholdStep(n int64) func(*testing.T, *fixture, string) {
	return func(t *testing.T, f *fixture, ws string) {
		if _, err := f.billing.UpdateSettings(context.Background(), ws, n); err != nil {
			t.Fatalf("set threshold of %s to %d: %v", ws, n, err)
		}
	}
}

func TestHandleAlertsOncePerDrop(t *testing.T) {
	f := newFixture(t)
	ws := f.newWorkspace(t, ids.User) // 10 credits, threshold 5

	var sinces []time.Time
	recordSince := func(t *testing.T, f *fixture, ws string) {
		w := f.wallet(t, ws)
		if w.BelowThresholdSince == nil {
			t.Fatalf("wallet %+v has no below_threshold_since", w)
		}
		sinces = append(sinces, *w.BelowThresholdSince)
	}

	runSteps(t, f, ws, []step{
		{"above threshold", nil, Result{}, 0},
		{"drops to 4", func(t *testing.T, f *fixture, ws string) { f.debit(t, ws, 6); recordSince(t, f, ws) },
			Result{WalletsBelowThreshold: 1, AlertsRaised: 1}, 1},
		{"still low, unchanged", nil, Result{WalletsBelowThreshold: 1}, 1},
		{"still low, drops to 3", debitStep(1), Result{WalletsBelowThreshold: 1}, 1},
		{"topped up to the threshold", creditStep(2), Result{}, 1},
		{"drops to 4 again", func(t *testing.T, f *fixture, ws string) { f.debit(t, ws, 1); recordSince(t, f, ws) },
			Result{WalletsBelowThreshold: 1, AlertsRaised: 1}, 2},
		{"still low after the second alert", nil, Result{WalletsBelowThreshold: 1}, 2},
	})

	evs := f.lowBalanceEvents(t)
	if len(evs) != 2 || len(sinces) != 2 {
		t.Fatalf("%d events and %d drops; want 2 of each", len(evs), len(sinces))
	}
	if evs[0].ID > evs[1].ID {
		evs[0], evs[1] = evs[1], evs[0]
	}
	if sinces[0].Equal(sinces[1]) {
		t.Errorf("both drops have below_since %s; want different times", sinces[0])
	}
	for i, e := range evs {
		if e.Type != events.LowCreditBalance {
			t.Errorf("event %d type = %q; want %q", i, e.Type, events.LowCreditBalance)
		}
		if e.WorkspaceID != ws || e.Alert.WorkspaceID != ws {
			t.Errorf("event %d workspace = %q, data workspace_id = %q; want %q", i, e.WorkspaceID, e.Alert.WorkspaceID, ws)
		}
		if e.Alert.Balance != 4 {
			t.Errorf("event %d balance = %d; want 4", i, e.Alert.Balance)
		}
		if e.Alert.Threshold != 5 {
			t.Errorf("event %d threshold = %d; want 5", i, e.Alert.Threshold)
		}
		if !e.Alert.BelowSince.Equal(sinces[i]) {
			t.Errorf("event %d below_since = %s; want %s", i, e.Alert.BelowSince, sinces[i])
		}
	}
}

func TestHandleAlertsWhenThresholdRaised(t *testing.T) {
	f := newFixture(t)
	ws := f.newWorkspace(t, ids.User) // 10 credits, threshold 5

	runSteps(t, f, ws, []step{
		{"threshold raised to 20", thresholdStep(20), Result{WalletsBelowThreshold: 1, AlertsRaised: 1}, 1},
		{"threshold raised to 30 in the same drop", thresholdStep(30), Result{WalletsBelowThreshold: 1}, 1},
		{"threshold lowered to the balance", thresholdStep(10), Result{}, 1},
		{"threshold raised to 20 again", thresholdStep(20), Result{WalletsBelowThreshold: 1, AlertsRaised: 1}, 2},
	})

	for _, e := range f.lowBalanceEvents(t) {
		if e.Alert.Balance != 10 || e.Alert.Threshold != 20 {
			t.Errorf("event %s balance, threshold = %d, %d; want 10, 20", e.ID, e.Alert.Balance, e.Alert.Threshold)
		}
	}
}

func TestHandleConcurrentRuns(t *testing.T) {
	f := newFixture(t)
	var workspaces []string
	for range 5 {
		ws := f.newWorkspace(t, ids.User)
		f.debit(t, ws, 6)
		workspaces = append(workspaces, ws)
	}

	const runs = 8
	results := make([]Result, runs)
	errs := make([]error, runs)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			<-start
			results[i], errs[i] = f.handler.Handle(context.Background(), scheduleEvent(f.clock.Now()))
		})
	}
	close(start)
	wg.Wait()

	raised := 0
	for i := range runs {
		if errs[i] != nil {
			t.Errorf("run %d: %v", i, errs[i])
		}
		if results[i].WalletsBelowThreshold != len(workspaces) {
			t.Errorf("run %d found %d wallets below the threshold; want %d", i, results[i].WalletsBelowThreshold, len(workspaces))
		}
		raised += results[i].AlertsRaised
	}
	if raised != len(workspaces) {
		t.Errorf("runs raised %d alerts in total; want %d", raised, len(workspaces))
	}

	perWorkspace := eventsByWorkspace(f.lowBalanceEvents(t))
	for _, ws := range workspaces {
		if perWorkspace[ws] != 1 {
			t.Errorf("workspace %s has %d low-balance events; want 1", ws, perWorkspace[ws])
		}
	}

	lines := emfLines(t, f.out.String())
	if len(lines) != runs {
		t.Fatalf("%d metrics lines; want %d", len(lines), runs)
	}
	metricRaised := 0
	for _, l := range lines {
		metricRaised += int(l[MetricAlertsRaised].(float64))
	}
	if metricRaised != len(workspaces) {
		t.Errorf("metrics report %d alerts raised in total; want %d", metricRaised, len(workspaces))
	}
}

// TestAlertConcurrentTransactions calls alert directly, past the check of
// the alert items that Handle makes first, so every caller reaches the
// transaction.
func TestAlertConcurrentTransactions(t *testing.T) {
	f := newFixture(t)
	ws := f.newWorkspace(t, ids.User)
	f.debit(t, ws, 6)
	w := f.walletRecord(t, ws)

	const callers = 8
	raised := make([]bool, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			raised[i], errs[i] = f.handler.alert(context.Background(), w)
		})
	}
	close(start)
	wg.Wait()

	n := 0
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		}
		if raised[i] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d callers raised the alert; want 1", n)
	}
	if got := len(f.lowBalanceEvents(t)); got != 1 {
		t.Errorf("%d low-balance events; want 1", got)
	}
}

// TestAlertAfterWalletChanged reads a low wallet, changes it through
// billing and then alerts with the stale read, as a run does when a write
// lands between its index query and its transaction.
func TestAlertAfterWalletChanged(t *testing.T) {
	cases := []struct {
		name          string
		change        func(t *testing.T, f *fixture, ws string)
		wantRaised    bool
		wantBalance   int64
		wantThreshold int64
		wantNewDrop   bool
	}{
		{"topped up", creditStep(2), false, 0, 0, false},
		{"balance lower in the same drop", debitStep(1), true, 3, 5, false},
		{"threshold raised in the same drop", thresholdStep(8), true, 4, 8, false},
		{"topped up and dropped again", func(t *testing.T, f *fixture, ws string) {
			f.credit(t, ws, 2)
			f.clock.Advance(time.Minute)
			f.debit(t, ws, 3)
		}, true, 3, 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ws := f.newWorkspace(t, ids.User)
			f.debit(t, ws, 6) // 4 credits, threshold 5
			stale := f.walletRecord(t, ws)

			f.clock.Advance(time.Minute)
			tc.change(t, f, ws)
			raised, err := f.handler.alert(context.Background(), stale)
			if err != nil {
				t.Fatal(err)
			}
			if raised != tc.wantRaised {
				t.Errorf("raised = %t; want %t", raised, tc.wantRaised)
			}

			evs := f.lowBalanceEvents(t)
			if !tc.wantRaised {
				if len(evs) != 0 {
					t.Errorf("%d low-balance events; want 0", len(evs))
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d low-balance events; want 1", len(evs))
			}
			got := evs[0].Alert
			if got.Balance != tc.wantBalance {
				t.Errorf("event balance = %d; want %d", got.Balance, tc.wantBalance)
			}
			if got.Threshold != tc.wantThreshold {
				t.Errorf("event threshold = %d; want %d", got.Threshold, tc.wantThreshold)
			}
			current := f.wallet(t, ws).BelowThresholdSince
			if current == nil || !got.BelowSince.Equal(*current) {
				t.Errorf("event below_since = %s; want the wallet's %v", got.BelowSince, current)
			}
			if newDrop := got.BelowSince.Format(time.RFC3339Nano) != stale.BelowSince; newDrop != tc.wantNewDrop {
				t.Errorf("event below_since %s differs from the stale read's %s: %t; want %t",
					got.BelowSince.Format(time.RFC3339Nano), stale.BelowSince, newDrop, tc.wantNewDrop)
			}
		})
	}
}

func TestHandleOrganizationWallet(t *testing.T) {
	f := newFixture(t)
	org := f.newWorkspace(t, ids.Organization)
	f.debit(t, org, 6)

	if got, want := f.run(t), (Result{WalletsBelowThreshold: 1, AlertsRaised: 1}); got != want {
		t.Errorf("result = %+v; want %+v", got, want)
	}
	evs := f.lowBalanceEvents(t)
	if len(evs) != 1 {
		t.Fatalf("%d low-balance events; want 1", len(evs))
	}
	if !strings.HasPrefix(org, ids.Organization+"_") {
		t.Fatalf("workspace id %q is not an organization id", org)
	}
	if evs[0].WorkspaceID != org {
		t.Errorf("event workspace_id = %q; want the organization %q", evs[0].WorkspaceID, org)
	}
	if evs[0].Alert.WorkspaceID != org {
		t.Errorf("event data workspace_id = %q; want the organization %q", evs[0].Alert.WorkspaceID, org)
	}
}

func TestHandleZeroThresholdNeverAlerts(t *testing.T) {
	f := newFixture(t)
	zero := f.newWorkspace(t, ids.User)
	thresholdStep(0)(t, f, zero)
	f.debit(t, zero, 10)

	w := f.wallet(t, zero)
	if w.Balance != 0 || w.LowBalanceThreshold != 0 {
		t.Fatalf("wallet balance, threshold = %d, %d; want 0, 0", w.Balance, w.LowBalanceThreshold)
	}
	if w.BelowThreshold || w.BelowThresholdSince != nil {
		t.Errorf("wallet with balance 0 and threshold 0 is below its threshold: %+v", w)
	}
	_, err := f.billing.DebitWith(context.Background(), zero, 1, "envelope_send", "env_test")
	if ae := apperr.As(err); ae == nil || ae.Code != apperr.InsufficientCredit {
		t.Fatalf("debit from an empty wallet: err = %v; want an insufficient credit error", err)
	}

	// A wallet below its default threshold alerts in the same run, so the
	// run does alert when there is a reason to.
	low := f.newWorkspace(t, ids.User)
	f.debit(t, low, 6)

	if got, want := f.run(t), (Result{WalletsBelowThreshold: 1, AlertsRaised: 1}); got != want {
		t.Errorf("result = %+v; want %+v", got, want)
	}
	perWorkspace := eventsByWorkspace(f.lowBalanceEvents(t))
	if perWorkspace[zero] != 0 {
		t.Errorf("wallet with threshold 0 has %d low-balance events; want 0", perWorkspace[zero])
	}
	if perWorkspace[low] != 1 {
		t.Errorf("wallet below its threshold has %d low-balance events; want 1", perWorkspace[low])
	}
}

func TestHandlePaginates(t *testing.T) {
	f := newFixture(t)
	f.handler.pageSize = 2
	var low []string
	for range 5 {
		ws := f.newWorkspace(t, ids.User)
		f.debit(t, ws, 6)
		low = append(low, ws)
	}
	for range 2 {
		f.newWorkspace(t, ids.User)
	}

	if got, want := f.run(t), (Result{WalletsBelowThreshold: 5, AlertsRaised: 5}); got != want {
		t.Errorf("first run result = %+v; want %+v", got, want)
	}
	perWorkspace := eventsByWorkspace(f.lowBalanceEvents(t))
	for _, ws := range low {
		if perWorkspace[ws] != 1 {
			t.Errorf("workspace %s has %d low-balance events; want 1", ws, perWorkspace[ws])
		}
	}
	if len(perWorkspace) != len(low) {
		t.Errorf("events for %d workspaces; want %d", len(perWorkspace), len(low))
	}

	if got, want := f.run(t), (Result{WalletsBelowThreshold: 5}); got != want {
		t.Errorf("second run result = %+v; want %+v", got, want)
	}
}

func TestHandleWalletWithoutBelowSince(t *testing.T) {
	f := newFixture(t)
	good := f.newWorkspace(t, ids.User)
	f.debit(t, good, 6)

	// A wallet item in the low-balance index without below_since, which
	// billing never writes, stands for a damaged item.
	bad := ids.NewAt(ids.User, f.clock.Now())
	key := store.WalletKey(bad)
	_, err := f.store.DB().PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: &f.env.TableName,
		Item: map[string]types.AttributeValue{
			"PK": str(key.PK), "SK": str(key.SK), "entity": str("wallet"),
			"GSI2PK": str(store.LowBalanceGSI2PK), "GSI2SK": str(bad),
			"workspace_id":          str(bad),
			"balance":               &types.AttributeValueMemberN{Value: "1"},
			"low_balance_threshold": &types.AttributeValueMemberN{Value: "5"},
			"version":               &types.AttributeValueMemberN{Value: "1"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	res, err := f.handler.Handle(context.Background(), scheduleEvent(f.clock.Now()))
	if err == nil {
		t.Error("Handle returned no error for a wallet it could not alert")
	}
	if want := (Result{WalletsBelowThreshold: 2, AlertsRaised: 1, Failed: 1}); res != want {
		t.Errorf("result = %+v; want %+v", res, want)
	}
	perWorkspace := eventsByWorkspace(f.lowBalanceEvents(t))
	if perWorkspace[good] != 1 {
		t.Errorf("intact wallet has %d low-balance events; want 1", perWorkspace[good])
	}
	if perWorkspace[bad] != 0 {
		t.Errorf("damaged wallet has %d low-balance events; want 0", perWorkspace[bad])
	}
}

// walletRecord reads the wallet item the way the handler's index query
// decodes it.
func (f *fixture) walletRecord(t *testing.T, workspaceID string) walletRecord {
	t.Helper()
	var w walletRecord
	if err := f.store.Get(context.Background(), store.WalletKey(workspaceID), &w); err != nil {
		t.Fatal(err)
	}
	if !w.below() || w.BelowSince == "" {
		t.Fatalf("wallet %+v is not below its threshold", w)
	}
	return w
}
