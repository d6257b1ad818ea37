package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// NotificationEndpointDisabled is the type of the in-app notification that
// SignSecure writes to a workspace's owners and admins, or to the user of a
// personal workspace, when it disables an endpoint.
const NotificationEndpointDisabled = "webhook.endpoint_disabled"

// maxNotifiedUsers bounds the users notified in the transaction that
// disables an endpoint. DynamoDB allows 100 items per transaction, and
// each user takes a notification and an unread counter update.
const maxNotifiedUsers = 49

// memberPageSize is the page size of membership queries.
const memberPageSize = 100

// recordSuccess ends the endpoint's failure streak. A failure is logged,
// because the delivery itself is recorded already.
func (s *Service) recordSuccess(ctx context.Context, ep endpointItem, now time.Time) {
	_, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                 store.WebhookKey(ep.WorkspaceID, ep.ID).Attributes(),
		UpdateExpression:    aws.String("SET consecutive_failures = :zero, last_success_at = :now REMOVE failing_since"),
		ConditionExpression: aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": &types.AttributeValueMemberN{Value: "0"},
			":now":  str(store.FormatTime(now)),
		},
		ReturnValues: types.ReturnValueNone,
	})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		s.logger.Error("reset webhook failure streak failed", "webhook_id", ep.ID, "error", err.Error())
	}
}

// recordFailure counts a failed delivery in the endpoint's streak, and
// disables the endpoint when the streak meets the rule of
// Config.DisableAfterFailures and Config.DisableAfterPeriod.
func (s *Service) recordFailure(ctx context.Context, ep endpointItem, cause deliveryItem, now time.Time) error {
	newItem, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key: store.WebhookKey(ep.WorkspaceID, ep.ID).Attributes(),
		UpdateExpression: aws.String("SET consecutive_failures = if_not_exists(consecutive_failures, :zero) + :one, " +
			"failing_since = if_not_exists(failing_since, :now), last_failure_at = :now"),
		ConditionExpression: aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": &types.AttributeValueMemberN{Value: "0"},
			":one":  &types.AttributeValueMemberN{Value: "1"},
			":now":  str(store.FormatTime(now)),
		},
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("count failure of webhook %s: %w", ep.ID, err)
	}
	var updated endpointItem
	if err := attributevalue.UnmarshalMap(newItem, &updated); err != nil {
		return fmt.Errorf("decode webhook %s: %w", ep.ID, err)
	}
	if !updated.Enabled || !s.meetsDisableRule(updated, now) {
		return nil
	}
	return s.disable(ctx, updated, DisabledFailing, cause, now)
}

// meetsDisableRule reports whether the endpoint's failure streak is long
// enough, in deliveries and in time, to disable it.
func (s *Service) meetsDisableRule(ep endpointItem, now time.Time) bool {
	since := store.ParseTime(ep.FailingSince)
	return ep.ConsecutiveFailures >= s.cfg.DisableAfterFailures && !since.IsZero() && now.Sub(since) >= s.cfg.DisableAfterPeriod
}

