package notify

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
)

// InApp is the fan-out that writes in-app notifications.
//
// Recipients of each event type:
//
//   - envelope.signed, envelope.completed, envelope.rejected: the
//     envelope's sender;
//   - organization member events: the organization's owners and admins,
//     and the member concerned;
//   - organization.invitation_received: the invitee, when the address has
//     an account;
//   - billing.low_credit_balance: the user of a personal workspace, or an
//     organization's owners and admins;
//   - security.new_login: the user.
//
// Other events raise no notification.
type InApp struct {
	service *Service
	dir     directory
}

// NewInApp returns the in-app fan-out over the service's table.
func NewInApp(svc *Service) *InApp {
	return &InApp{service: svc, dir: directory{store: svc.store}}
}

// Name returns "notifications".
func (f *InApp) Name() string { return "notifications" }

// delivery is one notification for one user.
type delivery struct {
	userID       string
	notification Notification
}

// Deliver writes the event's notifications. Each notification's id is
// derived from the event id, the user and the type, so a redelivered event
// finds its notifications in place and writes nothing.
func (f *InApp) Deliver(ctx context.Context, e events.Event) error {
	plan, err := f.plan(ctx, e)
	if err != nil {
		return err
	}
	for _, d := range plan {
		if _, err := f.service.Create(ctx, d.userID, d.notification); err != nil {
			return err
		}
	}
	return nil
}

// plan returns the notifications the event raises.
func (f *InApp) plan(ctx context.Context, e events.Event) ([]delivery, error) {
	switch e.Type {
	case events.EnvelopeSigned, events.EnvelopeCompleted, events.EnvelopeRejected:
		return f.planEnvelope(e)
	case events.MemberJoined, events.MemberLeft, events.MemberRoleChanged:
		return f.planMember(ctx, e)
	case events.InvitationReceived:
		return f.planInvitation(ctx, e)
	case events.LowCreditBalance:
		return f.planLowBalance(ctx, e)
	case events.NewLogin:
		return f.planNewLogin(e)
	default:
		return nil, nil
	}
}

func (f *InApp) planEnvelope(e events.Event) ([]delivery, error) {
	var d envelopeData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	if d.SenderUserID == "" {
		return nil, permanent(fmt.Errorf("%s event %s: data has no sender_user_id", e.Type, e.ID))
	}
	actor := "A recipient"
	if r, ok := d.recipient(d.RecipientID); ok {
		actor = r.displayName()
	}

	var title, body string
	switch e.Type {
	case events.EnvelopeSigned:
		title, body = "Envelope signed", fmt.Sprintf("%s signed %q.", actor, d.Title)
	case events.EnvelopeCompleted:
		title, body = "Envelope completed", fmt.Sprintf("Every signer signed %q.", d.Title)
	case events.EnvelopeRejected:
		title, body = "Envelope rejected", fmt.Sprintf("%s rejected %q.", actor, d.Title)
		if d.Reason != "" {
			body += " Reason: " + d.Reason
		}
	}
	data := map[string]string{"envelope_id": d.EnvelopeID}
	if d.RecipientID != "" {
		data["recipient_id"] = d.RecipientID
	}
	return []delivery{newDelivery(e, d.SenderUserID, title, body, data)}, nil
}

func (f *InApp) planMember(ctx context.Context, e events.Event) ([]delivery, error) {
	var d orgData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	orgID := d.orgID(e)
	managers, err := f.dir.managers(ctx, orgID)
	if err != nil {
		return nil, err
	}
	memberName, err := f.dir.userName(ctx, d.UserID, "A member")
	if err != nil {
		return nil, err
	}
	org, err := f.dir.orgLabel(ctx, d, orgID)
	if err != nil {
		return nil, err
	}

	data := map[string]string{"organization_id": orgID, "user_id": d.UserID}
	var out []delivery
	for _, userID := range unique(append(managers, d.UserID)...) {
		subject := memberName
		if userID == d.UserID {
			subject = "You"
		}
		title, body := memberText(e.Type, d, subject, org)
		out = append(out, newDelivery(e, userID, title, body, data))
	}
	return out, nil
}

// memberText returns the title and body of a member event's notification
// about subject, which is the member's name or "You".
func memberText(typ string, d orgData, subject, org string) (string, string) {
	switch typ {
	case events.MemberJoined:
		return "Member joined", fmt.Sprintf("%s joined %s as %s.", subject, org, d.Role)
	case events.MemberLeft:
		switch {
		case d.Reason != "removed":
			return "Member left", fmt.Sprintf("%s left %s.", subject, org)
		case subject == "You":
			return "Member removed", fmt.Sprintf("You were removed from %s.", org)
		default:
			return "Member removed", fmt.Sprintf("%s was removed from %s.", subject, org)
		}
	default:
		owner := subject + "'s role"
		if subject == "You" {
			owner = "Your role"
		}
		return "Role changed", fmt.Sprintf("%s in %s changed from %s to %s.", owner, org, d.OldRole, d.NewRole)
	}
}

