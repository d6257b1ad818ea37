package orgs

import "time"

// Reasons a member left, in MemberLeftData.Reason.
const (
	LeftByLeaving = "left"
	LeftByRemoval = "removed"
)

// InvitationReceivedData is the data of an organization.invitation_received
// event.
type InvitationReceivedData struct {
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	InvitationID     string `json:"invitation_id"`
	// Email is the invitee's address as the inviter typed it.
	Email string `json:"email"`
	// UserID is the id of the user who holds the address when the
	// invitation is made, if any.
	UserID    string    `json:"user_id,omitempty"`
	Role      string    `json:"role"`
	InvitedBy string    `json:"invited_by"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MemberJoinedData is the data of an organization.member_joined event.
type MemberJoinedData struct {
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	UserID           string `json:"user_id"`
	Role             string `json:"role"`
	InvitationID     string `json:"invitation_id"`
	InvitedBy        string `json:"invited_by"`
}

// MemberLeftData is the data of an organization.member_left event.
type MemberLeftData struct {
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	UserID           string `json:"user_id"`
	// Role is the role the user had.
	Role string `json:"role"`
	// Reason is LeftByLeaving or LeftByRemoval.
	Reason string `json:"reason"`
	// RemovedBy is the user who removed the member, for a removal.
	RemovedBy string `json:"removed_by,omitempty"`
}

// MemberRoleChangedData is the data of an
// organization.member_role_changed event.
type MemberRoleChangedData struct {
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	UserID           string `json:"user_id"`
	OldRole          string `json:"old_role"`
	NewRole          string `json:"new_role"`
	ChangedBy        string `json:"changed_by"`
}
