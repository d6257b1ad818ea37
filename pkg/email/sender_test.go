package email_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

var sampleTime = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(sampleTime.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// scriptedSES passes calls to the SES emulator, except that while errs is
// not empty each call returns the next error instead of sending. It
// produces the SES failures that the emulator cannot.
type scriptedSES struct {
	next  email.SES
	mu    sync.Mutex
	errs  []error
	calls int
}

func (s *scriptedSES) SendEmail(ctx context.Context, in *sesv2.SendEmailInput, opts ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	s.mu.Lock()
	s.calls++
	var err error
	if len(s.errs) > 0 {
		err, s.errs = s.errs[0], s.errs[1:]
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.next.SendEmail(ctx, in, opts...)
}

func (s *scriptedSES) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type fixture struct {
	env    *localstacktest.Env
	store  *store.Store
	ses    *scriptedSES
	clock  *clock
	sender *email.Sender
	links  map[string]string // "envelope/recipient" to link
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, store: st, ses: &scriptedSES{next: env.Clients.SES}, clock: newClock(), links: map[string]string{}}
	links := func(ctx context.Context, envelopeID, recipientID string) (string, error) {
		link, ok := f.links[envelopeID+"/"+recipientID]
		if !ok {
			return "", fmt.Errorf("no signing link for %s/%s", envelopeID, recipientID)
		}
		return link, nil
	}
	cfg := email.Config{From: "SignSecure <no-reply@signsecure.example>", AppURL: "https://app.signsecure.example", ClaimLease: time.Minute}
	f.sender, err = email.NewSender(st, f.ses, cfg, links, nil, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newAddress returns an address no other test uses, because the SES
// emulator keeps every email it was sent.
func newAddress() string {
	return strings.ToLower(ids.New("t")) + "@example.com"
}

func newLoginJob(to string) email.Job {
	return email.Job{
		ID:      email.JobID(ids.New(ids.Event), sampleTime, email.NewLogin, to),
		Kind:    email.NewLogin,
		EventID: "evt_test",
		To:      to,
		ToName:  "Ada Lovelace",
		Vars:    sampleVars[email.NewLogin],
	}
}

// storedEmail is an email as the SES emulator's GET /store returns it.
type storedEmail struct {
	MessageID   string `json:"messageId"`
	From        string `json:"from"`
	Destination struct {
		To []string `json:"to"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		HTML string `json:"html"`
		Text string `json:"text"`
	} `json:"body"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
}

// sentTo returns the emails the SES emulator holds for the address.
func sentTo(t *testing.T, sesEndpoint, address string) []storedEmail {
	t.Helper()
	resp, err := http.Get(sesEndpoint + "/store")
	if err != nil {
		t.Fatalf("read SES emulator store: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Emails []storedEmail `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode SES emulator store: %v", err)
	}
	var out []storedEmail
	for _, e := range body.Emails {
		for _, to := range e.Destination.To {
			if strings.Contains(strings.ToLower(to), address) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func jobState(t *testing.T, st *store.Store, jobID string) email.JobState {
	t.Helper()
	s, err := email.GetJobState(context.Background(), st, jobID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendTwiceSendsOnce(t *testing.T) {
	f := newFixture(t)
	to := newAddress()
	job := newLoginJob(to)
	ctx := context.Background()

	if err := f.sender.Send(ctx, job); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	if err := f.sender.Send(ctx, job); err != nil {
		t.Fatalf("second Send: %v", err)
	}

	sent := sentTo(t, f.env.Endpoints.SES, to)
	if len(sent) != 1 {
		t.Fatalf("emails to %s = %d; want 1", to, len(sent))
	}
	if f.ses.callCount() != 1 {
		t.Errorf("SES calls = %d; want 1", f.ses.callCount())
	}
	got := sent[0]
	if got.From != "SignSecure <no-reply@signsecure.example>" {
		t.Errorf("from = %q", got.From)
	}
	if got.Subject != "New login to your SignSecure account" {
		t.Errorf("subject = %q", got.Subject)
	}
	if !strings.Contains(got.Body.Text, "203.0.113.7") || !strings.Contains(got.Body.HTML, "203.0.113.7") {
		t.Error("text or HTML body lacks the login's IP address")
	}
	if !slices.ContainsFunc(got.Headers, func(h struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}) bool {
		return h.Name == email.JobIDHeader && h.Value == job.ID
	}) {
		t.Errorf("headers %v lack %s: %s", got.Headers, email.JobIDHeader, job.ID)
	}

	state := jobState(t, f.store, job.ID)
	if state.Status != email.StatusSent {
		t.Errorf("status = %q; want %q", state.Status, email.StatusSent)
	}
	if state.SESMessageID != got.MessageID {
		t.Errorf("recorded SES message id = %q; want %q", state.SESMessageID, got.MessageID)
	}
	if state.Attempts != 1 {
		t.Errorf("attempts = %d; want 1", state.Attempts)
	}
}

func TestSendConcurrentDeliveries(t *testing.T) {
	f := newFixture(t)
	to := newAddress()
	job := newLoginJob(to)

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Losers of the claim get an error or nil; only the count of
			// emails matters here.
			_ = f.sender.Send(context.Background(), job)
		}()
	}
	wg.Wait()

	if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != 1 {
		t.Errorf("emails after 8 concurrent deliveries = %d; want 1", n)
	}
}

func TestSendOutcomes(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantErr    bool   // Send reports the message for another delivery
		wantStatus string // after the failing call
		wantRetry  bool   // a second delivery sends the email
	}{
		{"throttled", &sestypes.TooManyRequestsException{Message: aws.String("slow down")}, true, email.StatusRetry, true},
		{"limit exceeded", &sestypes.LimitExceededException{Message: aws.String("quota")}, true, email.StatusRetry, true},
		{"message rejected", &sestypes.MessageRejected{Message: aws.String("bad address")}, false, email.StatusRejected, false},
		{"from domain not verified", &sestypes.MailFromDomainNotVerifiedException{Message: aws.String("unverified")}, false, email.StatusRejected, false},
		{"bad request", &sestypes.BadRequestException{Message: aws.String("bad")}, false, email.StatusRejected, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			to := newAddress()
			job := newLoginJob(to)
			f.ses.errs = []error{tc.err}
			ctx := context.Background()

			err := f.sender.Send(ctx, job)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Send error = %v; want error: %v", err, tc.wantErr)
			}
			state := jobState(t, f.store, job.ID)
			if state.Status != tc.wantStatus {
				t.Errorf("status = %q; want %q", state.Status, tc.wantStatus)
			}
			if state.LastError == "" {
				t.Error("the SES error is not recorded on the job")
			}
			if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != 0 {
				t.Errorf("emails after the failure = %d; want 0", n)
			}

			if err := f.sender.Send(ctx, job); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			wantEmails, wantCalls := 0, 1
			if tc.wantRetry {
				wantEmails, wantCalls = 1, 2
			}
			if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != wantEmails {
				t.Errorf("emails after the second delivery = %d; want %d", n, wantEmails)
			}
			if f.ses.callCount() != wantCalls {
				t.Errorf("SES calls = %d; want %d", f.ses.callCount(), wantCalls)
			}
		})
	}
}

func TestSendUnknownOutcomeNeverResends(t *testing.T) {
	f := newFixture(t)
	to := newAddress()
	job := newLoginJob(to)
	ctx := context.Background()
	// An error without an SES response: SES may have accepted the email.
	f.ses.errs = []error{errors.New("read tcp: connection reset by peer")}

	if err := f.sender.Send(ctx, job); err == nil {
		t.Fatal("Send returned nil after a transport error")
	}
	if s := jobState(t, f.store, job.ID); s.Status != email.StatusSending {
		t.Errorf("status after the transport error = %q; want %q", s.Status, email.StatusSending)
	}

	// While the claim lasts, a redelivery waits.
	f.clock.Advance(30 * time.Second)
	if err := f.sender.Send(ctx, job); err == nil {
		t.Error("Send within the claim's lease returned nil; want an error so the message comes back")
	}

	// After the lease, the redelivery gives up without sending.
	f.clock.Advance(31 * time.Second)
	if err := f.sender.Send(ctx, job); err != nil {
		t.Fatalf("Send after the lease: %v", err)
	}
	if s := jobState(t, f.store, job.ID); s.Status != email.StatusUnconfirmed {
		t.Errorf("status after the lease = %q; want %q", s.Status, email.StatusUnconfirmed)
	}
	if f.ses.callCount() != 1 {
		t.Errorf("SES calls = %d; want 1", f.ses.callCount())
	}
	if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != 0 {
		t.Errorf("emails = %d; want 0", n)
	}
}

func TestSendSigningRequestRebuildsLink(t *testing.T) {
	f := newFixture(t)
	to := newAddress()
	f.links["env_1/rcp_1"] = "https://sign.signsecure.example/s/abc123"
	job := sampleJob(email.SigningRequest)
	job.ID = email.JobID(ids.New(ids.Event), sampleTime, email.SigningRequest, to)
	job.To = to

	if err := f.sender.Send(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	sent := sentTo(t, f.env.Endpoints.SES, to)
	if len(sent) != 1 {
		t.Fatalf("emails = %d; want 1", len(sent))
	}
	if !strings.Contains(sent[0].Body.Text, "https://sign.signsecure.example/s/abc123") {
		t.Error("text body lacks the signing link")
	}
	if !strings.Contains(sent[0].Body.HTML, "https://sign.signsecure.example/s/abc123") {
		t.Error("HTML body lacks the signing link")
	}
}

func TestSendWithoutLinkSourceLeavesJob(t *testing.T) {
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sender, err := email.NewSender(st, env.Clients.SES, email.Config{From: "no-reply@signsecure.example"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	job := sampleJob(email.SigningRequest)
	job.To = newAddress()

	if err := sender.Send(context.Background(), job); err == nil {
		t.Fatal("Send of a signing request without a link source returned nil")
	}
	if _, err := email.GetJobState(context.Background(), st, job.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("job state after the failure: %v; want not found, because the job was never claimed", err)
	}
}

func TestHandleReportsOnlyFailedMessages(t *testing.T) {
	f := newFixture(t)
	to := newAddress()
	good, err := json.Marshal(newLoginJob(to))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.sender.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-bad-json", Body: "{not json"},
		{MessageId: "m-good", Body: string(good)},
		{MessageId: "m-invalid-job", Body: `{"id":"eml_x","kind":"postcard","to":"a@example.com"}`},
	}})
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := []string{"m-bad-json", "m-invalid-job"}; !slices.Equal(failed, want) {
		t.Errorf("failed items = %v; want %v", failed, want)
	}
	if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != 1 {
		t.Errorf("emails for the good message = %d; want 1", n)
	}
}

func TestEnqueueTwiceSendsOneMessage(t *testing.T) {
	f := newFixture(t)
	queue := f.env.Queues["EmailsQueue"]
	enq := email.NewEnqueuer(f.store, f.env.Clients.SQS, queue.URL, f.clock.Now)
	job := newLoginJob(newAddress())
	ctx := context.Background()

	first, err := enq.Enqueue(ctx, job)
	if err != nil || !first {
		t.Fatalf("first Enqueue = %v, %v; want true, nil", first, err)
	}
	second, err := enq.Enqueue(ctx, job)
	if err != nil || second {
		t.Fatalf("second Enqueue = %v, %v; want false, nil", second, err)
	}

	out, err := f.env.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queue.URL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("messages on the queue = %d; want 1", len(out.Messages))
	}
	var got email.Job
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != job.ID || got.To != job.To || got.Kind != job.Kind {
		t.Errorf("queued job = %+v; want %+v", got, job)
	}
	state := jobState(t, f.store, job.ID)
	if state.Status != email.StatusQueued || state.EnqueuedAt.IsZero() {
		t.Errorf("state = %+v; want queued with enqueued_at set", state)
	}
}

// TestFailingHandlerGoesToDeadLetterQueue runs the email sender behind a
// handler that sends and then reports every message as failed, through the
// real queue: the message is received three times, lands in the
// dead-letter queue, and its email is sent once.
func TestFailingHandlerGoesToDeadLetterQueue(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queue, dlq := f.env.Queues["EmailsQueue"], f.env.Queues["EmailsDeadLetterQueue"]
	_, err := f.env.Clients.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   &queue.URL,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): "1"},
	})
	if err != nil {
		t.Fatal(err)
	}

	to := newAddress()
	job := newLoginJob(to)
	if _, err := email.NewEnqueuer(f.store, f.env.Clients.SQS, queue.URL, f.clock.Now).Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var receiveCounts []string
	failEverything := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if _, err := f.sender.Handle(ctx, ev); err != nil {
			return events.SQSEventResponse{}, err
		}
		var resp events.SQSEventResponse
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ev.Records {
			receiveCounts = append(receiveCounts, m.Attributes["ApproximateReceiveCount"])
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
		return resp, nil
	}
	poller := localrun.NewQueuePoller(f.env.Clients.SQS, queue.URL, failEverything, localrun.QueueOptions{WaitTime: time.Second})
	done := make(chan error, 1)
	go func() { done <- poller.Run(ctx) }()

	var dead []sqstypes.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		out, err := f.env.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &dlq.URL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		dead = out.Messages
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("poller: %v", err)
	}

	if len(dead) != 1 {
		t.Fatalf("dead-letter messages = %d; want 1", len(dead))
	}
	if !strings.Contains(aws.ToString(dead[0].Body), job.ID) {
		t.Errorf("dead-letter message %q is not the job %s", aws.ToString(dead[0].Body), job.ID)
	}
	mu.Lock()
	if want := []string{"1", "2", "3"}; !slices.Equal(receiveCounts, want) {
		t.Errorf("receive counts = %v; want %v", receiveCounts, want)
	}
	mu.Unlock()
	if n := len(sentTo(t, f.env.Endpoints.SES, to)); n != 1 {
		t.Errorf("emails = %d; want 1 across three deliveries", n)
	}
	if s := jobState(t, f.store, job.ID); s.Status != email.StatusSent {
		t.Errorf("status = %q; want %q", s.Status, email.StatusSent)
	}
}
