package orgs

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/store"
)

const (
	entityOrganization      = "organization"
	entityMembership        = "membership"
	entityInvitation        = "invitation"
	entityPendingInvitation = "pending_invitation"
)

// Sort key prefixes of the queries this package runs.
const (
	memberSKPrefix     = "MEMBER#"
	invitationSKPrefix = "INVITE#"
	orgGSI1SKPrefix    = "ORG#"
)

// orgItem is an organization's profile. OwnerCount is the number of
// memberships with the owner role; every transaction that changes one of
// them changes it too.
type orgItem struct {
	store.Item
	ID         string `dynamodbav:"id"`
	Name       string `dynamodbav:"name"`
	CreatedAt  string `dynamodbav:"created_at"`
	CreatedBy  string `dynamodbav:"created_by"`
	UpdatedAt  string `dynamodbav:"updated_at"`
	OwnerCount int    `dynamodbav:"owner_count"`
}

func (o orgItem) organization(role string) Organization {
	return Organization{
		ID:        o.ID,
		Name:      o.Name,
		CreatedAt: store.ParseTime(o.CreatedAt),
		CreatedBy: o.CreatedBy,
		UpdatedAt: store.ParseTime(o.UpdatedAt),
		Role:      role,
	}
}

// memberItem is a user's membership in an organization. GSI1 lists it
// under the user.
type memberItem struct {
	store.Item
	OrgID     string `dynamodbav:"org_id"`
	UserID    string `dynamodbav:"user_id"`
	Role      string `dynamodbav:"role"`
	JoinedAt  string `dynamodbav:"joined_at"`
	UpdatedAt string `dynamodbav:"updated_at"`
}

func newMemberItem(orgID, userID, role string, now time.Time) memberItem {
	key := store.MemberKey(orgID, userID)
	return memberItem{
		Item: store.Item{
			PK:     key.PK,
			SK:     key.SK,
			GSI1PK: store.UserPK(userID),
			GSI1SK: store.MemberGSI1SK(orgID),
			Entity: entityMembership,
		},
		OrgID:     orgID,
		UserID:    userID,
		Role:      role,
		JoinedAt:  store.FormatTime(now),
		UpdatedAt: store.FormatTime(now),
	}
}

// invitationItem is an invitation. GSI1 lists it under the lowercased
// address it was sent to. ValidUntil is the end of its validity in Unix
// seconds. The TTL attribute expires_at is later, so declined, revoked and
// expired invitations stay in the table for a while.
type invitationItem struct {
	store.Item
	ID         string `dynamodbav:"id"`
	OrgID      string `dynamodbav:"org_id"`
	Email      string `dynamodbav:"email"`
	Role       string `dynamodbav:"role"`
	InvitedBy  string `dynamodbav:"invited_by"`
	CreatedAt  string `dynamodbav:"created_at"`
	ValidUntil int64  `dynamodbav:"valid_until"`
	Status     string `dynamodbav:"status"`
	// RespondedAt and RespondedBy record who accepted, declined or
	// revoked the invitation, and when.
	RespondedAt string `dynamodbav:"responded_at,omitempty"`
	RespondedBy string `dynamodbav:"responded_by,omitempty"`
}

func (i invitationItem) invitation(orgName string) Invitation {
	return Invitation{
		ID:               i.ID,
		OrganizationID:   i.OrgID,
		OrganizationName: orgName,
		Email:            i.Email,
		Role:             i.Role,
		Status:           i.Status,
		InvitedBy:        i.InvitedBy,
		CreatedAt:        store.ParseTime(i.CreatedAt),
		ExpiresAt:        time.Unix(i.ValidUntil, 0).UTC(),
	}
}

// expired reports whether the invitation's validity has ended at now.
func (i invitationItem) expired(now time.Time) bool { return now.Unix() >= i.ValidUntil }

// pendingItem exists while an invitation to an address is pending in an
// organization, so a second one for the same address is rejected. It
// names the invitation and copies its validity: once that has passed, a
// new invitation may replace it.
type pendingItem struct {
	store.Item
	InvitationID string `dynamodbav:"invitation_id"`
	ValidUntil   int64  `dynamodbav:"valid_until"`
}

// userProfile is the part of an accounts user item that this package reads.
type userProfile struct {
	ID    string `dynamodbav:"id"`
	Name  string `dynamodbav:"name"`
	Email string `dynamodbav:"email"`
}

// emailClaim is the part of an accounts email claim item that this
// package reads.
type emailClaim struct {
	UserID string `dynamodbav:"user_id"`
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
