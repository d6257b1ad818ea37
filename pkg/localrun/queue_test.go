package localrun_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// queueRecorder is a queue handler that records every message it gets and
// fails the bodies in fail.
type queueRecorder struct {
	mu       sync.Mutex
	messages []events.SQSMessage
	fail     map[string]bool
	err      error
	panics   bool
}

func (r *queueRecorder) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, ev.Records...)
	if r.panics {
		panic("handler bug")
	}
	if r.err != nil {
		return events.SQSEventResponse{}, r.err
	}
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if r.fail[m.Body] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// receipts returns the ApproximateReceiveCount of each delivery of body.
func (r *queueRecorder) receipts(body string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.messages {
		if m.Body == body {
			out = append(out, m.Attributes["ApproximateReceiveCount"])
		}
	}
	return out
}

type queueFixture struct {
	client *sqs.Client
	queue  localstack.Queue
	dlq    localstack.Queue
}

// newQueueFixture returns the test's emails queue with a visibility
// timeout of one second, so failed messages come back quickly.
func newQueueFixture(t *testing.T) *queueFixture {
	t.Helper()
	env := localstacktest.New(t)
	f := &queueFixture{client: env.Clients.SQS, queue: env.Queues["EmailsQueue"], dlq: env.Queues["EmailsDeadLetterQueue"]}
	_, err := f.client.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl:   &f.queue.URL,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *queueFixture) send(t *testing.T, body string) {
	t.Helper()
	_, err := f.client.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl:    &f.queue.URL,
		MessageBody: &body,
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"origin": {DataType: aws.String("String"), StringValue: aws.String("test")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// run runs a poller over the queue until the test ends.
func (f *queueFixture) run(t *testing.T, handler localrun.QueueHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := localrun.NewQueuePoller(f.client, f.queue.URL, handler, localrun.QueueOptions{WaitTime: time.Second})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of cancellation")
		}
	})
}

// deadLetters receives what the dead-letter queue holds within a second.
func (f *queueFixture) deadLetters(t *testing.T) []string {
	t.Helper()
	out, err := f.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl:            &f.dlq.URL,
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	return bodies
}

func TestQueuePollerEventShape(t *testing.T) {
	f := newQueueFixture(t)
	rec := &queueRecorder{}
	f.run(t, rec.handle)
	f.send(t, "hello")
	waitFor(t, 10*time.Second, "one message", func() bool { return len(rec.receipts("hello")) == 1 })

	rec.mu.Lock()
	m := rec.messages[0]
	rec.mu.Unlock()
	if m.EventSource != "aws:sqs" {
		t.Errorf("eventSource = %q; want aws:sqs", m.EventSource)
	}
	if m.EventSourceARN != f.queue.ARN {
		t.Errorf("eventSourceARN = %q; want %q", m.EventSourceARN, f.queue.ARN)
	}
	if m.MessageId == "" || m.ReceiptHandle == "" {
		t.Errorf("messageId = %q, receiptHandle = %q; want both set", m.MessageId, m.ReceiptHandle)
	}
	if got := m.Attributes["ApproximateReceiveCount"]; got != "1" {
		t.Errorf("ApproximateReceiveCount = %q; want 1", got)
	}
	if got := m.MessageAttributes["origin"]; aws.ToString(got.StringValue) != "test" || got.DataType != "String" {
		t.Errorf("message attribute origin = %+v; want String test", got)
	}
}

func TestQueuePollerRedrivesFailedMessages(t *testing.T) {
	f := newQueueFixture(t)
	rec := &queueRecorder{fail: map[string]bool{"bad": true}}
	f.run(t, rec.handle)
	f.send(t, "good")
	f.send(t, "bad")

	var dead []string
	waitFor(t, 30*time.Second, "the failed message in the dead-letter queue", func() bool {
		dead = append(dead, f.deadLetters(t)...)
		return len(dead) > 0
	})

	if len(dead) != 1 || dead[0] != "bad" {
		t.Errorf("dead-letter queue = %v; want [bad]", dead)
	}
	if got := rec.receipts("bad"); len(got) != 3 || got[0] != "1" || got[1] != "2" || got[2] != "3" {
		t.Errorf("receive counts of the failed message = %v; want [1 2 3]", got)
	}
	if got := rec.receipts("good"); len(got) != 1 {
		t.Errorf("deliveries of the successful message = %v; want one, because it was deleted", got)
	}
}

func TestQueuePollerKeepsBatchOnHandlerError(t *testing.T) {
	cases := []struct {
		name string
		rec  *queueRecorder
	}{
		{"handler error", &queueRecorder{err: errors.New("boom")}},
		{"handler panic", &queueRecorder{panics: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newQueueFixture(t)
			f.run(t, tc.rec.handle)
			f.send(t, "again")
			waitFor(t, 15*time.Second, "a second delivery", func() bool { return len(tc.rec.receipts("again")) >= 2 })
		})
	}
}

func TestQueuePollerUnknownFailureIDFailsBatch(t *testing.T) {
	f := newQueueFixture(t)
	var mu sync.Mutex
	deliveries := 0
	f.run(t, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		deliveries += len(ev.Records)
		mu.Unlock()
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-a-message-id"}}}, nil
	})
	f.send(t, "kept")
	waitFor(t, 15*time.Second, "a second delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return deliveries >= 2
	})
}
