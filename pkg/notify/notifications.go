package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Notification is an in-app notification to one user.
type Notification struct {
	ID string `json:"id"`
	// Type is the event type that raised it, one of Types.
	Type  string `json:"type"`
	Title string `json:"title"`
	Body  string `json:"body"`
	// EventID is the event that raised it.
	EventID string `json:"event_id"`
	// Data holds the ids a client needs to link to the subject, such as
	// "envelope_id" or "organization_id".
	Data      map[string]string `json:"data"`
	ReadAt    *time.Time        `json:"read_at"`
	CreatedAt time.Time         `json:"created_at"`
}

// readRetention is how long a notification stays after it is read. An
// unread notification never expires: TTL deleting it would leave the
// unread counter counting an item that no longer exists.
const readRetention = 90 * 24 * time.Hour

// maxReadAllBatch is the number of notifications marked read in one
// transaction, with the counter update as one more item; DynamoDB allows
// 100 items per transaction.
const maxReadAllBatch = 50

const (
	entityNotification = "notification"
	entityUnread       = "unread_notifications"
	entityPreferences  = "notification_preferences"
)

// notificationItem is a notification in the table.
type notificationItem struct {
	store.Item
	ID        string            `dynamodbav:"id"`
	UserID    string            `dynamodbav:"user_id"`
	Type      string            `dynamodbav:"type"`
	Title     string            `dynamodbav:"title"`
	Body      string            `dynamodbav:"body"`
	EventID   string            `dynamodbav:"event_id"`
	Data      map[string]string `dynamodbav:"data,omitempty"`
	ReadAt    string            `dynamodbav:"read_at,omitempty"`
	CreatedAt string            `dynamodbav:"created_at"`
}

func (it notificationItem) notification() Notification {
	n := Notification{
		ID:        it.ID,
		Type:      it.Type,
		Title:     it.Title,
		Body:      it.Body,
		EventID:   it.EventID,
		Data:      it.Data,
		CreatedAt: store.ParseTime(it.CreatedAt),
	}
	if n.Data == nil {
		n.Data = map[string]string{}
	}
	if it.ReadAt != "" {
		t := store.ParseTime(it.ReadAt)
		n.ReadAt = &t
	}
	return n
}

// Service stores notifications and preferences.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a service over the store. now may be nil for
// time.Now.
func NewService(st *store.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, now: now}
}

// Create stores n for the user, in one transaction with the unread
// counter's increment and a check that the user has not turned n.Type off.
// It reports false, with a nil error, when a notification with n.ID exists
// or the type is turned off. So a redelivered event creates nothing twice.
func (s *Service) Create(ctx context.Context, userID string, n Notification) (bool, error) {
	if !KnownType(n.Type) {
		return false, fmt.Errorf("create notification %s: unknown type %q", n.ID, n.Type)
	}
	key := store.NotificationKey(userID, n.ID)
	put, err := s.store.PutNew(notificationItem{
		Item:      store.Item{PK: key.PK, SK: key.SK, Entity: entityNotification},
		ID:        n.ID,
		UserID:    userID,
		Type:      n.Type,
		Title:     n.Title,
		Body:      n.Body,
		EventID:   n.EventID,
		Data:      n.Data,
		CreatedAt: store.FormatTime(n.CreatedAt),
	})
	if err != nil {
		return false, fmt.Errorf("create notification %s for user %s: %w", n.ID, userID, err)
	}
	counter := s.counterUpdate(userID, 1)
	enabled := s.store.ConditionCheck(store.NotificationPreferencesKey(userID),
		"attribute_not_exists(#type) OR #type = :on",
		map[string]string{"#type": n.Type},
		map[string]types.AttributeValue{":on": &types.AttributeValueMemberBOOL{Value: true}})

	const putIndex, enabledIndex = 0, 2
	err = s.store.Transact(ctx, put, counter, enabled)
	if store.FailedAt(err, putIndex) || store.FailedAt(err, enabledIndex) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create notification %s for user %s: %w", n.ID, userID, err)
	}
	return true, nil
}

// counterUpdate returns the transaction item that adds delta to the
// user's unread counter.
func (s *Service) counterUpdate(userID string, delta int) types.TransactWriteItem {
	return s.store.UpdateIn(store.UnreadNotificationsKey(userID),
		"ADD unread :delta SET entity = :entity", "", nil,
		map[string]types.AttributeValue{
			":delta":  &types.AttributeValueMemberN{Value: fmt.Sprint(delta)},
			":entity": &types.AttributeValueMemberS{Value: entityUnread},
		})
}

