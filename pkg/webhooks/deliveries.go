package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/notify"
	"github.com/signsecure/signsecure/pkg/store"
)

// message is the body of a deliveries queue message. It carries ids and
// the round only; the sender reads everything else from the table.
type message struct {
	EndpointID string `json:"endpoint_id"`
	DeliveryID string `json:"delivery_id"`
	Round      int    `json:"round"`
}

// payload is the JSON body that a delivery posts.
type payload struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// endpointPageSize is the page size of the query for an event's endpoints.
const endpointPageSize = 100

// Fanout is the dispatcher's fan-out to webhook endpoints. It implements
// notify.Fanout.
type Fanout struct {
	svc *Service
}

var _ notify.Fanout = (*Fanout)(nil)

// NewFanout returns the fan-out of the service's endpoints.
func NewFanout(svc *Service) *Fanout { return &Fanout{svc: svc} }

// Name returns "webhooks".
func (f *Fanout) Name() string { return "webhooks" }

// Deliver queues the event for each enabled endpoint of its workspace
// that subscribes to its type: one delivery item, whose id is derived from
// the event and endpoint ids, and one queue message per endpoint. An event
// handed over again finds its deliveries queued and queues nothing. Events
// whose type is not deliverable (security.* and unknown types) are
// skipped.
func (f *Fanout) Deliver(ctx context.Context, e events.Event) error {
	if !Deliverable(e.Type) {
		return nil
	}
	if store.WorkspacePK(e.WorkspaceID) == "" {
		return &notify.PermanentError{Err: fmt.Errorf("webhooks: %s event %s has workspace %q, which is not a user or organization id", e.Type, e.ID, e.WorkspaceID)}
	}
	endpoints, err := f.svc.subscribers(ctx, e.WorkspaceID, e.Type)
	if err != nil || len(endpoints) == 0 {
		return err
	}
	body, err := payloadOf(e, f.svc.logger)
	if err != nil {
		return &notify.PermanentError{Err: err}
	}

	now := f.svc.now().UTC()
	var errs []error
	for _, ep := range endpoints {
		d := newDeliveryItem(ep, e.ID, e.Type, e.Timestamp, body, TriggerEvent, "", now)
		if err := f.svc.enqueue(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// subscribers returns the enabled endpoints of the workspace that
// subscribe to the event type.
func (s *Service) subscribers(ctx context.Context, workspaceID, eventType string) ([]endpointItem, error) {
	var out []endpointItem
	cursor := ""
	for {
		var page []endpointItem
		next, err := s.store.QueryPage(ctx, store.Query{
			Partition: store.WorkspacePK(workspaceID),
			SKPrefix:  store.WebhookSKPrefix(),
			Limit:     endpointPageSize,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			return nil, fmt.Errorf("list webhooks of workspace %s: %w", workspaceID, err)
		}
		for _, ep := range page {
			if ep.Enabled && ep.subscribed(eventType) {
				out = append(out, ep)
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// payloadOf returns the request body for an event. Event data must carry
// no secrets. As a second guard, object keys that name a password, secret
// or token are left out at any depth, and logged by name.
func payloadOf(e events.Event, logger *slog.Logger) ([]byte, error) {
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("decode %s event %s data: %w", e.Type, e.ID, err)
	}
	var dropped []string
	scrub(tree, "data", &dropped)
	if len(dropped) > 0 {
		logger.Error("event data has fields that look like secrets; they are left out of webhook payloads",
			"event_id", e.ID, "event_type", e.Type, "fields", dropped)
		var err error
		if data, err = json.Marshal(tree); err != nil {
			return nil, fmt.Errorf("encode %s event %s data: %w", e.Type, e.ID, err)
		}
	}
	body, err := json.Marshal(payload{Type: e.Type, Timestamp: e.Timestamp.UTC(), Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode %s event %s payload: %w", e.Type, e.ID, err)
	}
	return body, nil
}

// scrub deletes, in place, object keys that contain "password", "secret"
// or "token" in any case, and appends their paths to dropped.
func scrub(v any, path string, dropped *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			lower := strings.ToLower(k)
			if strings.Contains(lower, "password") || strings.Contains(lower, "secret") || strings.Contains(lower, "token") {
				delete(v, k)
				*dropped = append(*dropped, path+"."+k)
				continue
			}
			scrub(child, path+"."+k, dropped)
		}
	case []any:
		for i, child := range v {
			scrub(child, fmt.Sprintf("%s[%d]", path, i), dropped)
		}
	}
}

// newDeliveryItem returns the first round of a delivery of an event to an
// endpoint. requestedBy is the user who asked for a test event, or "".
func newDeliveryItem(ep endpointItem, eventID, eventType string, eventTime time.Time, body []byte, trigger, requestedBy string, now time.Time) deliveryItem {
	id := deliveryID(eventID, ep.ID, eventTime)
	key := store.WebhookDeliveryKey(ep.ID, id)
	return deliveryItem{
		Item:        store.Item{PK: key.PK, SK: key.SK, Entity: entityDelivery, ExpiresAt: now.Add(deliveryRetention).Unix()},
		ID:          id,
		EndpointID:  ep.ID,
		WorkspaceID: ep.WorkspaceID,
		EventID:     eventID,
		EventType:   eventType,
		Trigger:     trigger,
		RequestedBy: requestedBy,
		Payload:     string(body),
		Status:      StatusPending,
		Round:       1,
		Attempts:    []attemptItem{},
		CreatedAt:   store.FormatTime(now),
	}
}

// enqueue writes the delivery unless it exists and sends its message,
// unless an earlier call recorded that the message was sent.
//
// The item is written before the message is sent and marked as enqueued
// after. A crash between the two leaves an item without the mark, so the
// next call for the same delivery sends the message again. The sender's
// claim on the delivery keeps the two messages from attempting at the
// same time, and a delivery that succeeded is not attempted again.
func (s *Service) enqueue(ctx context.Context, d deliveryItem) error {
	item, err := attributevalue.MarshalMap(d)
	if err != nil {
		return fmt.Errorf("encode webhook delivery %s: %w", d.ID, err)
	}
	table := s.store.Table()
	_, err = s.store.DB().PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(PK)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var old deliveryItem
		if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
			return fmt.Errorf("decode webhook delivery %s: %w", d.ID, err)
		}
		if old.EnqueuedAt != "" || old.Status != StatusPending || old.AttemptCount > 0 {
			return nil
		}
		d = old
	} else if err != nil {
		return fmt.Errorf("record webhook delivery %s: %w", d.ID, err)
	}
	return s.send(ctx, d)
}

// send puts the message of the delivery's current round on the queue and
// marks the delivery as enqueued.
func (s *Service) send(ctx context.Context, d deliveryItem) error {
	body, err := json.Marshal(message{EndpointID: d.EndpointID, DeliveryID: d.ID, Round: d.Round})
	if err != nil {
		return fmt.Errorf("encode webhook delivery %s message: %w", d.ID, err)
	}
	if _, err := s.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &s.cfg.QueueURL, MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("send webhook delivery %s to queue: %w", d.ID, err)
	}

	_, err = s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                 store.WebhookDeliveryKey(d.EndpointID, d.ID).Attributes(),
		UpdateExpression:    aws.String("SET enqueued_at = :now"),
		ConditionExpression: aws.String("round = :round"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":   str(store.FormatTime(s.now())),
			":round": &types.AttributeValueMemberN{Value: fmt.Sprint(d.Round)},
		},
	})
	if errors.Is(err, store.ErrConditionFailed) {
		// A redelivery started a newer round meanwhile; its own message
		// marks it.
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark webhook delivery %s enqueued: %w", d.ID, err)
	}
	return nil
}

// ListDeliveries returns a page of an endpoint's deliveries, newest event
// first; only those with the status unless status is "".
//
// Errors: Invalid (invalid_status) for an unknown status. NotFound for an
// endpoint that is not in the caller's workspace. An error wrapping
// store.ErrInvalidCursor for a cursor not made by this listing.
func (s *Service) ListDeliveries(ctx context.Context, caller *authn.Caller, endpointID, status string, limit int, cursor string) ([]Delivery, string, error) {
	switch status {
	case "", StatusPending, StatusSucceeded, StatusFailed:
	default:
		return nil, "", apperr.InvalidField("status", "invalid_status",
			"Query parameter status=%q must be %s, %s or %s.", truncate(status, 32), StatusPending, StatusSucceeded, StatusFailed)
	}
	if _, err := s.find(ctx, caller, endpointID); err != nil {
		return nil, "", err
	}
	q := store.Query{
		Partition:  store.WebhookDeliveriesPK(endpointID),
		SKPrefix:   store.WebhookDeliverySKPrefix(),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}
	if status != "" {
		q.Filter = "#status = :status"
		q.FilterNames = map[string]string{"#status": "status"}
		q.FilterValues = map[string]types.AttributeValue{":status": str(status)}
	}
	var items []deliveryItem
	next, err := s.store.QueryPage(ctx, q, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of webhook %s: %w", endpointID, err)
	}
	out := make([]Delivery, 0, len(items))
	for _, it := range items {
		out = append(out, it.delivery())
	}
	return out, next, nil
}

// GetDelivery returns a delivery with its payload and attempt log.
//
// Errors: NotFound for an endpoint that is not in the caller's workspace,
// or a delivery that is not the endpoint's.
func (s *Service) GetDelivery(ctx context.Context, caller *authn.Caller, endpointID, deliveryID string) (DeliveryDetail, error) {
	d, err := s.findDelivery(ctx, caller, endpointID, deliveryID)
	if err != nil {
		return DeliveryDetail{}, err
	}
	return d.detail(), nil
}

// Redeliver queues a delivery that succeeded or failed once more, with the
// same id and payload and a new series of attempts. It is sent even when
// the endpoint is disabled, so a user can check an endpoint before
// enabling it again.
//
// Errors: Forbidden for an organization member who is not an owner or
// admin; NotFound as for GetDelivery; Conflict (delivery_pending) for a
// delivery whose attempts are not over.
func (s *Service) Redeliver(ctx context.Context, caller *authn.Caller, endpointID, deliveryID string) (Delivery, error) {
	if err := requireManage(caller, "redeliver webhook deliveries"); err != nil {
		return Delivery{}, err
	}
	if _, err := s.findDelivery(ctx, caller, endpointID, deliveryID); err != nil {
		return Delivery{}, err
	}

	now := s.now().UTC()
	newItem, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key: store.WebhookDeliveryKey(endpointID, deliveryID).Attributes(),
		UpdateExpression: aws.String("SET #status = :pending, round = round + :one, requested_by = :user, redelivered_at = :now, expires_at = :expires " +
			"REMOVE enqueued_at, next_attempt_at, completed_at, lease_until, claim_token"),
		ConditionExpression:      aws.String("#status IN (:succeeded, :failed)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending":   str(StatusPending),
			":succeeded": str(StatusSucceeded),
			":failed":    str(StatusFailed),
			":one":       &types.AttributeValueMemberN{Value: "1"},
			":user":      str(caller.UserID),
			":now":       str(store.FormatTime(now)),
			":expires":   &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(deliveryRetention).Unix())},
		},
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return Delivery{}, &apperr.Error{Code: apperr.Conflict, Reason: "delivery_pending",
			Message: fmt.Sprintf("Delivery %s is still pending; redeliver it after its attempts have finished.", deliveryID)}
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver webhook delivery %s: %w", deliveryID, err)
	}
	var d deliveryItem
	if err := attributevalue.UnmarshalMap(newItem, &d); err != nil {
		return Delivery{}, fmt.Errorf("decode webhook delivery %s: %w", deliveryID, err)
	}
	if err := s.sendRequested(ctx, d); err != nil {
		return Delivery{}, err
	}
	s.logger.Info("webhook delivery queued again", "webhook_id", endpointID, "delivery_id", deliveryID, "round", d.Round, "user_id", caller.UserID)
	return d.delivery(), nil
}

