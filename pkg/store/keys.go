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

// OrgKey returns the key of an organization's profile item.
func OrgKey(orgID string) Key { return Key{OrgPK(orgID), "PROFILE"} }

// MemberKey returns the key of a user's membership in an organization.
func MemberKey(orgID, userID string) Key { return Key{OrgPK(orgID), "MEMBER#" + userID} }

// MemberGSI1SK returns the GSI1 sort key that lists a membership under
// its user, whose GSI1 partition is UserPK.
func MemberGSI1SK(orgID string) string { return "ORG#" + orgID }

// InvitationKey returns the key of an invitation to an organization.
func InvitationKey(orgID, invitationID string) Key {
	return Key{OrgPK(orgID), "INVITE#" + invitationID}
}

// InviteePK returns the GSI1 partition that lists the invitations sent to
// an email address. The address is lowercased, so the listing matches
// regardless of case.
func InviteePK(email string) string { return "INVITEE#" + strings.ToLower(email) }

// InvitationGSI1SK returns the GSI1 sort key of an invitation under its
// invitee.
func InvitationGSI1SK(invitationID string) string { return "INVITE#" + invitationID }

// PendingInvitationKey returns the key of the item that allows at most one
// pending invitation per lowercased email address in an organization.
func PendingInvitationKey(orgID, email string) Key {
	return Key{OrgPK(orgID), "PENDING#" + strings.ToLower(email)}
}

// APIKeyKey returns the key of an API key item, from the SHA-256 hex of the
// full key.
func APIKeyKey(keyHash string) Key { return Key{"APIKEY#" + keyHash, "APIKEY"} }

// APIKeysGSI1PK returns the GSI1 partition that lists a workspace's API
// keys, from the workspace's partition (see WorkspacePK). The GSI1 sort key
// of each key is its id.
func APIKeysGSI1PK(workspacePK string) string { return workspacePK + "#APIKEYS" }

// LowBalanceGSI2PK is the GSI2 partition of every wallet whose balance is
// below its low-balance threshold. The wallet's GSI2SK is its workspace id.
const LowBalanceGSI2PK = "LOWBALANCE"

// WalletKey returns the key of a workspace's wallet, from the workspace's
// public id.
func WalletKey(workspaceID string) Key { return Key{WorkspacePK(workspaceID), "WALLET"} }

// LedgerSKPrefix starts the sort key of every ledger entry of a workspace.
func LedgerSKPrefix() string { return "LEDGER#" }

// LedgerKey returns the key of a wallet's ledger entry.
func LedgerKey(workspaceID, entryID string) Key {
	return Key{WorkspacePK(workspaceID), LedgerSKPrefix() + entryID}
}

// PurchaseSKPrefix starts the sort key of every purchase of a workspace.
func PurchaseSKPrefix() string { return "PURCHASE#" }

// PurchaseKey returns the key of a credit pack purchase in a workspace.
func PurchaseKey(workspaceID, purchaseID string) Key {
	return Key{WorkspacePK(workspaceID), PurchaseSKPrefix() + purchaseID}
}

// InvoiceCounterKey returns the key of the counter that numbers one
// seller's invoices without gaps.
func InvoiceCounterKey(sellerID string) Key { return Key{"INVOICESEQ#" + sellerID, "COUNTER"} }

// EnvelopePK returns the partition of an envelope, which also holds its
// recipients, documents and audit trail.
func EnvelopePK(envelopeID string) string { return "ENVELOPE#" + envelopeID }

// EnvelopeKey returns the key of an envelope item.
func EnvelopeKey(envelopeID string) Key { return Key{EnvelopePK(envelopeID), "ENVELOPE"} }

// EnvelopesGSI1PK returns the GSI1 partition that lists a workspace's
// envelopes, from the workspace's partition (see WorkspacePK). The GSI1 sort
// key of each envelope is its id, so the listing is in creation order.
func EnvelopesGSI1PK(workspacePK string) string { return workspacePK + "#ENVELOPES" }

// RecipientSKPrefix starts the sort key of every recipient of an envelope.
func RecipientSKPrefix() string { return "RECIPIENT#" }