func (f *InApp) planInvitation(ctx context.Context, e events.Event) ([]delivery, error) {
	var d orgData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	invitee, err := inviteeUserID(ctx, f.dir, d)
	if err != nil || invitee == "" {
		return nil, err
	}
	inviter, err := f.dir.userName(ctx, d.InvitedBy, "A member")
	if err != nil {
		return nil, err
	}
	org, err := f.dir.orgLabel(ctx, d, d.orgID(e))
	if err != nil {
		return nil, err
	}
	body := fmt.Sprintf("%s invited you to join %s as %s.", inviter, org, d.Role)
	data := map[string]string{"organization_id": d.orgID(e), "invitation_id": d.InvitationID}
	return []delivery{newDelivery(e, invitee, "Invitation to "+org, body, data)}, nil
}

// inviteeUserID returns the invitee's account: invitee_user_id or user_id
// from the event, else the holder of the invited address; "" when the
// address has no account.
func inviteeUserID(ctx context.Context, dir directory, d orgData) (string, error) {
	switch {
	case d.InviteeUserID != "":
		return d.InviteeUserID, nil
	case d.UserID != "":
		return d.UserID, nil
	case d.Email == "":
		return "", nil
	default:
		return dir.userIDByEmail(ctx, d.Email)
	}
}

func (f *InApp) planLowBalance(ctx context.Context, e events.Event) ([]delivery, error) {
	d, users, name, err := lowBalanceTargets(ctx, f.dir, e)
	if err != nil {
		return nil, err
	}
	body := fmt.Sprintf("The wallet of %s has %d credits left, below its alert threshold of %d.", name, d.Balance, d.Threshold)
	data := map[string]string{
		"workspace_id": d.WorkspaceID,
		"balance":      strconv.FormatInt(d.Balance, 10),
		"threshold":    strconv.FormatInt(d.Threshold, 10),
	}
	out := make([]delivery, 0, len(users))
	for _, userID := range users {
		out = append(out, newDelivery(e, userID, "Low credit balance", body, data))
	}
	return out, nil
}

// lowBalanceTargets decodes a low-balance event and returns the users to
// tell and the workspace's name.
func lowBalanceTargets(ctx context.Context, dir directory, e events.Event) (lowBalanceData, []string, string, error) {
	var d lowBalanceData
	if err := decodeData(e, &d); err != nil {
		return d, nil, "", err
	}
	if d.WorkspaceID == "" {
		d.WorkspaceID = e.WorkspaceID
	}
	users, err := dir.workspaceUsers(ctx, d.WorkspaceID)
	if err != nil {
		return d, nil, "", permanent(fmt.Errorf("%s event %s: %w", e.Type, e.ID, err))
	}
	name, err := dir.workspaceName(ctx, d.WorkspaceID)
	if err != nil {
		return d, nil, "", err
	}
	return d, users, name, nil
}

func (f *InApp) planNewLogin(e events.Event) ([]delivery, error) {
	var d newLoginData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	if d.UserID == "" {
		d.UserID = e.WorkspaceID
	}
	body := fmt.Sprintf("Your account logged in from %s (%s) at %s. If this was not you, change your password.",
		d.IP, d.UserAgent, loginTime(d, e))
	data := map[string]string{"session_id": d.SessionID, "ip": d.IP}
	return []delivery{newDelivery(e, d.UserID, "New login detected", body, data)}, nil
}

func loginTime(d newLoginData, e events.Event) string {
	t := d.LoggedInAt
	if t.IsZero() {
		t = e.Timestamp
	}
	return t.UTC().Format(time.RFC3339)
}

// newDelivery returns the notification of the event's type for the user.
// Its id is a ULID with the event's time, and entropy derived from the
// event id, the user and the type.
func newDelivery(e events.Event, userID, title, body string, data map[string]string) delivery {
	return delivery{userID: userID, notification: Notification{
		ID:        derivedID(ids.Notification, e.Timestamp, e.ID, userID, e.Type),
		Type:      e.Type,
		Title:     title,
		Body:      body,
		EventID:   e.ID,
		Data:      data,
		CreatedAt: e.Timestamp,
	}}
}
