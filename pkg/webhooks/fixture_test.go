package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

// clock is the real time plus an offset that a test can advance. It stays
// near the real time, so receivers can check webhook-timestamp.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())).UTC() }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// fakeResolver is a Resolver over a fixed table of host names. It records
// every lookup, so tests show which names were resolved; no test makes a
// real DNS lookup.
type fakeResolver struct {
	mu      sync.Mutex
	hosts   map[string][]netip.Addr
	lookups []string
}

func newFakeResolver() *fakeResolver { return &fakeResolver{hosts: map[string][]netip.Addr{}} }

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = nil
	for _, a := range addrs {
		r.hosts[host] = append(r.hosts[host], netip.MustParseAddr(a))
	}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, host)
	addrs, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func (r *fakeResolver) lookupCount(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.lookups {
		if h == host {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	env      *localstacktest.Env
	store    *store.Store
	db       *dynamodb.Client
	sqs      *sqs.Client
	svc      *Service
	cfg      Config
	queueURL string
	dlqURL   string
	clock    *clock
	resolver *fakeResolver
	logs     *syncBuffer
}

// newFixture returns a service over a fresh table and queues, with
// loopback receivers allowed and retry delays of 1 s and 2 s.
func newFixture(t *testing.T, configure ...func(*Config)) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}

	f := &fixture{
		env:      env,
		store:    st,
		db:       env.Clients.DynamoDB,
		sqs:      env.Clients.SQS,
		queueURL: env.Queues["WebhookDeliveriesQueue"].URL,
		dlqURL:   env.Queues["WebhookDeliveriesDeadLetterQueue"].URL,
		clock:    &clock{},
		resolver: newFakeResolver(),
		logs:     &syncBuffer{},
	}

	cfg := DefaultConfig()
	cfg.QueueURL = f.queueURL
	cfg.AllowInsecureLoopback = true
	cfg.RetryDelays = []time.Duration{time.Second, 2 * time.Second}
	cfg.Timeout = 5 * time.Second
	for _, c := range configure {
		c(&cfg)
	}
	f.cfg = cfg

	f.svc, err = NewService(cfg, Deps{
		Store:    st,
		SQS:      env.Clients.SQS,
		Resolver: f.resolver,
		Logger:   slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// startPoller runs a localrun.QueuePoller over the deliveries queue with
// the sender as its handler until the test ends.
func (f *fixture) startPoller(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	poller := localrun.NewQueuePoller(f.sqs, f.queueURL, NewSender(f.svc).Handle, localrun.QueueOptions{
		WaitTime: time.Second,
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := poller.Run(ctx); err != nil {
			t.Errorf("queue poller: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func personal(userID string) *authn.Caller {
	return &authn.Caller{Kind: authn.KindSession, UserID: userID, WorkspaceID: userID}
}

func member(orgID, userID, role string) *authn.Caller {
	return &authn.Caller{Kind: authn.KindSession, UserID: userID, WorkspaceID: orgID, Role: role}
}

// addMember writes a membership item as package orgs does, so the
// notification of a disabled endpoint finds the organization's managers.
func (f *fixture) addMember(t *testing.T, orgID, userID, role string) {
	t.Helper()
	key := store.MemberKey(orgID, userID)
	item, err := attributevalue.MarshalMap(map[string]any{
		"PK": key.PK, "SK": key.SK, "entity": "membership", "org_id": orgID, "user_id": userID, "role": role,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.env.TableName), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// create makes an endpoint through the service and fails the test on error.
func (f *fixture) create(t *testing.T, caller *authn.Caller, url string, eventTypes ...string) NewEndpoint {
	t.Helper()
	in := CreateInput{URL: url, Description: "test receiver"}
	if len(eventTypes) > 0 {
		in.Events = eventTypes
	}
	ep, err := f.svc.Create(context.Background(), caller, in)
	if err != nil {
		t.Fatalf("create endpoint %s: %v", url, err)
	}
	return ep
}

// event returns an envelope.completed event of the workspace, made now.
func (f *fixture) event(t *testing.T, workspaceID string) events.Event {
	t.Helper()
	e, err := events.New(events.EnvelopeCompleted, workspaceID, map[string]any{
		"envelope_id": ids.New(ids.Envelope), "title": "Lease", "workspace_id": workspaceID, "status": "completed",
	}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// delivery reads a delivery item.
func (f *fixture) delivery(t *testing.T, endpointID, deliveryID string) deliveryItem {
	t.Helper()
	var d deliveryItem
	if err := f.store.Get(context.Background(), store.WebhookDeliveryKey(endpointID, deliveryID), &d); err != nil {
		t.Fatalf("get delivery %s: %v", deliveryID, err)
	}
	return d
}

// deliveries reads every delivery item of an endpoint.
func (f *fixture) deliveries(t *testing.T, endpointID string) []deliveryItem {
	t.Helper()
	var out []deliveryItem
	if _, err := f.store.QueryPage(context.Background(), store.Query{
		Partition: store.WebhookDeliveriesPK(endpointID),
		SKPrefix:  store.WebhookDeliverySKPrefix(),
		Limit:     100,
	}, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// endpointItem reads an endpoint item.
func (f *fixture) endpointItem(t *testing.T, workspaceID, endpointID string) endpointItem {
	t.Helper()
	var it endpointItem
	if err := f.store.Get(context.Background(), store.WebhookKey(workspaceID, endpointID), &it); err != nil {
		t.Fatalf("get endpoint %s: %v", endpointID, err)
	}
	return it
}

// waitDelivery polls the delivery until cond holds or timeout passes.
func (f *fixture) waitDelivery(t *testing.T, endpointID, deliveryID string, timeout time.Duration, cond func(deliveryItem) bool) deliveryItem {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := f.delivery(t, endpointID, deliveryID)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s after %s: status %s, %d attempts; condition not met", deliveryID, timeout, d.Status, d.AttemptCount)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEndpoint polls the endpoint until cond holds or timeout passes.
func (f *fixture) waitEndpoint(t *testing.T, workspaceID, endpointID string, timeout time.Duration, cond func(endpointItem) bool) endpointItem {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		it := f.endpointItem(t, workspaceID, endpointID)
		if cond(it) {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s after %s: enabled %v, %d failures; condition not met", endpointID, timeout, it.Enabled, it.ConsecutiveFailures)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statusIs(status string) func(deliveryItem) bool {
	return func(d deliveryItem) bool { return d.Status == status }
}

// receiveAll drains a queue and returns the bodies of its messages,
// deleting them. It stops after a receive that returns nothing.
func (f *fixture) receiveAll(t *testing.T, queueURL string, wait time.Duration) []string {
	t.Helper()
	var bodies []string
	deadline := time.Now().Add(wait)
	for {
		out, err := f.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:            &queueURL,
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := f.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: &queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		if len(out.Messages) == 0 && time.Now().After(deadline) {
			return bodies
		}
	}
}

// queueDepth returns the number of visible and in-flight messages.
func (f *fixture) queueDepth(t *testing.T, queueURL string) int {
	t.Helper()
	out, err := f.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		var k int
		if err := json.Unmarshal([]byte(v), &k); err == nil {
			n += k
		}
	}
	return n
}

// receivedRequest is a request that a receiver got.
type receivedRequest struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an HTTP server on 127.0.0.1 that records requests and
// responds to each with respond.
type receiver struct {
	server  *httptest.Server
	mu      sync.Mutex
	got     []receivedRequest
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, receivedRequest{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		rc.respond(w, r, body)
	}))
	t.Cleanup(rc.server.Close)
	return rc
}

// statusReceiver responds to every request with the status.
func statusReceiver(t *testing.T, status int) *receiver {
	return newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	})
}

func (rc *receiver) url() string { return rc.server.URL + "/hook" }

func (rc *receiver) requests() []receivedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedRequest(nil), rc.got...)
}

// httpResponse is a response of the routes.
type httpResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// withCaller replaces the session middleware in tests. It puts caller on
// the request's context.
func withCaller(caller *authn.Caller) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), caller)))
		})
	}
}

