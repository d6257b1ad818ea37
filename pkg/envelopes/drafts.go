package envelopes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Audit actions.
const (
	ActionCreated            = "envelope.created"
	ActionUpdated            = "envelope.updated"
	ActionDocumentAdded      = "document.added"
	ActionDocumentDeleted    = "document.deleted"
	ActionSent               = "envelope.sent"
	ActionSigningLinksViewed = "signing_links.viewed"
	ActionRecipientViewed    = "recipient.viewed"
	ActionSigned             = "recipient.signed"
	ActionRejected           = "recipient.rejected"
	ActionCompleted          = "envelope.completed"
	ActionVoided             = "envelope.voided"
)

// CreateInput is a new envelope as the sender gives it.
type CreateInput struct {
	Title   string `json:"title"`
	Message string `json:"message"`
	// EmailNotifications is "all", "completion_only" or "none"; empty
	// means "all".
	EmailNotifications string           `json:"email_notifications"`
	Recipients         []RecipientInput `json:"recipients"`
}

// Create makes a draft envelope in the caller's workspace and writes an
// envelope.created event.
//
// Errors: Invalid for a bad title, message, setting or recipient,
// including a duplicate address (duplicate_recipient).
func (s *Service) Create(ctx context.Context, caller *authn.Caller, client Client, in CreateInput) (Envelope, error) {
	title, err := oneLine("title", in.Title, MaxTitleLength, "invalid_title")
	if err != nil {
		return Envelope{}, err
	}
	message, err := text("message", in.Message, MaxMessageLength, false, "invalid_message")
	if err != nil {
		return Envelope{}, err
	}
	setting := in.EmailNotifications
	if setting == "" {
		setting = EmailAll
	}
	if err := checkEmailSetting("email_notifications", setting); err != nil {
		return Envelope{}, err
	}
	recipients, err := normalizeRecipients(in.Recipients)
	if err != nil {
		return Envelope{}, err
	}

	now := s.now().UTC()
	id := ids.NewAt(ids.Envelope, now)
	workspacePK := store.WorkspacePK(caller.WorkspaceID)
	if workspacePK == "" {
		return Envelope{}, fmt.Errorf("create envelope: caller workspace %q is not a workspace id", caller.WorkspaceID)
	}
	env := envelopeItem{
		Item:               itemAt(store.EnvelopeKey(id), entityEnvelope),
		ID:                 id,
		WorkspaceID:        caller.WorkspaceID,
		CreatedBy:          caller.UserID,
		Title:              title,
		Message:            message,
		EmailNotifications: setting,
		Status:             StatusDraft,
		Version:            1,
		RecipientCount:     len(recipients),
		CreatedAt:          store.FormatTime(now),
		UpdatedAt:          store.FormatTime(now),
	}
	env.GSI1PK, env.GSI1SK = store.EnvelopesGSI1PK(workspacePK), id
	if caller.Kind == authn.KindAPIKey {
		env.CreatedByAPIKeyID = caller.APIKeyID
	}
	recipientItems := newRecipientItems(id, recipients, now)

	items, err := s.putAll(append([]any{env}, anySlice(recipientItems)...)...)
	if err != nil {
		return Envelope{}, fmt.Errorf("create envelope %s: %w", id, err)
	}
	audit, err := s.auditPut(id, ActionCreated, callerActor(caller, client), nil, now)
	if err != nil {
		return Envelope{}, err
	}
	event, err := s.eventPut(events.EnvelopeCreated, eventData(env, recipientItems), now)
	if err != nil {
		return Envelope{}, err
	}
	if err := s.store.Transact(ctx, append(items, audit, event)...); err != nil {
		return Envelope{}, fmt.Errorf("create envelope %s: %w", id, err)
	}
	return state{envelope: env, recipients: recipientItems}.full(), nil
}

func newRecipientItems(envelopeID string, in []RecipientInput, now time.Time) []recipientItem {
	out := make([]recipientItem, 0, len(in))
	for i, r := range in {
		id := ids.NewAt(ids.Recipient, now)
		out = append(out, recipientItem{
			Item:         itemAt(store.RecipientKey(envelopeID, r.RoutingOrder, id), entityRecipient),
			ID:           id,
			EnvelopeID:   envelopeID,
			Name:         r.Name,
			Email:        r.Email,
			Role:         r.Role,
			RoutingOrder: r.RoutingOrder,
			Position:     i,
			Status:       RecipientPending,
		})
	}
	// Sorted the way load sorts, so a new envelope reads back the same.
	sortRecipients(out)
	return out
}

// putAll returns transaction items that create each of vs.
func (s *Service) putAll(vs ...any) ([]types.TransactWriteItem, error) {
	out := make([]types.TransactWriteItem, 0, len(vs))
	for _, v := range vs {
		put, err := s.store.PutNew(v)
		if err != nil {
			return nil, err
		}
		out = append(out, put)
	}
	return out, nil
}

