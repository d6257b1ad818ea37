package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

func newTestWorkers(t *testing.T) *Workers {
	t.Helper()
	env := localstacktest.New(t)
	cfg := testConfig(env)
	a, err := New(cfg, Deps{DynamoDB: env.Clients.DynamoDB, S3: env.Clients.S3, SQS: env.Clients.SQS, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.NewWorkers(cfg, WorkerDeps{
		SQS:            env.Clients.SQS,
		SES:            env.Clients.SES,
		EmailsQueueURL: env.Queues["EmailsQueue"].URL,
		Email:          email.Config{From: "SignSecure <no-reply@signsecure.example>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func readSample(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// TestWorkerSampleEventsReachHandlers feeds the samples that
// `sam local invoke -e` uses for the asynchronous functions into their
// handlers over the local stack.
func TestWorkerSampleEventsReachHandlers(t *testing.T) {
	w := newTestWorkers(t)

	var stream events.DynamoDBEvent
	readSample(t, "event-dispatcher.json", &stream)
	if len(stream.Records) == 0 || stream.Records[0].Change.NewImage["type"].String() != "security.new_login" {
		t.Fatalf("event-dispatcher.json does not hold a security.new_login INSERT: %+v", stream.Records)
	}
	res, err := w.Dispatcher.Handle(context.Background(), stream)
	if err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	if len(res.BatchItemFailures) != 0 {
		t.Errorf("dispatcher reported failures for the sample: %+v", res.BatchItemFailures)
	}

	var queue events.SQSEvent
	readSample(t, "email-sender.json", &queue)
	out, err := w.Emails.Handle(context.Background(), queue)
	if err != nil {
		t.Fatalf("email sender: %v", err)
	}
	if len(out.BatchItemFailures) != 0 {
		t.Errorf("email sender reported failures for the sample: %+v", out.BatchItemFailures)
	}

	// The webhook sample names a delivery this fresh table lacks; the
	// handler must still take it and return without a Lambda error.
	var deliveries events.SQSEvent
	readSample(t, "webhook-sender.json", &deliveries)
	if _, err := w.Webhooks.Handle(context.Background(), deliveries); err != nil {
		t.Fatalf("webhook sender: %v", err)
	}
}
