package localrun_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// streamRecorder is a stream handler that records every call and returns
// the response that respond returns.
type streamRecorder struct {
	mu      sync.Mutex
	calls   [][]events.DynamoDBEventRecord
	respond func(call int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
}

func (r *streamRecorder) handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	r.mu.Lock()
	r.calls = append(r.calls, ev.Records)
	call := len(r.calls)
	r.mu.Unlock()
	if r.respond == nil {
		return events.DynamoDBEventResponse{}, nil
	}
	return r.respond(call, ev)
}

// pks returns, per call, the PK of each record's new image.
func (r *streamRecorder) pks() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, 0, len(r.calls))
	for _, call := range r.calls {
		var keys []string
		for _, rec := range call {
			keys = append(keys, rec.Change.Keys["PK"].String())
		}
		out = append(out, keys)
	}
	return out
}

type streamFixture struct {
	db        *dynamodb.Client
	table     string
	streamARN string
	rec       *streamRecorder
}

// startStreamPoller runs a poller over a fresh table's stream until the
// test ends, and waits until it is ready.
func startStreamPoller(t *testing.T, rec *streamRecorder, opts localrun.StreamOptions) *streamFixture {
	t.Helper()
	env := localstacktest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	arn, err := localrun.StreamARN(ctx, env.Clients.DynamoDB, env.TableName)
	if err != nil {
		t.Fatal(err)
	}
	p := localrun.NewStreamPoller(env.Clients.DynamoDBStreams, arn, rec.handle, opts)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("stream poller not ready after 10 s")
	}
	return &streamFixture{db: env.Clients.DynamoDB, table: env.TableName, streamARN: arn, rec: rec}
}

// putItems writes items with the PKs in one transaction, so they reach the
// stream together.
func (f *streamFixture) putItems(t *testing.T, pks ...string) {
	t.Helper()
	var items []types.TransactWriteItem
	for _, pk := range pks {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: &f.table,
			Item: map[string]types.AttributeValue{
				"PK":    &types.AttributeValueMemberS{Value: pk},
				"SK":    &types.AttributeValueMemberS{Value: "ITEM"},
				"count": &types.AttributeValueMemberN{Value: "3"},
				"tags":  &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
			},
		}})
	}
	if _, err := f.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStreamPollerDeliversNewItems(t *testing.T) {
	rec := &streamRecorder{}
	f := startStreamPoller(t, rec, localrun.StreamOptions{PollInterval: 50 * time.Millisecond})

	f.putItems(t, "ITEM#1")
	waitFor(t, 10*time.Second, "one delivered record", func() bool { return len(rec.pks()) > 0 })

	rec.mu.Lock()
	got := rec.calls[0][0]
	rec.mu.Unlock()
	if got.EventName != "INSERT" {
		t.Errorf("eventName = %q; want INSERT", got.EventName)
	}
	if got.EventSource != "aws:dynamodb" {
		t.Errorf("eventSource = %q; want aws:dynamodb", got.EventSource)
	}
	if got.EventSourceArn != f.streamARN {
		t.Errorf("eventSourceARN = %q; want %q", got.EventSourceArn, f.streamARN)
	}
	if got.AWSRegion != "us-east-1" {
		t.Errorf("awsRegion = %q; want us-east-1", got.AWSRegion)
	}
	if got.Change.SequenceNumber == "" {
		t.Error("record has no sequence number")
	}
	if pk := got.Change.NewImage["PK"].String(); pk != "ITEM#1" {
		t.Errorf("NewImage PK = %q; want ITEM#1", pk)
	}
	if n := got.Change.NewImage["count"].Number(); n != "3" {
		t.Errorf("NewImage count = %q; want 3", n)
	}
	if ss := got.Change.NewImage["tags"].StringSet(); !slices.Equal(sorted(ss), []string{"a", "b"}) {
		t.Errorf("NewImage tags = %v; want [a b]", ss)
	}
	if got.Change.Keys["SK"].String() != "ITEM" {
		t.Errorf("Keys SK = %q; want ITEM", got.Change.Keys["SK"].String())
	}
}

func TestStreamPollerRetriesFromFailedRecord(t *testing.T) {
	rec := &streamRecorder{}
	rec.respond = func(call int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		if call > 1 || len(ev.Records) < 2 {
			return events.DynamoDBEventResponse{}, nil
		}
		// Fail the second record of the first batch.
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
			{ItemIdentifier: ev.Records[1].Change.SequenceNumber},
		}}, nil
	}
	// A long poll interval lets the three writes land before the next poll,
	// so they arrive in one batch.
	f := startStreamPoller(t, rec, localrun.StreamOptions{PollInterval: 2 * time.Second, RetryDelay: 10 * time.Millisecond})

	f.putItems(t, "ITEM#1", "ITEM#2", "ITEM#3")
	waitFor(t, 15*time.Second, "two handler calls", func() bool { return len(rec.pks()) >= 2 })
	time.Sleep(300 * time.Millisecond) // no further call may follow

	calls := rec.pks()
	if len(calls) != 2 {
		t.Fatalf("handler calls = %v; want 2 calls", calls)
	}
	if len(calls[0]) != 3 {
		t.Fatalf("first batch = %v; want the three records in one batch", calls[0])
	}
	if !slices.Equal(calls[1], calls[0][1:]) {
		t.Errorf("retried batch = %v; want the failed record and the one after it, %v", calls[1], calls[0][1:])
	}
}

func TestStreamPollerBoundsRetries(t *testing.T) {
	cases := []struct {
		name    string
		respond func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
	}{
		{"handler error", func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{}, errors.New("boom")
		}},
		{"failure report", func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
				{ItemIdentifier: ev.Records[0].Change.SequenceNumber},
			}}, nil
		}},
		{"unknown identifier", func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: "nonsense"}}}, nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &streamRecorder{}
			rec.respond = func(call int, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
				if ev.Records[0].Change.Keys["PK"].String() == "ITEM#after" {
					return events.DynamoDBEventResponse{}, nil
				}
				return tc.respond(ev)
			}
			f := startStreamPoller(t, rec, localrun.StreamOptions{
				PollInterval:     50 * time.Millisecond,
				RetryDelay:       5 * time.Millisecond,
				MaxRetryAttempts: 2,
			})

			f.putItems(t, "ITEM#poison")
			waitFor(t, 10*time.Second, "three calls", func() bool { return len(rec.pks()) >= 3 })
			f.putItems(t, "ITEM#after")
			waitFor(t, 10*time.Second, "the next record", func() bool {
				calls := rec.pks()
				return slices.Contains(calls[len(calls)-1], "ITEM#after")
			})

			want := [][]string{{"ITEM#poison"}, {"ITEM#poison"}, {"ITEM#poison"}, {"ITEM#after"}}
			if got := rec.pks(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("handler calls = %v; want %v (one call and two retries, then the shard moves on)", got, want)
			}
		})
	}
}

func TestStreamPollerStopsOnCancel(t *testing.T) {
	env := localstacktest.New(t)
	arn, err := localrun.StreamARN(context.Background(), env.Clients.DynamoDB, env.TableName)
	if err != nil {
		t.Fatal(err)
	}
	rec := &streamRecorder{}
	p := localrun.NewStreamPoller(env.Clients.DynamoDBStreams, arn, rec.handle, localrun.StreamOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v; want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of cancellation")
	}
}

func TestStreamARNMissingTable(t *testing.T) {
	env := localstacktest.New(t)
	_, err := localrun.StreamARN(context.Background(), env.Clients.DynamoDB, env.TableName+"-missing")
	if err == nil {
		t.Error("StreamARN of a missing table returned no error")
	}

}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