func anySlice[T any](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}

// Get returns an envelope of the caller's workspace with its recipients
// and documents.
//
// Errors: Invalid (invalid_id); NotFound.
func (s *Service) Get(ctx context.Context, caller *authn.Caller, envelopeID string) (Envelope, error) {
	st, err := s.loadFor(ctx, caller, envelopeID)
	if err != nil {
		return Envelope{}, err
	}
	return st.full(), nil
}

// List returns a page of the caller's workspace's envelopes, newest first,
// without recipients and documents. A non-empty status keeps only the
// envelopes with that status.
//
// Errors: Invalid (invalid_status) for an unknown status;
// store.ErrInvalidCursor for a cursor from another listing.
func (s *Service) List(ctx context.Context, caller *authn.Caller, status string, limit int, cursor string) ([]Envelope, string, error) {
	q := store.Query{
		Index:      store.GSI1,
		Partition:  store.EnvelopesGSI1PK(store.WorkspacePK(caller.WorkspaceID)),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}
	if status != "" {
		switch status {
		case StatusDraft, StatusSent, StatusCompleted, StatusRejected, StatusVoided:
		default:
			return nil, "", apperr.InvalidField("status", "invalid_status", "Query parameter status=%q is not an envelope status; use %s.",
				truncate(status, 40), strings.Join([]string{StatusDraft, StatusSent, StatusCompleted, StatusRejected, StatusVoided}, ", "))
		}
		q.Filter = "#status = :status"
		q.FilterNames = map[string]string{"#status": "status"}
		q.FilterValues = map[string]types.AttributeValue{":status": str(status)}
	}

	var items []envelopeItem
	next, err := s.store.QueryPage(ctx, q, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list envelopes of %s: %w", caller.WorkspaceID, err)
	}
	out := make([]Envelope, 0, len(items))
	for _, it := range items {
		out = append(out, it.envelope())
	}
	return out, next, nil
}

// UpdateInput holds the fields of a draft to change; nil fields stay as
// they are. Recipients, when given, replace the whole list, and the new
// recipients get new ids.
type UpdateInput struct {
	Title              *string           `json:"title"`
	Message            *string           `json:"message"`
	EmailNotifications *string           `json:"email_notifications"`
	Recipients         *[]RecipientInput `json:"recipients"`
}

// Update changes a draft.
//
// Errors: Invalid for an empty change or a bad field; NotFound; Forbidden
// (not_envelope_sender); Conflict when the envelope is no longer a draft.
func (s *Service) Update(ctx context.Context, caller *authn.Caller, client Client, envelopeID string, in UpdateInput) (Envelope, error) {
	if in.Title == nil && in.Message == nil && in.EmailNotifications == nil && in.Recipients == nil {
		return Envelope{}, apperr.New(apperr.Invalid, "The request changes nothing; give at least one of title, message, email_notifications and recipients.").WithReason("empty_update")
	}
	var changed []string
	var title, message string
	var err error
	if in.Title != nil {
		if title, err = oneLine("title", *in.Title, MaxTitleLength, "invalid_title"); err != nil {
			return Envelope{}, err
		}
		changed = append(changed, "title")
	}
	if in.Message != nil {
		if message, err = text("message", *in.Message, MaxMessageLength, false, "invalid_message"); err != nil {
			return Envelope{}, err
		}
		changed = append(changed, "message")
	}
	if in.EmailNotifications != nil {
		if err := checkEmailSetting("email_notifications", *in.EmailNotifications); err != nil {
			return Envelope{}, err
		}
		changed = append(changed, "email_notifications")
	}
	var recipients []RecipientInput
	if in.Recipients != nil {
		if recipients, err = normalizeRecipients(*in.Recipients); err != nil {
			return Envelope{}, err
		}
		changed = append(changed, "recipients")
	}

	var out Envelope
	err = s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		if st.envelope.Status != StatusDraft {
			return stateConflict(st.envelope, "changed")
		}

		now := s.now().UTC()
		next := st
		next.envelope.Version++
		next.envelope.UpdatedAt = store.FormatTime(now)
		if in.Title != nil {
			next.envelope.Title = title
		}
		if in.Message != nil {
			next.envelope.Message = message
		}
		if in.EmailNotifications != nil {
			next.envelope.EmailNotifications = *in.EmailNotifications
		}
		if in.Recipients != nil {
			next.recipients = newRecipientItems(envelopeID, recipients, now)
			next.envelope.RecipientCount = len(next.recipients)
		}

		items := []types.TransactWriteItem{s.envelopeUpdate(st.envelope,
			"SET title = :title, message = :message, email_notifications = :setting, recipient_count = :count, updated_at = :now",
			nil, map[string]types.AttributeValue{
				":title":   str(next.envelope.Title),
				":message": str(next.envelope.Message),
				":setting": str(next.envelope.EmailNotifications),
				":count":   num(int64(next.envelope.RecipientCount)),
				":now":     str(next.envelope.UpdatedAt),
			})}
		if in.Recipients != nil {
			for _, r := range st.recipients {
				items = append(items, s.store.DeleteIf(r.key(), "", nil))
			}
			puts, err := s.putAll(anySlice(next.recipients)...)
			if err != nil {
				return fmt.Errorf("update envelope %s: %w", envelopeID, err)
			}
			items = append(items, puts...)
		}
		audit, err := s.auditPut(envelopeID, ActionUpdated, callerActor(caller, client), map[string]string{"fields": strings.Join(changed, ",")}, now)
		if err != nil {
			return err
		}

		err = s.store.Transact(ctx, append(items, audit)...)
		if store.FailedAt(err, 0) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("update envelope %s: %w", envelopeID, err)
		}
		out = next.full()
		return nil
	})
	return out, err
}

