package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/notify"
)

func TestFanoutQueuesOneDeliveryPerSubscribedEndpoint(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	subscribed := f.create(t, caller, "http://127.0.0.1:9/all")
	byType := f.create(t, caller, "http://127.0.0.1:9/completed", events.EnvelopeCompleted)
	otherType := f.create(t, caller, "http://127.0.0.1:9/sent", events.EnvelopeSent)
	disabled := f.create(t, caller, "http://127.0.0.1:9/disabled")
	if _, err := f.svc.Update(context.Background(), caller, disabled.ID, UpdateInput{Enabled: new(false)}); err != nil {
		t.Fatal(err)
	}
	otherWorkspace := f.create(t, personal(ids.New(ids.User)), "http://127.0.0.1:9/other")

	e := f.event(t, caller.WorkspaceID)
	fanout := NewFanout(f.svc)
	if fanout.Name() != "webhooks" {
		t.Errorf("Name = %q; want webhooks", fanout.Name())
	}
	// The dispatcher may hand over the same stream record again.
	dispatcher := notify.NewDispatcher(slog.New(slog.NewJSONHandler(io.Discard, nil)), fanout)
	for range 2 {
		if err := dispatcher.Dispatch(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	for _, tt := range []struct {
		name string
		id   string
		want int
	}{
		{"subscribed to *", subscribed.ID, 1},
		{"subscribed to the type", byType.ID, 1},
		{"subscribed to another type", otherType.ID, 0},
		{"disabled", disabled.ID, 0},
		{"another workspace", otherWorkspace.ID, 0},
	} {
		if got := len(f.deliveries(t, tt.id)); got != tt.want {
			t.Errorf("%s: deliveries = %d; want %d", tt.name, got, tt.want)
		}
	}

	d := f.deliveries(t, subscribed.ID)[0]
	if d.ID != deliveryID(e.ID, subscribed.ID, e.Timestamp) || d.EventID != e.ID || d.Status != StatusPending || d.EnqueuedAt == "" {
		t.Errorf("delivery = %+v; want the derived id, the event id, pending and enqueued", d)
	}
	bodies := f.receiveAll(t, f.queueURL, time.Second)
	if len(bodies) != 2 {
		t.Fatalf("queue messages = %d; want 2 (one per delivery): %v", len(bodies), bodies)
	}
	for _, body := range bodies {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 3 || m["delivery_id"] == nil || m["endpoint_id"] == nil || m["round"] != float64(1) {
			t.Errorf("message body = %s; want only endpoint_id, delivery_id and round", body)
		}
	}
}

func TestFanoutSkipsSecurityEvents(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "http://127.0.0.1:9/all")
	e, err := events.New(events.NewLogin, caller.WorkspaceID, map[string]string{"user_id": caller.UserID, "ip": "203.0.113.9"}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if n := len(f.deliveries(t, ep.ID)); n != 0 {
		t.Errorf("deliveries of security.new_login = %d; want 0", n)
	}
}

func TestDeliverySignedAndVerifiedByReceiver(t *testing.T) {
	f := newFixture(t)
	var secret string
	verified := make(chan error, 10)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		verified <- err
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url(), events.EnvelopeCompleted)
	secret = ep.Secret
	f.startPoller(t)

	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	d := f.waitDelivery(t, ep.ID, id, 10*time.Second, statusIs(StatusSucceeded))

	if err := <-verified; err != nil {
		t.Errorf("receiver verification: %v", err)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("requests = %d; want 1", len(got))
	}
	req := got[0]
	if req.header.Get("webhook-id") != id {
		t.Errorf("webhook-id = %q; want the delivery id %s", req.header.Get("webhook-id"), id)
	}
	if req.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", req.header.Get("Content-Type"))
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 3 || string(body["type"]) != `"envelope.completed"` {
		t.Errorf("payload = %s; want exactly type, timestamp and data", req.body)
	}
	var data map[string]any
	if err := json.Unmarshal(body["data"], &data); err != nil || data["title"] != "Lease" {
		t.Errorf("payload data = %s; want the event data", body["data"])
	}

	if d.AttemptCount != 1 || len(d.Attempts) != 1 {
		t.Fatalf("attempts = %d (%d logged); want 1", d.AttemptCount, len(d.Attempts))
	}
	a := d.Attempts[0]
	if a.StatusCode != http.StatusOK || a.Error != "" || a.ResponseExcerpt != `{"received":true}` || a.NextAttemptAt != "" {
		t.Errorf("attempt = %+v; want 200, no error, the response excerpt and no next attempt", a)
	}
	if it := f.waitEndpoint(t, caller.WorkspaceID, ep.ID, 5*time.Second, func(it endpointItem) bool { return it.LastSuccessAt != "" }); it.ConsecutiveFailures != 0 {
		t.Errorf("endpoint after success: last_success_at %q, failures %d", it.LastSuccessAt, it.ConsecutiveFailures)
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Error("the logs contain the signing secret")
	}
}

func TestFailingReceiverGetsThreeAttempts(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusInternalServerError)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	f.startPoller(t)

	d := f.waitDelivery(t, ep.ID, id, 20*time.Second, statusIs(StatusFailed))
	dead := f.receiveAll(t, f.dlqURL, 5*time.Second)

	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests; want exactly 3", len(got))
	}
	for i, r := range got {
		if r.header.Get("webhook-id") != id {
			t.Errorf("request %d: webhook-id = %q; want %s on every attempt", i+1, r.header.Get("webhook-id"), id)
		}
	}
	// Retry delays are 1 s and 2 s in this fixture; SQS counts whole seconds.
	if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
		t.Errorf("second attempt came %s after the first; want at least 1s", gap)
	}
	if gap := got[2].at.Sub(got[1].at); gap < 1900*time.Millisecond {
		t.Errorf("third attempt came %s after the second; want at least 2s", gap)
	}

	if d.AttemptCount != 3 || len(d.Attempts) != 3 {
		t.Fatalf("attempts = %d (%d logged); want 3", d.AttemptCount, len(d.Attempts))
	}
	for i, a := range d.Attempts {
		if a.Number != i+1 || a.StatusCode != http.StatusInternalServerError || !strings.Contains(a.Error, "500") {
			t.Errorf("attempt %d = %+v; want number %d, status 500 and an error", i+1, a, i+1)
		}
		if last := i == 2; (a.NextAttemptAt == "") != last {
			t.Errorf("attempt %d: next_attempt_at = %q; want it set on every attempt but the last", i+1, a.NextAttemptAt)
		}
	}
	if d.NextAttemptAt != "" || d.CompletedAt == "" || d.LastStatusCode != http.StatusInternalServerError {
		t.Errorf("delivery = next %q, completed %q, last status %d; want no next attempt, completed, 500", d.NextAttemptAt, d.CompletedAt, d.LastStatusCode)
	}

	if len(dead) != 1 || !strings.Contains(dead[0], id) {
		t.Errorf("dead-letter queue messages = %v; want the delivery's message", dead)
	}
	if n := f.queueDepth(t, f.queueURL); n != 0 {
		t.Errorf("deliveries queue still holds %d messages; want 0", n)
	}
	if len(rc.requests()) != 3 {
		t.Errorf("receiver got %d requests after the message moved; want 3", len(rc.requests()))
	}
	it := f.waitEndpoint(t, caller.WorkspaceID, ep.ID, 5*time.Second, func(it endpointItem) bool { return it.ConsecutiveFailures > 0 })
	if it.ConsecutiveFailures != 1 || it.FailingSince == "" || !it.Enabled {
		t.Errorf("endpoint after a failed delivery: failures %d, failing since %q, enabled %v", it.ConsecutiveFailures, it.FailingSince, it.Enabled)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusGone)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	f.startPoller(t)

	d := f.waitDelivery(t, ep.ID, id, 10*time.Second, statusIs(StatusFailed))
	time.Sleep(2500 * time.Millisecond) // longer than the first retry delay
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests; want 1, with no retry after 410", n)
	}
	if d.AttemptCount != 1 || d.LastStatusCode != http.StatusGone {
		t.Errorf("delivery: %d attempts, last status %d; want 1 and 410", d.AttemptCount, d.LastStatusCode)
	}

	it := f.waitEndpoint(t, caller.WorkspaceID, ep.ID, 5*time.Second, func(it endpointItem) bool { return !it.Enabled })
	if it.DisabledReason != DisabledGone {
		t.Errorf("endpoint: enabled %v, reason %q; want disabled with %s", it.Enabled, it.DisabledReason, DisabledGone)
	}
	notes := f.notifications(t, caller.UserID)
	if len(notes) != 1 || notes[0].Type != NotificationEndpointDisabled || notes[0].Data["webhook_id"] != ep.ID {
		t.Errorf("notifications = %+v; want one %s about %s", notes, NotificationEndpointDisabled, ep.ID)
	}
	if n := f.unread(t, caller.UserID); n != 1 {
		t.Errorf("unread counter = %d; want 1", n)
	}
	if n := f.queueDepth(t, f.queueURL); n != 0 {
		t.Errorf("deliveries queue holds %d messages; want 0", n)
	}

	// A disabled endpoint gets no new deliveries.
	if err := NewFanout(f.svc).Deliver(context.Background(), f.event(t, caller.WorkspaceID)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.deliveries(t, ep.ID)); n != 1 {
		t.Errorf("deliveries after disabling = %d; want 1", n)
	}
}