// serve sends one request through the routes as caller.
func (f *fixture) serve(t *testing.T, caller *authn.Caller, method, path, body string) httpResponse {
	t.Helper()
	mux, err := httpapi.NewMux(Routes(Handlers{Service: f.svc}, withCaller(caller), withCaller(caller)))
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, reader)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	res := httpResponse{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %s", method, path, res.raw)
		}
	}
	return res
}

func wantStatus(t *testing.T, res httpResponse, status int) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status = %d; want %d (body %s)", res.status, status, res.raw)
	}
}

func wantProblem(t *testing.T, res httpResponse, status int, code, field string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d; want %d (body %s)", res.status, status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Errorf("Content-Type = %q; want %s", ct, httpapi.ProblemContentType)
	}
	if res.body["code"] != code {
		t.Errorf("code = %v; want %q (body %s)", res.body["code"], code, res.raw)
	}
	if field != "" && res.body["field"] != field {
		t.Errorf("field = %v; want %q", res.body["field"], field)
	}
}

// countEndpoints returns the number of endpoint items in the workspace.
func (f *fixture) countEndpoints(t *testing.T, workspaceID string) int {
	t.Helper()
	var items []endpointItem
	if _, err := f.store.QueryPage(context.Background(), store.Query{
		Partition: store.WorkspacePK(workspaceID),
		SKPrefix:  store.WebhookSKPrefix(),
		Limit:     100,
	}, &items); err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// notifications returns the notification items of a user.
func (f *fixture) notifications(t *testing.T, userID string) []notificationItem {
	t.Helper()
	var items []notificationItem
	if _, err := f.store.QueryPage(context.Background(), store.Query{
		Partition: store.UserPK(userID),
		SKPrefix:  store.NotificationSKPrefix(),
		Limit:     100,
	}, &items); err != nil {
		t.Fatal(err)
	}
	return items
}

// unread returns the user's unread notification counter.
func (f *fixture) unread(t *testing.T, userID string) int {
	t.Helper()
	var counter struct {
		Unread int `dynamodbav:"unread"`
	}
	err := f.store.Get(context.Background(), store.UnreadNotificationsKey(userID), &counter)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return counter.Unread
}
