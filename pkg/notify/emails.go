package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/orgs"
	"github.com/signsecure/signsecure/pkg/store"
)

// Emails is the fan-out that turns events into email jobs on the emails
// queue.
//
// Emails to an envelope's recipients follow the envelope's
// email_notifications: "all" sends signing requests (envelope.sent),
// next-signer alerts (envelope.signed), completion, rejection and voiding
// emails; "completion_only" sends only the completion email; "none" sends
// nothing. The invitation, new-login and low-balance emails are account
// emails, which neither that setting nor notification preferences change.
type Emails struct {
	queue   *email.Enqueuer
	dir     directory
	logger  *slog.Logger
	codeKey []byte
}

// WithInvitationCodeKey makes invitation emails carry the code that
// accepting needs, derived with key, and returns f.
func (f *Emails) WithInvitationCodeKey(key []byte) *Emails {
	f.codeKey = key
	return f
}

// NewEmails returns the email fan-out. It reads users and organizations
// from the store and sends jobs through the enqueuer. logger may be nil
// for the default logger.
func NewEmails(st *store.Store, queue *email.Enqueuer, logger *slog.Logger) *Emails {
	if logger == nil {
		logger = slog.Default()
	}
	return &Emails{queue: queue, dir: directory{store: st}, logger: logger}
}

// Name returns "emails".
func (f *Emails) Name() string { return "emails" }

// Deliver sends the event's email jobs to the queue. Job ids are derived
// from the event id, the kind and the address, and the enqueuer records
// each job, so a redelivered event queues no job twice.
func (f *Emails) Deliver(ctx context.Context, e events.Event) error {
	jobs, err := f.plan(ctx, e)
	if err != nil {
		return err
	}
	for _, job := range jobs {
		if _, err := f.queue.Enqueue(ctx, job); err != nil {
			return fmt.Errorf("%s event %s: %w", e.Type, e.ID, err)
		}
	}
	return nil
}

// plan returns the email jobs the event raises.
func (f *Emails) plan(ctx context.Context, e events.Event) ([]email.Job, error) {
	switch e.Type {
	case events.EnvelopeSent, events.EnvelopeSigned, events.EnvelopeCompleted, events.EnvelopeRejected, events.EnvelopeVoided:
		var d envelopeData
		if err := decodeData(e, &d); err != nil {
			return nil, err
		}
		senderName, err := f.dir.userName(ctx, d.SenderUserID, "A SignSecure user")
		if err != nil {
			return nil, err
		}
		return envelopeEmails(e, d, senderName, f.logger), nil
	case events.InvitationReceived:
		return f.planInvitation(ctx, e)
	case events.NewLogin:
		return f.planNewLogin(ctx, e)
	case events.LowCreditBalance:
		return f.planLowBalance(ctx, e)
	default:
		return nil, nil
	}
}

// envelopeEmails returns the jobs for the recipients of an envelope event,
// following the envelope's email setting. An unknown setting sends
// nothing and is logged. Rejection and voiding emails go only to the
// recipients who got an email from the envelope before: signers whose turn
// came, not cc recipients or signers still waiting.
func envelopeEmails(e events.Event, d envelopeData, senderName string, logger *slog.Logger) []email.Job {
	setting := d.EmailNotifications
	if setting == "" {
		setting = emailAll
	}
	switch setting {
	case emailAll:
	case emailCompletionOnly:
		if e.Type != events.EnvelopeCompleted {
			return nil
		}
	case emailNone:
		return nil
	default:
		logger.Error("envelope event has an unknown email_notifications setting; no recipient email sent",
			"event_id", e.ID, "envelope_id", d.EnvelopeID, "email_notifications", setting)
		return nil
	}

	job := func(kind email.Kind, r envelopeRecipient, vars map[string]string) email.Job {
		all := map[string]string{
			"envelope_title": d.Title,
			"sender_name":    senderName,
			"recipient_name": r.displayName(),
		}
		for k, v := range vars {
			all[k] = v
		}
		j := email.Job{
			ID:      email.JobID(e.ID, e.Timestamp, kind, r.Email),
			Kind:    kind,
			EventID: e.ID,
			To:      r.Email,
			ToName:  r.Name,
			Vars:    all,
		}
		if kind.NeedsSigningLink() {
			j.EnvelopeID, j.RecipientID = d.EnvelopeID, r.ID
		}
		return j
	}

	var jobs []email.Job
	switch e.Type {
	case events.EnvelopeSent, events.EnvelopeSigned:
		kind := email.SigningRequest
		if e.Type == events.EnvelopeSigned {
			kind = email.NextSigner
		}
		for _, id := range d.ActivatedRecipientIDs {
			r, ok := d.recipient(id)
			if !ok || r.Email == "" {
				logger.Error("activated recipient is not in the event's recipients; no email sent",
					"event_id", e.ID, "envelope_id", d.EnvelopeID, "recipient_id", id)
				continue
			}
			jobs = append(jobs, job(kind, r, nil))
		}
	case events.EnvelopeCompleted:
		for _, r := range d.Recipients {
			jobs = append(jobs, job(email.EnvelopeCompleted, r, nil))
		}
	case events.EnvelopeRejected:
		rejectedBy := "A signer"
		if r, ok := d.recipient(d.RecipientID); ok {
			rejectedBy = r.displayName()
		}
		for _, r := range d.Recipients {
			if r.ID != d.RecipientID && r.contacted() {
				jobs = append(jobs, job(email.EnvelopeRejected, r, map[string]string{"rejected_by": rejectedBy, "reason": d.Reason}))
			}
		}
	case events.EnvelopeVoided:
		for _, r := range d.Recipients {
			if r.contacted() {
				jobs = append(jobs, job(email.EnvelopeVoided, r, map[string]string{"reason": d.Reason}))
			}
		}
	}

	// A recipient without an address cannot be emailed.
	addressed := jobs[:0]
	for _, j := range jobs {
		if j.To != "" {
			addressed = append(addressed, j)
		}
	}
	return addressed
}

func (f *Emails) planInvitation(ctx context.Context, e events.Event) ([]email.Job, error) {
	var d orgData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	if d.Email == "" {
		return nil, permanent(fmt.Errorf("%s event %s: data has no email", e.Type, e.ID))
	}
	inviter, err := f.dir.userName(ctx, d.InvitedBy, "A member")
	if err != nil {
		return nil, err
	}
	org, err := f.dir.orgLabel(ctx, d, d.orgID(e))
	if err != nil {
		return nil, err
	}
	expires := ""
	if !d.ExpiresAt.IsZero() {
		expires = d.ExpiresAt.UTC().Format(time.RFC1123)
	}
	vars := map[string]string{
		"inviter_name":      inviter,
		"organization_name": org,
		"role":              d.Role,
		"expires_at":        expires,
		"invitation_id":     d.InvitationID,
		"invitation_code":   "",
	}
	if f.codeKey != nil && d.InvitationID != "" {
		vars["invitation_code"] = orgs.InvitationCode(f.codeKey, d.InvitationID, d.Email)
	}
	return []email.Job{{
		ID:      email.JobID(e.ID, e.Timestamp, email.OrganizationInvitation, d.Email),
		Kind:    email.OrganizationInvitation,
		EventID: e.ID,
		To:      d.Email,
		Vars:    vars,
	}}, nil
}

func (f *Emails) planNewLogin(ctx context.Context, e events.Event) ([]email.Job, error) {
	var d newLoginData
	if err := decodeData(e, &d); err != nil {
		return nil, err
	}
	if d.UserID == "" {
		d.UserID = e.WorkspaceID
	}
	user, err := f.dir.user(ctx, d.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, permanent(fmt.Errorf("%s event %s: %w", e.Type, e.ID, err))
	}
	if err != nil {
		return nil, fmt.Errorf("%s event %s: %w", e.Type, e.ID, err)
	}
	return []email.Job{{
		ID:      email.JobID(e.ID, e.Timestamp, email.NewLogin, user.Email),
		Kind:    email.NewLogin,
		EventID: e.ID,
		To:      user.Email,
		ToName:  user.Name,
		Vars: map[string]string{
			"user_name":    user.Name,
			"ip":           d.IP,
			"user_agent":   d.UserAgent,
			"logged_in_at": loginTime(d, e),
		},
	}}, nil
}

func (f *Emails) planLowBalance(ctx context.Context, e events.Event) ([]email.Job, error) {
	d, users, name, err := lowBalanceTargets(ctx, f.dir, e)
	if err != nil {
		return nil, err
	}
	jobs := make([]email.Job, 0, len(users))
	for _, userID := range users {
		user, err := f.dir.user(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			f.logger.Warn("user to alert about a low balance does not exist; no email for them",
				"event_id", e.ID, "user_id", userID)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s event %s: %w", e.Type, e.ID, err)
		}
		jobs = append(jobs, email.Job{
			ID:      email.JobID(e.ID, e.Timestamp, email.LowCreditBalance, user.Email),
			Kind:    email.LowCreditBalance,
			EventID: e.ID,
			To:      user.Email,
			ToName:  user.Name,
			Vars: map[string]string{
				"user_name":      user.Name,
				"workspace_name": name,
				"balance":        strconv.FormatInt(d.Balance, 10),
				"threshold":      strconv.FormatInt(d.Threshold, 10),
			},
		})
	}
	return jobs, nil
}
