package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/localrun"
)

// TestPipelineEndToEnd writes an event item the way a handler does and
// follows it through the local replacements of the event source mappings.
// The stream poller hands it to the dispatcher, which writes the
// notification and queues the email job. The queue poller hands the job to
// the sender, which sends it through the SES emulator.
func TestPipelineEndToEnd(t *testing.T) {
	f := newFixture(t)
	ada := f.signup(t, "Ada")
	ctx, cancel := context.WithCancel(context.Background())

	arn, err := localrun.StreamARN(ctx, f.env.Clients.DynamoDB, f.env.TableName)
	if err != nil {
		t.Fatal(err)
	}
	streams := localrun.NewStreamPoller(f.env.Clients.DynamoDBStreams, arn, f.dispatcher.Handle,
		localrun.StreamOptions{PollInterval: 50 * time.Millisecond})
	queue := localrun.NewQueuePoller(f.env.Clients.SQS, f.queueURL, f.sender.Handle, localrun.QueueOptions{WaitTime: time.Second})
	done := make(chan error, 2)
	go func() { done <- streams.Run(ctx) }()
	go func() { done <- queue.Run(ctx) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("poller: %v", err)
			}
		}
	}()
	select {
	case <-streams.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("stream poller not ready after 10 s")
	}

	e := f.event(t, events.NewLogin, ada.ID, newLoginData(ada))
	put, err := events.Put(f.store, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Transact(ctx, put); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(f.notifications(t, ada.ID)) == 1 && sentTo(t, f.env.Endpoints.SES, ada.Email) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := f.notifications(t, ada.ID)
	if len(got) != 1 {
		t.Fatalf("notifications = %d; want 1", len(got))
	}
	if got[0].EventID != e.ID || got[0].Type != events.NewLogin {
		t.Errorf("notification = %+v; want one for event %s", got[0], e.ID)
	}
	if n := sentTo(t, f.env.Endpoints.SES, ada.Email); n != 1 {
		t.Errorf("emails = %d; want 1", n)
	}
}