func TestRotationWindowSignsWithBothSecrets(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusNoContent)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	rotated, err := f.svc.RotateSecret(context.Background(), caller, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.startPoller(t)

	d, err := f.svc.SendTest(context.Background(), caller, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.waitDelivery(t, ep.ID, d.ID, 10*time.Second, statusIs(StatusSucceeded))
	req := rc.requests()[0]
	if n := len(strings.Split(req.header.Get("webhook-signature"), " ")); n != 2 {
		t.Errorf("signatures in the window = %d; want 2", n)
	}
	for name, secret := range map[string]string{"old": ep.Secret, "new": rotated.Secret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(req.body, req.header); err != nil {
			t.Errorf("%s secret: %v", name, err)
		}
	}

	f.clock.Advance(25 * time.Hour)
	d, err = f.svc.SendTest(context.Background(), caller, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.waitDelivery(t, ep.ID, d.ID, 10*time.Second, statusIs(StatusSucceeded))
	req = rc.requests()[1]
	if n := len(strings.Split(req.header.Get("webhook-signature"), " ")); n != 1 {
		t.Errorf("signatures after the window = %d; want 1", n)
	}
	for name, tt := range map[string]struct {
		secret string
		valid  bool
	}{"old": {ep.Secret, false}, "new": {rotated.Secret, true}} {
		wh, err := standardwebhooks.NewWebhook(tt.secret)
		if err != nil {
			t.Fatal(err)
		}
		// The test clock is 25 hours ahead, so the timestamp is not checked.
		if err := wh.VerifyIgnoringTimestamp(req.body, req.header); (err == nil) != tt.valid {
			t.Errorf("%s secret after the window: error %v; want valid = %v", name, err, tt.valid)
		}
	}
}

func TestHTTPTestEventAndRedeliver(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url(), events.EnvelopeSent)
	base := "/v1/webhooks/" + ep.ID

	res := f.serve(t, caller, "POST", base+"/test", "")
	wantStatus(t, res, http.StatusAccepted)
	deliveryID, _ := res.body["id"].(string)
	if res.body["trigger"] != TriggerTest || res.body["event_type"] != TestEventType || res.body["status"] != StatusPending {
		t.Errorf("test delivery = %s", res.raw)
	}
	// A redelivery before the attempts are over is refused.
	res = f.serve(t, caller, "POST", base+"/deliveries/"+deliveryID+"/redeliver", "")
	wantProblem(t, res, http.StatusConflict, "delivery_pending", "")

	f.startPoller(t)
	f.waitDelivery(t, ep.ID, deliveryID, 10*time.Second, statusIs(StatusSucceeded))
	first := rc.requests()[0]
	var body struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(first.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != TestEventType || body.Data["webhook_id"] != ep.ID {
		t.Errorf("test payload = %s", first.body)
	}

	res = f.serve(t, caller, "POST", base+"/deliveries/"+deliveryID+"/redeliver", "")
	wantStatus(t, res, http.StatusAccepted)
	d := f.waitDelivery(t, ep.ID, deliveryID, 10*time.Second, func(d deliveryItem) bool {
		return d.Status == StatusSucceeded && d.AttemptCount == 2
	})
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests; want 2", len(got))
	}
	if got[1].header.Get("webhook-id") != deliveryID || string(got[1].body) != string(first.body) {
		t.Error("the redelivery changed the webhook-id or the payload")
	}
	if d.Round != 2 || d.RequestedBy != caller.UserID || d.RedeliveredAt == "" {
		t.Errorf("delivery after redelivery: round %d, requested by %q, redelivered at %q", d.Round, d.RequestedBy, d.RedeliveredAt)
	}

	list := f.serve(t, caller, "GET", base+"/deliveries?status=succeeded", "")
	wantStatus(t, list, http.StatusOK)
	if data, _ := list.body["data"].([]any); len(data) != 1 {
		t.Errorf("succeeded deliveries = %d; want 1 (%s)", len(data), list.raw)
	}
	list = f.serve(t, caller, "GET", base+"/deliveries?status=failed", "")
	if data, _ := list.body["data"].([]any); len(data) != 0 {
		t.Errorf("failed deliveries = %d; want 0", len(data))
	}
	res = f.serve(t, caller, "GET", base+"/deliveries?status=lost", "")
	wantProblem(t, res, http.StatusBadRequest, "invalid_status", "status")

	detail := f.serve(t, caller, "GET", base+"/deliveries/"+deliveryID, "")
	wantStatus(t, detail, http.StatusOK)
	attempts, _ := detail.body["attempts"].([]any)
	if len(attempts) != 2 {
		t.Fatalf("attempts in the detail = %d; want 2", len(attempts))
	}
	a, _ := attempts[1].(map[string]any)
	for _, key := range []string{"number", "at", "status_code", "error", "latency_ms", "response_excerpt", "next_attempt_at"} {
		if _, ok := a[key]; !ok {
			t.Errorf("attempt lacks %q: %v", key, a)
		}
	}
	if a["status_code"] != float64(200) || a["number"] != float64(2) {
		t.Errorf("second attempt = %v", a)
	}
	if detail.body["payload"] == nil {
		t.Error("the detail lacks the payload")
	}
}

func TestDeliveryListPagination(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "http://127.0.0.1:9/hook")
	for range 5 {
		if err := NewFanout(f.svc).Deliver(context.Background(), f.event(t, caller.WorkspaceID)); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Millisecond)
	}

	seen := map[string]bool{}
	var order []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/webhooks/" + ep.ID + "/deliveries?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := f.serve(t, caller, "GET", path, "")
		wantStatus(t, res, http.StatusOK)
		data, _ := res.body["data"].([]any)
		for _, item := range data {
			id := item.(map[string]any)["id"].(string)
			seen[id] = true
			order = append(order, id)
		}
		next, _ := res.body["next_cursor"].(string)
		if next == "" || page > 5 {
			break
		}
		cursor = next
	}
	if len(seen) != 5 || len(order) != 5 {
		t.Errorf("listed %d deliveries (%d distinct); want 5", len(order), len(seen))
	}
	for i := 1; i < len(order); i++ {
		if order[i] > order[i-1] {
			t.Errorf("deliveries not newest first: %v", order)
			break
		}
	}
	res := f.serve(t, caller, "GET", "/v1/webhooks/"+ep.ID+"/deliveries?cursor=forged", "")
	wantProblem(t, res, http.StatusBadRequest, "invalid_cursor", "cursor")
}