// Delete removes a draft with its recipients, documents and audit trail.
//
// Errors: Invalid (invalid_id); NotFound; Forbidden (not_envelope_sender);
// Conflict when the envelope is no longer a draft.
func (s *Service) Delete(ctx context.Context, caller *authn.Caller, envelopeID string) error {
	var deleted state
	err := s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		if st.envelope.Status != StatusDraft {
			return stateConflict(st.envelope, "deleted")
		}

		table := s.store.Table()
		items := []types.TransactWriteItem{{Delete: &types.Delete{
			TableName:                 &table,
			Key:                       store.EnvelopeKey(envelopeID).Attributes(),
			ConditionExpression:       new("#status = :status AND #version = :version"),
			ExpressionAttributeNames:  map[string]string{"#status": "status", "#version": "version"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":status": str(StatusDraft), ":version": num(st.envelope.Version)},
		}}}
		for _, r := range st.recipients {
			items = append(items, s.store.DeleteIf(r.key(), "", nil))
		}
		for _, d := range st.documents {
			items = append(items, s.store.DeleteIf(store.DocumentKey(envelopeID, d.ID), "", nil))
		}

		err = s.store.Transact(ctx, items...)
		if store.FailedAt(err, 0) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("delete envelope %s: %w", envelopeID, err)
		}
		deleted = st
		return nil
	})
	if err != nil {
		return err
	}

	// The envelope is gone, so nothing can read what remains; removing it
	// is clean-up, and a failure only leaves unreachable data behind.
	for _, d := range deleted.documents {
		s.deleteObject(ctx, d.ObjectKey)
	}
	s.deleteAuditTrail(ctx, envelopeID)
	return nil
}

// deleteAuditTrail removes the audit entries of a deleted draft, logging
// a failure instead of returning it.
func (s *Service) deleteAuditTrail(ctx context.Context, envelopeID string) {
	ctx = context.WithoutCancel(ctx)
	cursor := ""
	for {
		var entries []auditItem
		next, err := s.store.QueryPage(ctx, store.Query{
			Partition: store.EnvelopePK(envelopeID),
			SKPrefix:  store.AuditSKPrefix(),
			Limit:     100,
			Cursor:    cursor,
		}, &entries)
		if err != nil {
			s.logger.ErrorContext(ctx, "list audit trail of deleted envelope", "envelope_id", envelopeID, "error", err.Error())
			return
		}
		for _, a := range entries {
			if err := s.store.Delete(ctx, store.AuditKey(envelopeID, a.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.logger.ErrorContext(ctx, "delete audit entry of deleted envelope", "envelope_id", envelopeID, "audit_id", a.ID, "error", err.Error())
				return
			}
		}
		if next == "" {
			return
		}
		cursor = next
	}
}

// ListAudit returns a page of an envelope's audit trail, oldest first.
//
// Errors: Invalid (invalid_id); NotFound; store.ErrInvalidCursor for a
// cursor from another listing.
func (s *Service) ListAudit(ctx context.Context, caller *authn.Caller, envelopeID string, limit int, cursor string) ([]AuditEntry, string, error) {
	if _, err := s.loadFor(ctx, caller, envelopeID); err != nil {
		return nil, "", err
	}
	var items []auditItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Partition: store.EnvelopePK(envelopeID),
		SKPrefix:  store.AuditSKPrefix(),
		Limit:     limit,
		Cursor:    cursor,
	}, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list audit trail of envelope %s: %w", envelopeID, err)
	}
	out := make([]AuditEntry, 0, len(items))
	for _, it := range items {
		out = append(out, it.entry())
	}
	return out, next, nil
}
