package notify

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// Types lists the notification types. Each is named after the event type
// that raises it.
var Types = []string{
	events.EnvelopeSigned,
	events.EnvelopeCompleted,
	events.EnvelopeRejected,
	events.MemberJoined,
	events.MemberLeft,
	events.MemberRoleChanged,
	events.InvitationReceived,
	events.LowCreditBalance,
	events.NewLogin,
}

// KnownType reports whether typ is a notification type.
func KnownType(typ string) bool { return slices.Contains(Types, typ) }

// Preferences maps every notification type to whether the user receives
// it. Every type is on until the user turns it off.
type Preferences map[string]bool

// Preferences returns the user's preferences for every type.
//
// The preferences item stores one boolean attribute per type that the
// user has set, named after the type; a type without an attribute is on.
func (s *Service) Preferences(ctx context.Context, userID string) (Preferences, error) {
	table := s.store.Table()
	res, err := s.store.DB().GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &table,
		Key:            store.NotificationPreferencesKey(userID).Attributes(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get notification preferences of user %s: %w", userID, err)
	}
	prefs := Preferences{}
	for _, typ := range Types {
		prefs[typ] = true
		if v, ok := res.Item[typ]; ok {
			var on bool
			if err := attributevalue.Unmarshal(v, &on); err != nil {
				return nil, fmt.Errorf("decode notification preference %s of user %s: %w", typ, userID, err)
			}
			prefs[typ] = on
		}
	}
	return prefs, nil
}

// UpdatePreferences turns the named types on (true) or off (false) and
// returns the preferences for every type. Types it does not name keep
// their state. Nothing changes when any name is invalid.
//
// Errors: Invalid (unknown_notification_type) naming the first unknown
// type in sorted order; Invalid (empty_preferences) when changes is empty.
func (s *Service) UpdatePreferences(ctx context.Context, userID string, changes map[string]bool) (Preferences, error) {
	if len(changes) == 0 {
		return nil, &apperr.Error{Code: apperr.Invalid, Reason: "empty_preferences",
			Message: "The request body names no notification type; send an object such as {\"envelope.signed\": false}."}
	}
	names := make([]string, 0, len(changes))
	for typ := range changes {
		names = append(names, typ)
	}
	sort.Strings(names)
	for _, typ := range names {
		if !KnownType(typ) {
			return nil, unknownType(typ)
		}
	}

	update := "SET entity = :entity"
	attrNames := map[string]string{}
	values := map[string]types.AttributeValue{":entity": &types.AttributeValueMemberS{Value: entityPreferences}}
	for i, typ := range names {
		update += fmt.Sprintf(", #t%d = :v%d", i, i)
		attrNames[fmt.Sprintf("#t%d", i)] = typ
		values[fmt.Sprintf(":v%d", i)] = &types.AttributeValueMemberBOOL{Value: changes[typ]}
	}
	_, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                       store.NotificationPreferencesKey(userID).Attributes(),
		UpdateExpression:          &update,
		ExpressionAttributeNames:  attrNames,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return nil, fmt.Errorf("update notification preferences of user %s: %w", userID, err)
	}
	return s.Preferences(ctx, userID)
}

func unknownType(typ string) error {
	return apperr.InvalidField(typ, "unknown_notification_type",
		"%q is not a notification type; use one of %v.", typ, Types)
}