// RecipientKey returns the key of an envelope's recipient. The routing order
// (1 to 999) is written with three digits, so recipients sort by it.
func RecipientKey(envelopeID string, routingOrder int, recipientID string) Key {
	return Key{EnvelopePK(envelopeID), fmt.Sprintf("%s%03d#%s", RecipientSKPrefix(), routingOrder, recipientID)}
}

// DocumentSKPrefix starts the sort key of every document of an envelope.
func DocumentSKPrefix() string { return "DOCUMENT#" }

// DocumentKey returns the key of an envelope's document.
func DocumentKey(envelopeID, documentID string) Key {
	return Key{EnvelopePK(envelopeID), DocumentSKPrefix() + documentID}
}

// AuditSKPrefix starts the sort key of every audit entry of an envelope.
func AuditSKPrefix() string { return "AUDIT#" }

// AuditKey returns the key of an entry in an envelope's audit trail. Entry
// ids are ULIDs, so the trail sorts by time.
func AuditKey(envelopeID, entryID string) Key {
	return Key{EnvelopePK(envelopeID), AuditSKPrefix() + entryID}
}

// SigningTokenKey returns the key of a signing token item, from the SHA-256
// hex of the token.
func SigningTokenKey(tokenHash string) Key { return Key{"SIGNING#" + tokenHash, "SIGNING"} }

// NotificationSKPrefix starts the sort key of every in-app notification of
// a user.
func NotificationSKPrefix() string { return "NOTIFICATION#" }

// NotificationKey returns the key of a user's in-app notification.
// Notification ids are ULIDs, so a user's notifications sort by time.
func NotificationKey(userID, notificationID string) Key {
	return Key{UserPK(userID), NotificationSKPrefix() + notificationID}
}

// UnreadNotificationsKey returns the key of the counter of a user's unread
// notifications. Its sort key does not begin with NotificationSKPrefix, so
// listings of notifications never include it.
func UnreadNotificationsKey(userID string) Key { return Key{UserPK(userID), "UNREAD_NOTIFICATIONS"} }

// NotificationPreferencesKey returns the key of a user's notification
// preferences.
func NotificationPreferencesKey(userID string) Key { return Key{UserPK(userID), "PREFERENCES"} }

// EmailJobKey returns the key of the item that records the state of one
// email job, so that each job is queued and sent at most once.
func EmailJobKey(jobID string) Key { return Key{"EMAILJOB#" + jobID, "EMAILJOB"} }

// LowBalanceAlertKey returns the key of the item that records the latest
// drop of a workspace's wallet below its low-balance threshold that was
// alerted, so that each drop is alerted once.
func LowBalanceAlertKey(workspaceID string) Key {
	return Key{WorkspacePK(workspaceID), "LOWBALANCE_ALERT"}
}

// WebhookSKPrefix starts the sort key of every webhook endpoint of a
// workspace.
func WebhookSKPrefix() string { return "WEBHOOK#" }

// WebhookKey returns the key of a webhook endpoint, from the public id of
// its workspace.
func WebhookKey(workspaceID, endpointID string) Key {
	return Key{WorkspacePK(workspaceID), WebhookSKPrefix() + endpointID}
}

// WebhookCounterKey returns the key of the item that counts a workspace's
// webhook endpoints, so that creating one can enforce a maximum.
func WebhookCounterKey(workspaceID string) Key { return Key{WorkspacePK(workspaceID), "WEBHOOKS"} }

// WebhookDeliveriesPK returns the partition that holds a webhook
// endpoint's deliveries.
func WebhookDeliveriesPK(endpointID string) string { return "WEBHOOK#" + endpointID }

// WebhookDeliverySKPrefix starts the sort key of every delivery of a
// webhook endpoint.
func WebhookDeliverySKPrefix() string { return "DELIVERY#" }

// WebhookDeliveryKey returns the key of a delivery to a webhook endpoint.
// Delivery ids are ULIDs whose time is the event's, so an endpoint's
// deliveries sort by event time.
func WebhookDeliveryKey(endpointID, deliveryID string) Key {
	return Key{WebhookDeliveriesPK(endpointID), WebhookDeliverySKPrefix() + deliveryID}
}