// SendTest queues a signed webhook.test event to an endpoint, recorded as
// a delivery like any other. It is sent even when the endpoint is
// disabled.
//
// Errors: Forbidden as for Redeliver; NotFound for an endpoint that is not
// in the caller's workspace.
func (s *Service) SendTest(ctx context.Context, caller *authn.Caller, endpointID string) (Delivery, error) {
	if err := requireManage(caller, "send webhook test events"); err != nil {
		return Delivery{}, err
	}
	ep, err := s.find(ctx, caller, endpointID)
	if err != nil {
		return Delivery{}, err
	}

	now := s.now().UTC()
	eventID := ids.NewAt(ids.Event, now)
	data, err := json.Marshal(map[string]string{
		"webhook_id": ep.ID,
		"message":    "This is a test event from SignSecure.",
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("encode test event: %w", err)
	}
	body, err := json.Marshal(payload{Type: TestEventType, Timestamp: now, Data: data})
	if err != nil {
		return Delivery{}, fmt.Errorf("encode test event: %w", err)
	}
	d := newDeliveryItem(ep, eventID, TestEventType, now, body, TriggerTest, caller.UserID, now)
	put, err := s.store.PutNew(d)
	if err != nil {
		return Delivery{}, fmt.Errorf("record webhook test delivery %s: %w", d.ID, err)
	}
	if err := s.store.Transact(ctx, put); err != nil {
		return Delivery{}, fmt.Errorf("record webhook test delivery %s: %w", d.ID, err)
	}
	if err := s.sendRequested(ctx, d); err != nil {
		return Delivery{}, err
	}
	s.logger.Info("webhook test event queued", "webhook_id", ep.ID, "delivery_id", d.ID, "user_id", caller.UserID)
	return d.delivery(), nil
}

// sendRequested sends the message of a delivery that a user asked for.
// When the queue does not take it, the delivery is marked failed, so the
// user can redeliver it, and the error is returned.
//
// NOTE: these two routes send to the queue from the request handler
// instead of through the outbox, because the request itself is the
// trigger and the caller can repeat it. Their functions need
// sqs:SendMessage on the deliveries queue.
func (s *Service) sendRequested(ctx context.Context, d deliveryItem) error {
	sendErr := s.send(ctx, d)
	if sendErr == nil {
		return nil
	}
	_, err := s.store.Update(context.WithoutCancel(ctx), &dynamodb.UpdateItemInput{
		Key:                      store.WebhookDeliveryKey(d.EndpointID, d.ID).Attributes(),
		UpdateExpression:         aws.String("SET #status = :failed, last_error = :error, completed_at = :now"),
		ConditionExpression:      aws.String("round = :round AND #status = :pending AND attribute_not_exists(enqueued_at)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":failed":  str(StatusFailed),
			":pending": str(StatusPending),
			":error":   str("the delivery could not be queued; redeliver it"),
			":now":     str(store.FormatTime(s.now())),
			":round":   &types.AttributeValueMemberN{Value: fmt.Sprint(d.Round)},
		},
	})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		s.logger.Error("mark unqueued webhook delivery failed", "delivery_id", d.ID, "error", err.Error())
	}
	return sendErr
}

// findDelivery returns a delivery of an endpoint of the caller's
// workspace.
func (s *Service) findDelivery(ctx context.Context, caller *authn.Caller, endpointID, deliveryID string) (deliveryItem, error) {
	if _, err := s.find(ctx, caller, endpointID); err != nil {
		return deliveryItem{}, err
	}
	if !ids.Valid(ids.Delivery, deliveryID) {
		return deliveryItem{}, deliveryNotFound(deliveryID)
	}
	var d deliveryItem
	err := s.store.Get(ctx, store.WebhookDeliveryKey(endpointID, deliveryID), &d)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.WorkspaceID != caller.WorkspaceID) {
		return deliveryItem{}, deliveryNotFound(deliveryID)
	}
	if err != nil {
		return deliveryItem{}, fmt.Errorf("get webhook delivery %s: %w", deliveryID, err)
	}
	return d, nil
}

func deliveryNotFound(id string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "delivery_not_found",
		Message: fmt.Sprintf("Delivery %q was not found for this webhook endpoint.", truncate(id, 64))}
}
