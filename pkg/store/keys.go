package store

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key is the primary key of an item.
type Key struct {
	PK string
	SK string
}

// String returns the key as "PK/SK".
func (k Key) String() string { return k.PK + "/" + k.SK }

// Attributes returns the key as DynamoDB attribute values.
func (k Key) Attributes() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: k.PK},
		"SK": &types.AttributeValueMemberS{Value: k.SK},
	}
}

// UserPK returns the partition of a user and of their personal workspace.
func UserPK(userID string) string { return "USER#" + userID }

// OrgPK returns the partition of an organization and of its workspace.
func OrgPK(orgID string) string { return "ORG#" + orgID }

// UserKey returns the key of a user's profile item.
func UserKey(userID string) Key { return Key{UserPK(userID), "PROFILE"} }

// EmailKey returns the key of the item that claims an email address for
// one user. The address is lowercased, so claims are unique regardless of
// case.
func EmailKey(email string) Key { return Key{"EMAIL#" + strings.ToLower(email), "EMAIL"} }

// SessionKey returns the key of a session, from the SHA-256 hex of its token.
func SessionKey(tokenHash string) Key { return Key{"SESSION#" + tokenHash, "SESSION"} }

// SessionGSI1SK returns the GSI1 sort key that lists a session under its user.
func SessionGSI1SK(sessionID string) string { return "SESSION#" + sessionID }

// DeviceKey returns the key of a device a user has logged in from.
func DeviceKey(userID, deviceHash string) Key { return Key{UserPK(userID), "DEVICE#" + deviceHash} }

// ThrottleKey returns the key of a failed-login counter for one scope
// ("account" or "client"), subject hash and fixed window start (Unix
// seconds).
func ThrottleKey(scope, subjectHash string, windowStart int64) Key {
	return Key{fmt.Sprintf("THROTTLE#%s#%s", scope, subjectHash), fmt.Sprintf("WINDOW#%d", windowStart)}
}

// EventKey returns the key of an outbox event.
func EventKey(eventID string) Key { return Key{"EVENT#" + eventID, "EVENT"} }

// WorkspacePK returns the partition of a workspace from its public id: a
// user id ("usr_...") for a personal workspace, an organization id
// ("org_...") otherwise. It returns "" for any other id.
func WorkspacePK(workspaceID string) string {
	switch {
	case strings.HasPrefix(workspaceID, "usr_"):
		return UserPK(workspaceID)
	case strings.HasPrefix(workspaceID, "org_"):
		return OrgPK(workspaceID)
	default:
		return ""
	}
}
