package creditalerts

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack"
)

// emfLine is an EMF document as CloudWatch Logs reads it.
type emfLine struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

// checkEMF checks that doc is an EMF document in the namespace whose
// metrics are exactly want, each with unit Count, and whose declared
// dimensions and metrics are all top-level members with the values in
// want.
func checkEMF(t *testing.T, doc map[string]any, wantMillis int64, want map[string]int) {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var line emfLine
	if err := json.Unmarshal(raw, &line); err != nil {
		t.Fatal(err)
	}

	if line.AWS.Timestamp != wantMillis {
		t.Errorf("_aws.Timestamp = %d; want %d", line.AWS.Timestamp, wantMillis)
	}
	if len(line.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("_aws.CloudWatchMetrics has %d directives; want 1", len(line.AWS.CloudWatchMetrics))
	}
	dir := line.AWS.CloudWatchMetrics[0]
	if dir.Namespace != "SignSecure" {
		t.Errorf("namespace = %q; want SignSecure", dir.Namespace)
	}
	if len(dir.Dimensions) != 1 || !slices.Equal(dir.Dimensions[0], []string{"Function"}) {
		t.Errorf("dimensions = %v; want [[Function]]", dir.Dimensions)
	}
	if doc["Function"] != defaultFunctionName {
		t.Errorf("Function = %v; want %q", doc["Function"], defaultFunctionName)
	}

	var names []string
	for _, m := range dir.Metrics {
		names = append(names, m.Name)
		if m.Unit != "Count" {
			t.Errorf("metric %s unit = %q; want Count", m.Name, m.Unit)
		}
		wantValue, ok := want[m.Name]
		if !ok {
			t.Errorf("metric %s is declared; want only %v", m.Name, want)
			continue
		}
		if got, ok := doc[m.Name].(float64); !ok || int(got) != wantValue {
			t.Errorf("member %s = %v; want %d", m.Name, doc[m.Name], wantValue)
		}
	}
	if len(names) != len(want) {
		t.Errorf("metrics declared = %v; want %d metrics %v", names, len(want), want)
	}
}

func TestHandleMetricsLine(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		ws := f.newWorkspace(t, ids.User)
		f.debit(t, ws, 6)
	}
	f.newWorkspace(t, ids.User) // above its threshold

	f.run(t)
	first := f.clock.Now().UnixMilli()
	f.clock.Advance(5 * time.Minute)
	f.run(t)
	second := f.clock.Now().UnixMilli()

	if n := strings.Count(f.out.String(), "\n"); n != 2 {
		t.Fatalf("output has %d lines; want 2:\n%s", n, f.out.String())
	}
	lines := emfLines(t, f.out.String())
	checkEMF(t, lines[0], first, map[string]int{MetricWalletsBelowThreshold: 3, MetricAlertsRaised: 3})
	checkEMF(t, lines[1], second, map[string]int{MetricWalletsBelowThreshold: 3, MetricAlertsRaised: 0})
}

func TestHandleListingFailure(t *testing.T) {
	f := newFixture(t)
	ws := f.newWorkspace(t, ids.User)
	f.debit(t, ws, 6)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := f.handler.Handle(ctx, scheduleEvent(f.clock.Now()))
	if err == nil {
		t.Fatal("Handle with a cancelled context returned no error")
	}
	if res != (Result{}) {
		t.Errorf("result = %+v; want zero", res)
	}

	// The count of wallets below the threshold is left out, because the
	// run did not list them all.
	lines := emfLines(t, f.out.String())
	if len(lines) != 1 {
		t.Fatalf("%d metrics lines; want 1", len(lines))
	}
	checkEMF(t, lines[0], f.clock.Now().UnixMilli(), map[string]int{MetricAlertsRaised: 0})
	if _, ok := lines[0][MetricWalletsBelowThreshold]; ok {
		t.Errorf("line has %s after a failed listing: %v", MetricWalletsBelowThreshold, lines[0])
	}
}

// TestScheduleSampleEvent decodes the sample event that `sam local invoke
// -e` uses and runs the handler with it.
func TestScheduleSampleEvent(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := localstack.FindModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "infra", "events", "credit-alerts-schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var ev lambdaevents.EventBridgeEvent
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("decode sample: %v", err)
	}

	if ev.Source != "aws.events" {
		t.Errorf("source = %q; want aws.events", ev.Source)
	}
	if ev.DetailType != "Scheduled Event" {
		t.Errorf("detail-type = %q; want Scheduled Event", ev.DetailType)
	}
	if ev.AccountID == "" || ev.Region == "" || ev.Time.IsZero() {
		t.Errorf("account %q, region %q, time %s; want all set", ev.AccountID, ev.Region, ev.Time)
	}
	if len(ev.Resources) != 1 || !strings.HasPrefix(ev.Resources[0], "arn:aws:events:"+ev.Region+":"+ev.AccountID+":rule/") {
		t.Errorf("resources = %v; want one rule ARN in the event's region and account", ev.Resources)
	}
	if string(ev.Detail) != "{}" {
		t.Errorf("detail = %s; want {}", ev.Detail)
	}

	f := newFixture(t)
	ws := f.newWorkspace(t, ids.User)
	f.debit(t, ws, 6)
	res, err := f.handler.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{WalletsBelowThreshold: 1, AlertsRaised: 1}); res != want {
		t.Errorf("result = %+v; want %+v", res, want)
	}
	if n := eventsByWorkspace(f.lowBalanceEvents(t))[ws]; n != 1 {
		t.Errorf("%d low-balance events for %s; want 1", n, ws)
	}
}
