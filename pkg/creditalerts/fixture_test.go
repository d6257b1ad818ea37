package creditalerts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

// clock is a settable test clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

type fixture struct {
	env     *localstacktest.Env
	store   *store.Store
	billing *billing.Service
	clock   *clock
	out     *bytes.Buffer
	handler *Handler
}

// newFixture returns a handler and a billing service with DefaultConfig (a
// starting grant of 10 credits and a threshold of 5) over a fresh table.
// The handler writes its EMF lines to f.out.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc, err := billing.NewService(billing.DefaultConfig(), billing.Deps{
		Store:     st,
		Documents: env.Clients.S3,
		Bucket:    env.BucketName,
		Now:       c.Now,
		Logger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	return &fixture{env: env, store: st, billing: svc, clock: c, out: out, handler: NewHandler(st, out, c.Now, logger)}
}

// newWorkspace creates the wallet of a new workspace through billing, the
// way sign-up and organization creation do, and returns the workspace id.
// prefix is ids.User or ids.Organization.
func (f *fixture) newWorkspace(t *testing.T, prefix string) string {
	t.Helper()
	id := ids.NewAt(prefix, f.clock.Now())
	items, err := f.billing.NewWalletItems(id, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Transact(context.Background(), items...); err != nil {
		t.Fatalf("create wallet of %s: %v", id, err)
	}
	return id
}

func (f *fixture) debit(t *testing.T, workspaceID string, cost int64) {
	t.Helper()
	if _, err := f.billing.DebitWith(context.Background(), workspaceID, cost, "envelope_send", "env_test"); err != nil {
		t.Fatalf("debit %d from %s: %v", cost, workspaceID, err)
	}
}

func (f *fixture) credit(t *testing.T, workspaceID string, amount int64) {
	t.Helper()
	if _, err := f.billing.Credit(context.Background(), workspaceID, amount, "test_grant", ""); err != nil {
		t.Fatalf("credit %d to %s: %v", amount, workspaceID, err)
	}
}

func (f *fixture) wallet(t *testing.T, workspaceID string) billing.Wallet {
	t.Helper()
	w, err := f.billing.GetWallet(context.Background(), workspaceID)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// run runs the handler with the sample schedule event and fails the test
// when it returns an error.
func (f *fixture) run(t *testing.T) Result {
	t.Helper()
	res, err := f.handler.Handle(context.Background(), scheduleEvent(f.clock.Now()))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return res
}

func scheduleEvent(at time.Time) lambdaevents.EventBridgeEvent {
	return lambdaevents.EventBridgeEvent{
		Version:    "0",
		ID:         "5d8f2c1e-7a3b-4c9d-8e6f-0a1b2c3d4e5f",
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  "123456789012",
		Time:       at,
		Region:     "eu-west-1",
		Resources:  []string{"arn:aws:events:eu-west-1:123456789012:rule/signsecure-CreditAlertsSchedule-1R2S3T4U5V6W"},
		Detail:     json.RawMessage(`{}`),
	}
}

// alertEvent is an outbox event of type billing.low_credit_balance with
// its decoded data.
type alertEvent struct {
	events.Event
	Alert lowBalanceData
}

// lowBalanceEvents returns every billing.low_credit_balance event in the
// outbox. It decodes the data strictly, so a member beyond workspace_id,
// balance, threshold and below_since fails the test.
func (f *fixture) lowBalanceEvents(t *testing.T) []alertEvent {
	t.Helper()
	ctx := context.Background()
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(f.env.TableName),
		FilterExpression:          aws.String("entity = :e AND #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": str("event"), ":t": str(events.LowCreditBalance)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []alertEvent
	for {
		page, err := f.env.Clients.DynamoDB.Scan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			id := item["id"].(*types.AttributeValueMemberS).Value
			e, err := events.Get(ctx, f.store, id)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(e.Data))
			dec.DisallowUnknownFields()
			var d lowBalanceData
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("event %s data %s: %v", e.ID, e.Data, err)
			}
			out = append(out, alertEvent{Event: e, Alert: d})
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// eventsByWorkspace counts the low-balance events per workspace.
func eventsByWorkspace(evs []alertEvent) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[e.WorkspaceID]++
	}
	return n
}

// emfLines returns the JSON objects written to out, one per line.
func emfLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("metrics line %q is not a JSON object: %v", sc.Text(), err)
		}
		docs = append(docs, doc)
	}
	return docs
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }
