package apidoc_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/signsecure/signsecure/pkg/apidoc"
	"github.com/signsecure/signsecure/pkg/webhooks"
)

// webhookReceiver is an endpoint on loopback that records the requests of
// deliveries and responds with 204, or with 410 Gone on the path /gone.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	received []receivedDelivery
}

type receivedDelivery struct {
	header http.Header
	body   []byte
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	rc := &webhookReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.received = append(rc.received, receivedDelivery{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// take returns the deliveries received since the last call.
func (rc *webhookReceiver) take() []receivedDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.received
	rc.received = nil
	return out
}

// sendQueued receives the messages on the deliveries queue and hands them
// to the sender, as the queue's event source mapping does, deleting the
// ones the sender does not report as failed.
func (f *flow) sendQueued(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	queue := f.api.env.Queues["WebhookDeliveriesQueue"].URL
	sender := webhooks.NewSender(f.api.app.Webhooks)
	for {
		out, err := f.api.env.Clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &queue,
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("receive webhook deliveries: %v", err)
		}
		if len(out.Messages) == 0 {
			return
		}
		var ev lambdaevents.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, lambdaevents.SQSMessage{MessageId: *m.MessageId, ReceiptHandle: *m.ReceiptHandle, Body: *m.Body, Attributes: m.Attributes})
		}
		resp, err := sender.Handle(ctx, ev)
		if err != nil {
			t.Fatalf("send webhook deliveries: %v", err)
		}
		if len(resp.BatchItemFailures) > 0 {
			t.Fatalf("webhook deliveries failed: %v", resp.BatchItemFailures)
		}
		for _, m := range out.Messages {
			if _, err := f.api.env.Clients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete webhook delivery message: %v", err)
			}
		}
	}
}

// checkReceived validates each received delivery body against the
// document's webhooks and returns the event types received.
func checkReceived(t *testing.T, received []receivedDelivery) []string {
	t.Helper()
	var types []string
	for _, d := range received {
		var top struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(d.body, &top); err != nil {
			t.Errorf("delivery body is not JSON: %v: %s", err, d.body)
			continue
		}
		types = append(types, top.Type)
		if err := apidoc.ValidateWebhookPayload(top.Type, d.body); err != nil {
			t.Errorf("delivered %s payload: %v\nbody: %s", top.Type, err, d.body)
		}
		for _, name := range []string{webhooks.HeaderID, webhooks.HeaderTimestamp, webhooks.HeaderSignature} {
			if d.header.Get(name) == "" {
				t.Errorf("delivered %s has no %s header", top.Type, name)
			}
		}
	}
	return types
}

func (f *flow) webhooks(t *testing.T) {
	rc := newWebhookReceiver(t)
	wantProblem(t, f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"`+rc.srv.URL+`"}`, "Idempotency-Key", "hook-1"), 400, "idempotency_unsupported")
	wantProblem(t, f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"ftp://example.com/hook"}`), 400, "invalid_url")
	wantProblem(t, f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"`+rc.srv.URL+`","events":["security.new_login"]}`), 400, "invalid_events")
	created := f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"`+rc.srv.URL+`/hook","description":"ops","events":["*"]}`)
	wantStatus(t, created, http.StatusCreated)
	hook := "/v1/webhooks/" + field(created.body, "id")

	wantStatus(t, f.send(t, "GET", "/v1/webhooks", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", hook, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", hook, f.bob, nil), 404, "webhook_not_found")
	wantStatus(t, f.send(t, "PATCH", hook, f.ada, `{"description":"ops team","events":["envelope.completed","billing.purchase_completed"]}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", hook, f.ada, `{}`), 400, "empty_update")
	wantStatus(t, f.send(t, "PATCH", hook, f.ada, `{"events":["*"]}`), http.StatusOK)
	wantStatus(t, f.send(t, "GET", hook+"/secret", f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "POST", hook+"/rotate-secret", f.ada, nil, "Idempotency-Key", "rotate-1"), 400, "idempotency_unsupported")
	wantStatus(t, f.send(t, "POST", hook+"/rotate-secret", f.ada, nil), http.StatusOK)

	test := f.send(t, "POST", hook+"/test", f.ada, nil)
	wantStatus(t, test, http.StatusAccepted)
	f.sendQueued(t)
	got := rc.take()
	if types := checkReceived(t, got); len(types) != 1 || types[0] != webhooks.TestEventType {
		t.Fatalf("deliveries after the test event = %v; want one %s", types, webhooks.TestEventType)
	}
	if sigs := strings.Fields(got[0].header.Get(webhooks.HeaderSignature)); len(sigs) != 2 {
		t.Errorf("signatures within the rotation window = %d; want 2, by the new and the previous secret", len(sigs))
	}

	deliveries := f.send(t, "GET", hook+"/deliveries", f.ada, nil)
	wantStatus(t, deliveries, http.StatusOK)
	wantProblem(t, f.send(t, "GET", hook+"/deliveries?status=lost", f.ada, nil), 400, "invalid_status")
	delivery := hook + "/deliveries/" + field(test.body, "id")
	detail := f.send(t, "GET", delivery, f.ada, nil)
	wantStatus(t, detail, http.StatusOK)
	if field(detail.body, "status") != webhooks.StatusSucceeded {
		t.Errorf("test delivery status = %q; want succeeded", field(detail.body, "status"))
	}
	wantProblem(t, f.send(t, "GET", hook+"/deliveries/dlv_unknown", f.ada, nil), 404, "delivery_not_found")
	wantStatus(t, f.send(t, "POST", delivery+"/redeliver", f.ada, nil), http.StatusAccepted)
	wantProblem(t, f.send(t, "POST", delivery+"/redeliver", f.ada, nil), 409, "delivery_pending")
	f.sendQueued(t)
	checkReceived(t, rc.take())

	// The events of Ada's personal workspace and of the organization,
	// fanned out as the dispatcher does and posted by the sender, each
	// validated as received.
	orgWide := "X-Workspace-Id"
	wantProblem(t, f.send(t, "POST", "/v1/webhooks", f.carol, `{"url":"`+rc.srv.URL+`/org"}`, orgWide, f.orgID), 403, "insufficient_role")
	orgHook := f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"`+rc.srv.URL+`/org"}`, orgWide, f.orgID)
	wantStatus(t, orgHook, http.StatusCreated)
	fanout := webhooks.NewFanout(f.api.app.Webhooks)
	for _, e := range outboxEvents(t, f.api) {
		if (e.WorkspaceID != f.adaID && e.WorkspaceID != f.orgID) || !webhooks.Deliverable(e.Type) {
			continue
		}
		if err := fanout.Deliver(context.Background(), e); err != nil {
			t.Fatalf("fan out %s event %s: %v", e.Type, e.ID, err)
		}
	}
	f.sendQueued(t)
	types := strings.Join(checkReceived(t, rc.take()), " ")
	for _, want := range []string{"envelope.created", "envelope.sent", "envelope.signed", "envelope.completed", "envelope.rejected",
		"billing.purchase_completed", "organization.invitation_received", "organization.member_joined",
		"organization.member_left", "organization.member_role_changed"} {
		if !strings.Contains(types, want) {
			t.Errorf("delivered event types %v lack %s", types, want)
		}
	}

	// An endpoint that responds with 410 Gone is disabled, and the
	// managers get a webhook.endpoint_disabled notification.
	goneHook := f.send(t, "POST", "/v1/webhooks", f.ada, `{"url":"`+rc.srv.URL+`/gone"}`)
	wantStatus(t, goneHook, http.StatusCreated)
	wantStatus(t, f.send(t, "POST", "/v1/webhooks/"+field(goneHook.body, "id")+"/test", f.ada, nil), http.StatusAccepted)
	f.sendQueued(t)
	checkReceived(t, rc.take())
	disabled := f.send(t, "GET", "/v1/webhooks/"+field(goneHook.body, "id"), f.ada, nil)
	wantStatus(t, disabled, http.StatusOK)
	if field(disabled.body, "disabled_reason") != "endpoint_gone" {
		t.Errorf("disabled_reason after 410 Gone = %q; want endpoint_gone", field(disabled.body, "disabled_reason"))
	}
	notes := f.send(t, "GET", "/v1/notifications?unread=true", f.ada, nil)
	wantStatus(t, notes, http.StatusOK)
	if len(items(notes)) == 0 || field(items(notes)[0], "type") != webhooks.NotificationEndpointDisabled {
		t.Errorf("newest unread notification = %.300s; want %s", notes.raw, webhooks.NotificationEndpointDisabled)
	}

	wantStatus(t, f.send(t, "DELETE", hook, f.ada, nil), http.StatusNoContent)
	wantProblem(t, f.send(t, "GET", hook, f.ada, nil), 404, "webhook_not_found")
}