// List returns a page of the user's notifications, newest first; only the
// unread ones when unreadOnly is set.
//
// Errors: an error wrapping store.ErrInvalidCursor for a cursor that this
// listing did not return.
func (s *Service) List(ctx context.Context, userID string, unreadOnly bool, limit int, cursor string) ([]Notification, string, error) {
	q := store.Query{
		Partition:  store.UserPK(userID),
		SKPrefix:   store.NotificationSKPrefix(),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}
	if unreadOnly {
		q.Filter = "attribute_not_exists(read_at)"
	}
	var items []notificationItem
	next, err := s.store.QueryPage(ctx, q, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list notifications of user %s: %w", userID, err)
	}
	out := make([]Notification, 0, len(items))
	for _, it := range items {
		out = append(out, it.notification())
	}
	return out, next, nil
}

// UnreadCount returns the number of the user's unread notifications.
func (s *Service) UnreadCount(ctx context.Context, userID string) (int, error) {
	var counter struct {
		Unread int `dynamodbav:"unread"`
	}
	err := s.store.Get(ctx, store.UnreadNotificationsKey(userID), &counter)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count unread notifications of user %s: %w", userID, err)
	}
	return max(counter.Unread, 0), nil
}

// MarkRead marks the user's notification read and returns it. Marking a
// read notification again changes nothing.
//
// Errors: NotFound when the user has no notification with the id.
func (s *Service) MarkRead(ctx context.Context, userID, notificationID string) (Notification, error) {
	if !ids.Valid(ids.Notification, notificationID) {
		return Notification{}, notFound(notificationID)
	}
	err := s.store.Transact(ctx, s.markReadUpdate(userID, notificationID, s.now()), s.counterUpdate(userID, -1))
	if err != nil && !store.FailedAt(err, 0) {
		return Notification{}, fmt.Errorf("mark notification %s read: %w", notificationID, err)
	}

	var it notificationItem
	err = s.store.Get(ctx, store.NotificationKey(userID, notificationID), &it)
	if errors.Is(err, store.ErrNotFound) {
		return Notification{}, notFound(notificationID)
	}
	if err != nil {
		return Notification{}, fmt.Errorf("get notification %s: %w", notificationID, err)
	}
	return it.notification(), nil
}

// markReadUpdate returns the transaction item that marks an unread
// notification read and starts its retention. Its condition fails for a
// missing or already read notification.
func (s *Service) markReadUpdate(userID, notificationID string, now time.Time) types.TransactWriteItem {
	now = now.UTC()
	return s.store.UpdateIn(store.NotificationKey(userID, notificationID),
		"SET read_at = :now, expires_at = :expires",
		"attribute_exists(PK) AND attribute_not_exists(read_at)", nil,
		map[string]types.AttributeValue{
			":now":     &types.AttributeValueMemberS{Value: store.FormatTime(now)},
			":expires": &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(readRetention).Unix())},
		})
}

// MarkAllRead marks every unread notification of the user read and returns
// how many it marked. Notifications created while it runs may stay
// unread.
func (s *Service) MarkAllRead(ctx context.Context, userID string) (int, error) {
	marked := 0
	cursor := ""
	for {
		var page []notificationItem
		next, err := s.store.QueryPage(ctx, store.Query{
			Partition: store.UserPK(userID),
			SKPrefix:  store.NotificationSKPrefix(),
			Filter:    "attribute_not_exists(read_at)",
			Limit:     maxReadAllBatch,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			return marked, fmt.Errorf("list unread notifications of user %s: %w", userID, err)
		}

		pending := make([]string, 0, len(page))
		for _, it := range page {
			pending = append(pending, it.ID)
		}
		n, err := s.markBatchRead(ctx, userID, pending)
		marked += n
		if err != nil {
			return marked, err
		}
		if next == "" {
			return marked, nil
		}
		cursor = next
	}
}

// markBatchRead marks the notifications read in one transaction with the
// counter's decrement. A notification that a concurrent request marked
// first fails its condition. It is dropped and the rest are tried again,
// so the counter goes down once per notification.
func (s *Service) markBatchRead(ctx context.Context, userID string, notificationIDs []string) (int, error) {
	now := s.now()
	for len(notificationIDs) > 0 {
		items := make([]types.TransactWriteItem, 0, len(notificationIDs)+1)
		for _, id := range notificationIDs {
			items = append(items, s.markReadUpdate(userID, id, now))
		}
		items = append(items, s.counterUpdate(userID, -len(notificationIDs)))

		err := s.store.Transact(ctx, items...)
		if err == nil {
			return len(notificationIDs), nil
		}
		var tx *store.TxCanceledError
		if !errors.As(err, &tx) {
			return 0, fmt.Errorf("mark notifications of user %s read: %w", userID, err)
		}
		stillUnread := make([]string, 0, len(notificationIDs))
		for i, id := range notificationIDs {
			if !tx.Failed(i) {
				stillUnread = append(stillUnread, id)
			}
		}
		if len(stillUnread) == len(notificationIDs) {
			return 0, fmt.Errorf("mark notifications of user %s read: %w", userID, err)
		}
		notificationIDs = stillUnread
	}
	return 0, nil
}

func notFound(notificationID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "notification_not_found",
		Message: fmt.Sprintf("Notification %q was not found.", notificationID)}
}
