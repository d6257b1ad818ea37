package notify

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/signsecure/signsecure/pkg/events"
)

// The event data this package reads, as the producing packages encode it.
// Fields a producer leaves out decode to their zero values.

// Envelope email settings, in envelopeData.EmailNotifications.
const (
	emailAll            = "all"
	emailCompletionOnly = "completion_only"
	emailNone           = "none"
)

// envelopeData is the data of the envelope.* events.
type envelopeData struct {
	EnvelopeID   string `json:"envelope_id"`
	Title        string `json:"title"`
	SenderUserID string `json:"sender_user_id"`
	WorkspaceID  string `json:"workspace_id"`
	// EmailNotifications is emailAll, emailCompletionOnly or emailNone.
	// It governs only the emails to the envelope's recipients.
	EmailNotifications string              `json:"email_notifications"`
	Status             string              `json:"status"`
	Recipients         []envelopeRecipient `json:"recipients"`
	// ActivatedRecipientIDs lists the signers whose turn began with this
	// event (envelope.sent and envelope.signed).
	ActivatedRecipientIDs []string `json:"activated_recipient_ids"`
	// RecipientID is the recipient who signed or rejected.
	RecipientID string `json:"recipient_id"`
	Reason      string `json:"reason"`
}

type envelopeRecipient struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	Role         string `json:"role"`
	RoutingOrder int    `json:"routing_order"`
	Status       string `json:"status"`
}

// recipient returns the recipient with the id.
func (d envelopeData) recipient(id string) (envelopeRecipient, bool) {
	for _, r := range d.Recipients {
		if r.ID == id {
			return r, true
		}
	}
	return envelopeRecipient{}, false
}

// recipientPending is the status of a recipient whose turn has not come,
// and of every cc recipient until the envelope completes.
const recipientPending = "pending"

// contacted reports whether the envelope's emails have reached the
// recipient: any status but pending. An empty status counts as contacted,
// so an event without statuses errs toward telling everyone.
func (r envelopeRecipient) contacted() bool { return r.Status != recipientPending }

// displayName returns the recipient's name, or the address when the name
// is empty.
func (r envelopeRecipient) displayName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Email
}

// orgData is the data of the organization.* events (see package orgs).
type orgData struct {
	OrganizationID   string `json:"organization_id"`
	OrganizationName string `json:"organization_name"`
	// UserID is the member concerned; for an invitation, the invitee's
	// account when the address had one.
	UserID        string `json:"user_id"`
	InviteeUserID string `json:"invitee_user_id"`
	Role          string `json:"role"`
	OldRole       string `json:"old_role"`
	NewRole       string `json:"new_role"`
	// Reason is "left" or "removed", for organization.member_left.
	Reason       string    `json:"reason"`
	InvitationID string    `json:"invitation_id"`
	Email        string    `json:"email"`
	InvitedBy    string    `json:"invited_by"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// orgID returns the organization of the event: organization_id, or the
// event's workspace when the data lacks it.
func (d orgData) orgID(e events.Event) string {
	if d.OrganizationID != "" {
		return d.OrganizationID
	}
	return e.WorkspaceID
}

// lowBalanceData is the data of billing.low_credit_balance.
type lowBalanceData struct {
	WorkspaceID string `json:"workspace_id"`
	Balance     int64  `json:"balance"`
	Threshold   int64  `json:"threshold"`
}

// newLoginData is the data of security.new_login (see package accounts).
type newLoginData struct {
	UserID     string    `json:"user_id"`
	SessionID  string    `json:"session_id"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	LoggedInAt time.Time `json:"logged_in_at"`
}

// decodeData decodes the event's data into v. Its error is permanent,
// because retrying decodes the same bytes.
func decodeData(e events.Event, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return permanent(fmt.Errorf("decode %s event %s data: %w", e.Type, e.ID, err))
	}
	return nil
}