func TestSucceededDeliveryIsNotSentAgain(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	sender := NewSender(f.svc)
	msg := lambdaevents.SQSMessage{
		MessageId:  "m-1",
		Body:       fmt.Sprintf(`{"endpoint_id":%q,"delivery_id":%q,"round":1}`, ep.ID, id),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}
	for i := range 3 {
		resp, err := sender.Handle(context.Background(), lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{msg}})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("handle %d: %v, failures %v", i+1, err, resp.BatchItemFailures)
		}
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests; want 1", n)
	}
	if d := f.delivery(t, ep.ID, id); d.AttemptCount != 1 || d.Status != StatusSucceeded {
		t.Errorf("delivery: %d attempts, %s; want 1, succeeded", d.AttemptCount, d.Status)
	}
}

func TestConcurrentMessagesOfOneDeliveryAttemptOnce(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	sender := NewSender(f.svc)
	body := fmt.Sprintf(`{"endpoint_id":%q,"delivery_id":%q,"round":1}`, ep.ID, id)

	const handlers = 4
	results := make(chan int, handlers)
	for i := range handlers {
		go func() {
			msg := lambdaevents.SQSMessage{MessageId: strconv.Itoa(i), Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
			resp, _ := sender.Handle(context.Background(), lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{msg}})
			results <- len(resp.BatchItemFailures)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	close(release)
	for range handlers {
		<-results
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests from %d concurrent messages; want 1", n, handlers)
	}
	if d := f.delivery(t, ep.ID, id); d.AttemptCount != 1 || d.Status != StatusSucceeded {
		t.Errorf("delivery: %d attempts, %s; want 1, succeeded", d.AttemptCount, d.Status)
	}
}

func TestDeliveryToDisabledOrDeletedEndpointFails(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))
	disabled := f.create(t, caller, rc.url())
	deleted := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(context.Background(), caller, disabled.ID, UpdateInput{Enabled: new(false)}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(context.Background(), caller, deleted.ID); err != nil {
		t.Fatal(err)
	}
	f.startPoller(t)

	for name, ep := range map[string]NewEndpoint{"disabled": disabled, "deleted": deleted} {
		d := f.waitDelivery(t, ep.ID, deliveryID(e.ID, ep.ID, e.Timestamp), 10*time.Second, statusIs(StatusFailed))
		if d.AttemptCount != 0 || !strings.Contains(d.LastError, name) {
			t.Errorf("%s endpoint: %d attempts, last error %q; want none and an error naming %s", name, d.AttemptCount, d.LastError, name)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests; want 0", n)
	}
}

func TestDeliveryRechecksResolvedAddress(t *testing.T) {
	// Loopback is not allowed here, and https is required.
	f := newFixture(t, func(c *Config) { c.AllowInsecureLoopback = false })
	// The name is public when the endpoint is created and points to
	// loopback when the delivery is made.
	f.resolver.set("rebind.example", "93.184.215.14")
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "https://rebind.example/hook")
	f.resolver.set("rebind.example", "127.0.0.1")

	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	msg := lambdaevents.SQSMessage{
		MessageId:  "m-1",
		Body:       fmt.Sprintf(`{"endpoint_id":%q,"delivery_id":%q,"round":1}`, ep.ID, id),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}
	resp, err := NewSender(f.svc).Handle(context.Background(), lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{msg}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("handle: %v, failures %v; want the message reported for a retry", err, resp.BatchItemFailures)
	}
	d := f.delivery(t, ep.ID, id)
	if d.Status != StatusPending || len(d.Attempts) != 1 {
		t.Fatalf("delivery: %s with %d attempts; want pending with 1", d.Status, len(d.Attempts))
	}
	if a := d.Attempts[0]; a.StatusCode != 0 || !strings.Contains(a.Error, "not allowed") || !strings.Contains(a.Error, "loopback") {
		t.Errorf("attempt = %+v; want no status and an address error", a)
	}
	if n := f.resolver.lookupCount("rebind.example"); n != 2 {
		t.Errorf("lookups = %d; want 2 (creation and delivery)", n)
	}
}

func TestAutomaticDisablingAfterFailureStreak(t *testing.T) {
	// Each delivery has one attempt here, so each failed message is one
	// failed delivery.
	f := newFixture(t, func(c *Config) {
		c.MaxAttempts = 1
		c.RetryDelays = nil
		c.DisableAfterFailures = 3
		c.DisableAfterPeriod = 24 * time.Hour
	})
	rc := statusReceiver(t, http.StatusServiceUnavailable)
	orgID := ids.New(ids.Organization)
	owner, admin, plain := ids.New(ids.User), ids.New(ids.User), ids.New(ids.User)
	f.addMember(t, orgID, owner, authn.RoleOwner)
	f.addMember(t, orgID, admin, authn.RoleAdmin)
	f.addMember(t, orgID, plain, authn.RoleMember)
	caller := member(orgID, owner, authn.RoleOwner)
	ep := f.create(t, caller, rc.url())
	f.startPoller(t)

	failures := 0
	fail := func(advance time.Duration) {
		t.Helper()
		f.clock.Advance(advance)
		e := f.event(t, orgID)
		if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		f.waitDelivery(t, ep.ID, deliveryID(e.ID, ep.ID, e.Timestamp), 10*time.Second, statusIs(StatusFailed))
		// The sender counts the failure in the streak after it records
		// the delivery's status.
		failures++
		f.waitEndpoint(t, orgID, ep.ID, 10*time.Second, func(it endpointItem) bool {
			return it.ConsecutiveFailures == failures
		})
	}

	// Three failures within two hours: enough deliveries, too short a time.
	fail(0)
	fail(time.Hour)
	fail(time.Hour)
	it := f.endpointItem(t, orgID, ep.ID)
	if !it.Enabled || it.ConsecutiveFailures != 3 {
		t.Fatalf("after 3 failures in 2h: enabled %v, failures %d; want enabled, 3", it.Enabled, it.ConsecutiveFailures)
	}

	// The fourth failure comes 25 hours after the first.
	fail(23 * time.Hour)
	it = f.waitEndpoint(t, orgID, ep.ID, 10*time.Second, func(it endpointItem) bool { return !it.Enabled })
	if it.Enabled || it.DisabledReason != DisabledFailing || it.ConsecutiveFailures != 4 {
		t.Fatalf("after 4 failures in 25h: enabled %v, reason %q, failures %d; want disabled for repeated failures", it.Enabled, it.DisabledReason, it.ConsecutiveFailures)
	}
	for _, tt := range []struct {
		userID string
		want   int
	}{{owner, 1}, {admin, 1}, {plain, 0}} {
		notes := f.notifications(t, tt.userID)
		if len(notes) != tt.want || f.unread(t, tt.userID) != tt.want {
			t.Errorf("user %s: %d notifications, unread %d; want %d", tt.userID, len(notes), f.unread(t, tt.userID), tt.want)
		}
		for _, n := range notes {
			if n.Type != NotificationEndpointDisabled || !strings.Contains(n.Body, rc.url()) || n.Data["reason"] != DisabledFailing {
				t.Errorf("notification = %+v", n)
			}
		}
	}

	// Enabling clears the streak.
	enabled, err := f.svc.Update(context.Background(), caller, ep.ID, UpdateInput{Enabled: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	if enabled.ConsecutiveFailures != 0 || enabled.FailingSince != nil || enabled.DisabledReason != nil {
		t.Errorf("after enabling: %+v; want no streak and no reason", enabled)
	}
}

func TestPayloadLeavesOutSecretLikeFields(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	e, err := events.New(events.EnvelopeSent, ids.New(ids.User), map[string]any{
		"envelope_id":   "env_1",
		"signing_token": "tok-value-1",
		"recipients":    []any{map[string]any{"id": "rcp_1", "Password": "pw-value-2"}},
		"nested":        map[string]any{"api_secret": "secret-value-3", "kept": 1},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, err := payloadOf(e, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"tok-value-1", "pw-value-2", "secret-value-3"} {
		if strings.Contains(string(body), value) {
			t.Errorf("payload contains %q: %s", value, body)
		}
		if strings.Contains(logs.String(), value) {
			t.Errorf("logs contain %q", value)
		}
	}
	for _, kept := range []string{`"envelope_id":"env_1"`, `"kept":1`, `"id":"rcp_1"`} {
		if !strings.Contains(string(body), kept) {
			t.Errorf("payload lacks %s: %s", kept, body)
		}
	}
	if !strings.Contains(logs.String(), "data.signing_token") {
		t.Errorf("logs do not name the dropped field: %s", logs.String())
	}
}

func TestLastReceiveErrorMarksDeliveryFailed(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	e := f.event(t, caller.WorkspaceID)
	if err := NewFanout(f.svc).Deliver(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	id := deliveryID(e.ID, ep.ID, e.Timestamp)
	// A cancelled context makes every table call of the attempt fail.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sender := NewSender(f.svc)

	for _, tt := range []struct {
		receives string
		want     string
	}{{"1", StatusPending}, {"3", StatusFailed}} {
		msg := lambdaevents.SQSMessage{
			MessageId:  "m-" + tt.receives,
			Body:       fmt.Sprintf(`{"endpoint_id":%q,"delivery_id":%q,"round":1}`, ep.ID, id),
			Attributes: map[string]string{"ApproximateReceiveCount": tt.receives},
		}
		resp, err := sender.Handle(ctx, lambdaevents.SQSEvent{Records: []lambdaevents.SQSMessage{msg}})
		if err != nil || len(resp.BatchItemFailures) != 1 {
			t.Fatalf("receive %s: %v, failures %v; want the message reported", tt.receives, err, resp.BatchItemFailures)
		}
		if d := f.delivery(t, ep.ID, id); d.Status != tt.want || d.AttemptCount != 0 {
			t.Errorf("after receive %s: %s with %d attempts; want %s with none", tt.receives, d.Status, d.AttemptCount, tt.want)
		}
	}
	if d := f.delivery(t, ep.ID, id); !strings.Contains(d.LastError, "redeliver") {
		t.Errorf("last error = %q; want it to say to redeliver", d.LastError)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests; want 0", n)
	}
}
