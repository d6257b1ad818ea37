package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/notify"
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

type fixture struct {
	env        *localstacktest.Env
	store      *store.Store
	clock      *clock
	accounts   *accounts.Service
	service    *notify.Service
	dispatcher *notify.Dispatcher
	sender     *email.Sender
	queueURL   string
	seq        int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()

	accCfg := accounts.DefaultConfig()
	accCfg.Password = accounts.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	acc, err := accounts.NewService(st, accCfg, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}

	f := &fixture{
		env:      env,
		store:    st,
		clock:    c,
		accounts: acc,
		service:  notify.NewService(st, c.Now),
		queueURL: env.Queues["EmailsQueue"].URL,
	}
	f.dispatcher = notify.NewEventDispatcher(st, env.Clients.SQS, notify.DispatcherConfig{EmailsQueueURL: f.queueURL}, nil, c.Now)

	links := func(ctx context.Context, envelopeID, recipientID string) (string, error) {
		return "https://sign.signsecure.example/s/" + envelopeID + "/" + recipientID, nil
	}
	f.sender, err = email.NewSender(st, env.Clients.SES, email.Config{From: "no-reply@signsecure.example"}, links, nil, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type user struct {
	ID    string
	Name  string
	Email string
}

// signup creates a user with an address no other test uses, because the
// SES emulator keeps every email it was sent.
func (f *fixture) signup(t *testing.T, name string) user {
	t.Helper()
	addr := strings.ToLower(ids.New("t")) + "@example.com"
	u, _, err := f.accounts.Signup(context.Background(),
		accounts.SignupInput{Name: name, Email: addr, Password: "correct horse battery staple"},
		accounts.Client{IP: "198.51.100.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return user{ID: u.ID, Name: u.Name, Email: u.Email}
}

// newOrg writes an organization and its memberships; roles maps user ids
// to roles.
func (f *fixture) newOrg(t *testing.T, name string, roles map[string]string) string {
	t.Helper()
	orgID := ids.New(ids.Organization)
	key := store.OrgKey(orgID)
	org := struct {
		store.Item
		ID   string `dynamodbav:"id"`
		Name string `dynamodbav:"name"`
	}{store.Item{PK: key.PK, SK: key.SK, Entity: "organization"}, orgID, name}
	items := []any{org}
	for userID, role := range roles {
		items = append(items, f.membership(orgID, userID, role))
	}
	f.put(t, items...)
	return orgID
}

func (f *fixture) membership(orgID, userID, role string) any {
	key := store.MemberKey(orgID, userID)
	return struct {
		store.Item
		OrgID  string `dynamodbav:"org_id"`
		UserID string `dynamodbav:"user_id"`
		Role   string `dynamodbav:"role"`
	}{store.Item{PK: key.PK, SK: key.SK, Entity: "membership"}, orgID, userID, role}
}

func (f *fixture) put(t *testing.T, items ...any) {
	t.Helper()
	for _, it := range items {
		tx, err := f.store.PutNew(it)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.Transact(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
	}
}

// event returns a new event made at the fixture's time.
func (f *fixture) event(t *testing.T, typ, workspaceID string, data any) events.Event {
	t.Helper()
	e, err := events.New(typ, workspaceID, data, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// record returns the stream record that writing e's outbox item makes,
// with the next sequence number.
func (f *fixture) record(e events.Event) lambdaevents.DynamoDBEventRecord {
	f.seq++
	key := store.EventKey(e.ID)
	s := lambdaevents.NewStringAttribute
	img := map[string]lambdaevents.DynamoDBAttributeValue{
		"PK":           s(key.PK),
		"SK":           s(key.SK),
		"entity":       s("event"),
		"id":           s(e.ID),
		"type":         s(e.Type),
		"timestamp":    s(e.Timestamp.Format(time.RFC3339Nano)),
		"workspace_id": s(e.WorkspaceID),
		"data":         s(string(e.Data)),
		"expires_at":   lambdaevents.NewNumberAttribute("1900000000"),
	}
	return lambdaevents.DynamoDBEventRecord{
		EventID:   fmt.Sprintf("rec-%d", f.seq),
		EventName: "INSERT",
		Change: lambdaevents.DynamoDBStreamRecord{
			Keys:           map[string]lambdaevents.DynamoDBAttributeValue{"PK": img["PK"], "SK": img["SK"]},
			NewImage:       img,
			SequenceNumber: fmt.Sprintf("%021d", 100+f.seq),
			StreamViewType: "NEW_IMAGE",
		},
	}
}

// dispatch runs the dispatcher's stream handler on the records and fails
// the test on any reported failure.
func (f *fixture) dispatch(t *testing.T, recs ...lambdaevents.DynamoDBEventRecord) {
	t.Helper()
	resp, err := f.dispatcher.Handle(context.Background(), lambdaevents.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(resp.BatchItemFailures) > 0 {
		t.Fatalf("Handle reported failures %v", resp.BatchItemFailures)
	}
}

// drainEmails receives every message on the emails queue, runs the email
// sender on them and returns the jobs it received.
func (f *fixture) drainEmails(t *testing.T) []email.Job {
	t.Helper()
	ctx := context.Background()
	var jobs []email.Job
	for {
		out, err := f.env.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &f.queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return jobs
		}
		ev := lambdaevents.SQSEvent{}
		for _, m := range out.Messages {
			var job email.Job
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &job); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, job)
			ev.Records = append(ev.Records, lambdaevents.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body)})
			if _, err := f.env.Clients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &f.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := f.sender.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("email sender: %v, failures %v", err, resp.BatchItemFailures)
		}
	}
}

// notifications returns every notification of the user, newest first.
func (f *fixture) notifications(t *testing.T, userID string) []notify.Notification {
	t.Helper()
	list, _, err := f.service.List(context.Background(), userID, false, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (f *fixture) unread(t *testing.T, userID string) int {
	t.Helper()
	n, err := f.service.UnreadCount(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sentTo returns the number of emails the SES emulator holds for the
// address.
func sentTo(t *testing.T, sesEndpoint, address string) int {
	t.Helper()
	resp, err := http.Get(sesEndpoint + "/store")
	if err != nil {
		t.Fatalf("read SES emulator store: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Emails []struct {
			Destination struct {
				To []string `json:"to"`
			} `json:"destination"`
		} `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode SES emulator store: %v", err)
	}
	n := 0
	for _, e := range body.Emails {
		for _, to := range e.Destination.To {
			if strings.Contains(strings.ToLower(to), strings.ToLower(address)) {
				n++
				break
			}
		}
	}
	return n
}
