// Package events defines SignSecure's domain events and writes them to the
// transactional outbox: an event item in the single table, committed in the
// same TransactWriteItems call as the state change that causes it. The
// table's stream carries each new event item to the dispatcher.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Event types.
const (
	EnvelopeCreated    = "envelope.created"
	EnvelopeSent       = "envelope.sent"
	EnvelopeSigned     = "envelope.signed"
	EnvelopeCompleted  = "envelope.completed"
	EnvelopeRejected   = "envelope.rejected"
	EnvelopeVoided     = "envelope.voided"
	MemberJoined       = "organization.member_joined"
	MemberLeft         = "organization.member_left"
	MemberRoleChanged  = "organization.member_role_changed"
	InvitationReceived = "organization.invitation_received"
	LowCreditBalance   = "billing.low_credit_balance"
	PurchaseCompleted  = "billing.purchase_completed"
	NewLogin           = "security.new_login"
)

const (
	// eventRetention is how long an outbox item stays before TTL removes
	// it; the stream has carried it to the dispatcher long before.
	eventRetention    = 30 * 24 * time.Hour
	entityEvent       = "event"
	timestampLayout   = time.RFC3339Nano
	maxEventDataBytes = 64 << 10
)

// Types lists every event type in catalogue order.
var Types = []string{
	EnvelopeCreated, EnvelopeSent, EnvelopeSigned, EnvelopeCompleted, EnvelopeRejected, EnvelopeVoided,
	MemberJoined, MemberLeft, MemberRoleChanged, InvitationReceived,
	LowCreditBalance, PurchaseCompleted,
	NewLogin,
}

// Known reports whether typ is an event type of the catalogue.
func Known(typ string) bool { return slices.Contains(Types, typ) }

// Event is something that happened in a workspace.
type Event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Timestamp   time.Time       `json:"timestamp"`
	WorkspaceID string          `json:"workspace_id"`
	Data        json.RawMessage `json:"data"`
}

// New returns an event of type typ in the workspace, made now, with data
// encoded as JSON. Data must never carry secrets: no tokens, keys or
// password material.
func New(typ, workspaceID string, data any, now time.Time) (Event, error) {
	if !Known(typ) {
		return Event{}, fmt.Errorf("new event: unknown type %q", typ)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event data: %w", typ, err)
	}
	if len(raw) > maxEventDataBytes {
		return Event{}, fmt.Errorf("encode %s event data: %d bytes, limit %d", typ, len(raw), maxEventDataBytes)
	}
	now = now.UTC()
	return Event{
		ID:          ids.NewAt(ids.Event, now),
		Type:        typ,
		Timestamp:   now,
		WorkspaceID: workspaceID,
		Data:        raw,
	}, nil
}

// item is the outbox item of an event. Data is stored as a JSON string so
// the stream consumer decodes exactly what the producer encoded.
type item struct {
	store.Item
	ID          string `dynamodbav:"id"`
	Type        string `dynamodbav:"type"`
	Timestamp   string `dynamodbav:"timestamp"`
	WorkspaceID string `dynamodbav:"workspace_id"`
	Data        string `dynamodbav:"data"`
}

// Put returns the transaction item that appends e to the outbox. It fails
// the transaction if an event with the same id exists.
func Put(s *store.Store, e Event) (types.TransactWriteItem, error) {
	key := store.EventKey(e.ID)
	it := item{
		Item: store.Item{
			PK:        key.PK,
			SK:        key.SK,
			Entity:    entityEvent,
			ExpiresAt: e.Timestamp.Add(eventRetention).Unix(),
		},
		ID:          e.ID,
		Type:        e.Type,
		Timestamp:   e.Timestamp.Format(timestampLayout),
		WorkspaceID: e.WorkspaceID,
		Data:        string(e.Data),
	}
	return s.PutNew(it)
}

// Get reads the event with the id from the outbox.
func Get(ctx context.Context, s *store.Store, id string) (Event, error) {
	var it item
	if err := s.Get(ctx, store.EventKey(id), &it); err != nil {
		return Event{}, fmt.Errorf("get event %s: %w", id, err)
	}
	return fromItem(it)
}

func fromItem(it item) (Event, error) {
	ts, err := time.Parse(timestampLayout, it.Timestamp)
	if err != nil {
		return Event{}, fmt.Errorf("decode event %s timestamp: %w", it.ID, err)
	}
	return Event{ID: it.ID, Type: it.Type, Timestamp: ts, WorkspaceID: it.WorkspaceID, Data: json.RawMessage(it.Data)}, nil
}
