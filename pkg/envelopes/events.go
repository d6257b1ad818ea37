package envelopes

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/events"
)

// EventData is the data of every envelope event. It never carries a
// signing token: the email function rebuilds a signer's link with
// SigningToken and SigningLink from EnvelopeID and the recipient's id.
type EventData struct {
	EnvelopeID string `json:"envelope_id"`
	Title      string `json:"title"`
	// SenderUserID is the user who created the envelope; for an API key,
	// the user who created the key.
	SenderUserID       string           `json:"sender_user_id"`
	WorkspaceID        string           `json:"workspace_id"`
	EmailNotifications string           `json:"email_notifications"`
	Status             string           `json:"status"`
	Recipients         []EventRecipient `json:"recipients"`
	// ActivatedRecipientIDs lists the signers whose turn began with this
	// event. It is present, possibly empty, in envelope.sent and
	// envelope.signed, and absent elsewhere.
	ActivatedRecipientIDs []string `json:"activated_recipient_ids,omitzero"`
	// RecipientID is the signer who signed (envelope.signed) or rejected
	// (envelope.rejected).
	RecipientID string `json:"recipient_id,omitempty"`
	// Reason is the rejection (envelope.rejected) or void
	// (envelope.voided) reason.
	Reason string `json:"reason,omitempty"`
	// VoidedBy is the user who voided the envelope (envelope.voided); for
	// an API key, the user who created the key.
	VoidedBy string `json:"voided_by,omitempty"`
}

// EventRecipient is a recipient as envelope events describe it, with its
// status after the event.
type EventRecipient struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	Role         string `json:"role"`
	RoutingOrder int    `json:"routing_order"`
	Status       string `json:"status"`
}

// eventData returns the data common to every event of the envelope, as it
// is once the change commits.
func eventData(e envelopeItem, recipients []recipientItem) EventData {
	d := EventData{
		EnvelopeID:         e.ID,
		Title:              e.Title,
		SenderUserID:       e.CreatedBy,
		WorkspaceID:        e.WorkspaceID,
		EmailNotifications: e.EmailNotifications,
		Status:             e.Status,
		Recipients:         make([]EventRecipient, 0, len(recipients)),
	}
	for _, r := range recipients {
		d.Recipients = append(d.Recipients, EventRecipient{
			ID: r.ID, Name: r.Name, Email: r.Email, Role: r.Role, RoutingOrder: r.RoutingOrder, Status: r.Status,
		})
	}
	return d
}

// eventPut returns the transaction item that writes an event of the
// envelope's workspace to the outbox.
func (s *Service) eventPut(typ string, data EventData, now time.Time) (types.TransactWriteItem, error) {
	e, err := events.New(typ, data.WorkspaceID, data, now)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("%s event of envelope %s: %w", typ, data.EnvelopeID, err)
	}
	put, err := events.Put(s.store, e)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("%s event of envelope %s: %w", typ, data.EnvelopeID, err)
	}
	return put, nil
}