// disable turns an enabled endpoint off and, in the same transaction,
// writes an in-app notification for each user to notify. An endpoint that
// another delivery disabled first is left as it is, so each user is
// notified once.
//
// The notifications are written in the item shape of package notify,
// because their type is not an event type and so not one of notify's
// types. Notification preferences cannot turn them off.
func (s *Service) disable(ctx context.Context, ep endpointItem, reason string, cause deliveryItem, now time.Time) error {
	users, err := s.notifiedUsers(ctx, ep.WorkspaceID)
	if err != nil {
		return err
	}
	if len(users) > maxNotifiedUsers {
		s.logger.Warn("too many owners and admins to notify of a disabled webhook in one transaction; the rest get no notification",
			"webhook_id", ep.ID, "workspace_id", ep.WorkspaceID, "users", len(users), "notified", maxNotifiedUsers)
		users = users[:maxNotifiedUsers]
	}

	items := []types.TransactWriteItem{s.store.UpdateIn(store.WebhookKey(ep.WorkspaceID, ep.ID),
		"SET #enabled = :false, disabled_reason = :reason, disabled_at = :now, updated_at = :now",
		"attribute_exists(PK) AND #enabled = :true",
		map[string]string{"#enabled": "enabled"},
		map[string]types.AttributeValue{
			":false":  &types.AttributeValueMemberBOOL{Value: false},
			":true":   &types.AttributeValueMemberBOOL{Value: true},
			":reason": str(reason),
			":now":    str(store.FormatTime(now)),
		})}
	title, body := disabledText(ep, reason)
	for _, userID := range users {
		n := notificationItem{
			ID:        derivedID(ids.Notification, now, ep.ID, store.FormatTime(now), userID),
			UserID:    userID,
			Type:      NotificationEndpointDisabled,
			Title:     title,
			Body:      body,
			EventID:   cause.EventID,
			Data:      map[string]string{"webhook_id": ep.ID, "workspace_id": ep.WorkspaceID, "reason": reason, "delivery_id": cause.ID},
			CreatedAt: store.FormatTime(now),
		}
		key := store.NotificationKey(userID, n.ID)
		n.Item = store.Item{PK: key.PK, SK: key.SK, Entity: "notification"}
		put, err := s.store.PutNew(n)
		if err != nil {
			return fmt.Errorf("disable webhook %s: %w", ep.ID, err)
		}
		unread := s.store.UpdateIn(store.UnreadNotificationsKey(userID), "ADD unread :one SET entity = :entity", "", nil,
			map[string]types.AttributeValue{
				":one":    &types.AttributeValueMemberN{Value: "1"},
				":entity": str("unread_notifications"),
			})
		items = append(items, put, unread)
	}

	err = s.store.Transact(ctx, items...)
	if store.FailedAt(err, 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disable webhook %s: %w", ep.ID, err)
	}
	s.logger.Warn("webhook endpoint disabled", "webhook_id", ep.ID, "workspace_id", ep.WorkspaceID,
		"reason", reason, "delivery_id", cause.ID, "notified_users", len(users))
	return nil
}

// disabledText returns the title and body of the notification about a
// disabled endpoint.
func disabledText(ep endpointItem, reason string) (string, string) {
	title := "Webhook endpoint disabled"
	switch reason {
	case DisabledGone:
		return title, fmt.Sprintf("%s responded 410 Gone, so SignSecure stopped sending events to it. "+
			"Enable the endpoint again once it accepts deliveries.", ep.URL)
	default:
		return title, fmt.Sprintf("%d deliveries in a row to %s failed since %s, so SignSecure stopped sending events to it. "+
			"Fix the receiver, send a test event, then enable the endpoint again.",
			ep.ConsecutiveFailures, ep.URL, store.ParseTime(ep.FailingSince).Format(time.RFC3339))
	}
}

// notifiedUsers returns the users to notify about a workspace's endpoints:
// the user of a personal workspace, or an organization's owners and
// admins, in membership key order.
func (s *Service) notifiedUsers(ctx context.Context, workspaceID string) ([]string, error) {
	if strings.HasPrefix(workspaceID, ids.User+"_") {
		return []string{workspaceID}, nil
	}
	var userIDs []string
	cursor := ""
	for {
		var page []struct {
			UserID string `dynamodbav:"user_id"`
			Role   string `dynamodbav:"role"`
		}
		next, err := s.store.QueryPage(ctx, store.Query{
			Partition: store.WorkspacePK(workspaceID),
			SKPrefix:  "MEMBER#",
			Limit:     memberPageSize,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			return nil, fmt.Errorf("list members of organization %s: %w", workspaceID, err)
		}
		for _, m := range page {
			if (m.Role == authn.RoleOwner || m.Role == authn.RoleAdmin) && m.UserID != "" {
				userIDs = append(userIDs, m.UserID)
			}
		}
		if next == "" {
			return userIDs, nil
		}
		cursor = next
	}
}

// notificationItem is an in-app notification, with the attributes that
// package notify reads.
type notificationItem struct {
	store.Item
	ID        string            `dynamodbav:"id"`
	UserID    string            `dynamodbav:"user_id"`
	Type      string            `dynamodbav:"type"`
	Title     string            `dynamodbav:"title"`
	Body      string            `dynamodbav:"body"`
	EventID   string            `dynamodbav:"event_id"`
	Data      map[string]string `dynamodbav:"data,omitempty"`
	CreatedAt string            `dynamodbav:"created_at"`
}
