package envelopes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// LedgerReasonSend is the ledger reason of the debit for sending an
// envelope; the entry's reference is the envelope id.
const LedgerReasonSend = "envelope_send"

// Send sends a draft for signature. One transaction moves the envelope to
// sent and takes Config.SendCost credits from the workspace's wallet. The
// same transaction begins the turn of the signers with the lowest routing
// order, who become active and get their signing token items, and it
// appends the audit entry and an envelope.sent event. Of two concurrent
// sends of one envelope exactly one commits and pays.
//
// An envelope needs at least one document and one signer to be sent.
//
// Errors: Invalid (invalid_id); NotFound; Forbidden (not_envelope_sender);
// Conflict when the envelope is not a draft, or has no document
// (no_documents) or no signer (no_signers); InsufficientCredit
// (insufficient_credits) when the wallet cannot pay, in which case nothing
// changes.
func (s *Service) Send(ctx context.Context, caller *authn.Caller, client Client, envelopeID string) (Envelope, error) {
	var out Envelope
	err := s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		if err := readyToSend(st); err != nil {
			return err
		}

		now := s.now().UTC()
		next := st
		next.envelope.Status = StatusSent
		next.envelope.Version++
		next.envelope.CreditsSpent = s.cfg.SendCost
		next.envelope.SentAt = store.FormatTime(now)
		next.envelope.UpdatedAt = store.FormatTime(now)
		update := s.envelopeUpdate(st.envelope, "SET #status = :sent, credits_spent = :cost, sent_at = :now, updated_at = :now", nil,
			map[string]types.AttributeValue{":sent": str(StatusSent), ":cost": num(s.cfg.SendCost), ":now": str(store.FormatTime(now))})

		activation, activated, err := s.activate(&next, firstOrder(st.signers()), now)
		if err != nil {
			return err
		}
		audit, err := s.auditPut(envelopeID, ActionSent, callerActor(caller, client),
			map[string]string{"credits": fmt.Sprint(s.cfg.SendCost)}, now)
		if err != nil {
			return err
		}
		data := eventData(next.envelope, next.recipients)
		data.ActivatedRecipientIDs = activated
		event, err := s.eventPut(events.EnvelopeSent, data, now)
		if err != nil {
			return err
		}

		items := append(append([]types.TransactWriteItem{update}, activation...), audit, event)
		if err := s.commitPaid(ctx, next.envelope, items); err != nil {
			return err
		}
		out = next.full()
		return nil
	})
	return out, err
}

// commitPaid commits the items of a send, whose first item is the
// envelope's update, together with the debit of its cost.
func (s *Service) commitPaid(ctx context.Context, e envelopeItem, items []types.TransactWriteItem) error {
	var err error
	if s.cfg.SendCost == 0 {
		err = s.store.Transact(ctx, items...)
	} else {
		_, err = s.wallet.DebitWith(ctx, e.WorkspaceID, s.cfg.SendCost, LedgerReasonSend, e.ID, items...)
	}
	if store.FailedAt(err, 0) {
		return errChanged
	}
	if apperr.As(err) != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("send envelope %s: %w", e.ID, err)
	}
	return nil
}

// readyToSend returns the Conflict error that keeps a draft from being
// sent, or nil.
func readyToSend(st state) error {
	e := st.envelope
	if e.Status != StatusDraft {
		return stateConflict(e, "sent")
	}
	if len(st.documents) == 0 {
		return &apperr.Error{Code: apperr.Conflict, Reason: "no_documents",
			Message: fmt.Sprintf("Envelope %s has no document; add a PDF with POST /v1/envelopes/%s/documents before sending it.", e.ID, e.ID)}
	}
	if len(st.signers()) == 0 {
		return &apperr.Error{Code: apperr.Conflict, Reason: "no_signers",
			Message: fmt.Sprintf("Envelope %s has no recipient with the role %q; add one with PATCH /v1/envelopes/%s before sending it.", e.ID, RoleSigner, e.ID)}
	}
	return nil
}

// firstOrder returns the lowest routing order of the pending signers, or 0
// when no signer is pending.
func firstOrder(signers []recipientItem) int {
	order := 0
	for _, r := range signers {
		if r.Status == RecipientPending && (order == 0 || r.RoutingOrder < order) {
			order = r.RoutingOrder
		}
	}
	return order
}

// activate begins the turn of the pending signers of the routing order in
// st, and returns the transaction items that record it: per signer, the
// recipient's update (conditioned on it still being pending) and its new
// signing token item. Order 0 activates no signer.
func (s *Service) activate(st *state, order int, now time.Time) ([]types.TransactWriteItem, []string, error) {
	activated := []string{}
	var items []types.TransactWriteItem
	if order == 0 {
		return items, activated, nil
	}
	for i, r := range st.recipients {
		if r.Role != RoleSigner || r.RoutingOrder != order || r.Status != RecipientPending {
			continue
		}
		hash := token.Hash(SigningToken(s.cfg.SigningKey, r.EnvelopeID, r.ID))
		update := s.store.UpdateIn(r.key(),
			"SET #status = :active, activated_at = :now, signing_token_hash = :hash",
			"#status = :pending",
			map[string]string{"#status": "status"},
			map[string]types.AttributeValue{":active": str(RecipientActive), ":pending": str(RecipientPending), ":now": str(store.FormatTime(now)), ":hash": str(hash)})

		tok := signingItem{
			Item:        itemAt(store.SigningTokenKey(hash), entitySigning),
			EnvelopeID:  r.EnvelopeID,
			RecipientID: r.ID,
			Valid:       true,
			CreatedAt:   store.FormatTime(now),
		}
		tok.ExpiresAt = now.Add(s.cfg.SigningLinkTTL).Unix()
		put, err := s.store.PutNew(tok)
		if err != nil {
			return nil, nil, fmt.Errorf("activate recipient %s of envelope %s: %w", r.ID, r.EnvelopeID, err)
		}

		items = append(items, update, put)
		activated = append(activated, r.ID)
		st.recipients[i].Status = RecipientActive
		st.recipients[i].ActivatedAt = store.FormatTime(now)
		st.recipients[i].SigningTokenHash = hash
	}
	return items, activated, nil
}

// SigningLinkInfo is an active signer's signing link, for a sender who
// hands links out personally because the envelope sends no emails.
type SigningLinkInfo struct {
	RecipientID  string    `json:"recipient_id"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	RoutingOrder int       `json:"routing_order"`
	URL          string    `json:"url"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// SigningLinks returns the links of the signers whose turn it is, for an
// envelope whose signers get no signing-request email: email_notifications
// "none" or "completion_only". Each call is recorded in the audit trail,
// because the links let anyone sign.
//
// Errors: Invalid (invalid_id); NotFound; Forbidden (not_envelope_sender);
// Conflict when the envelope sends emails (signing_links_emailed) or is
// not sent.
func (s *Service) SigningLinks(ctx context.Context, caller *authn.Caller, client Client, envelopeID string) ([]SigningLinkInfo, error) {
	st, err := s.loadToChange(ctx, caller, envelopeID)
	if err != nil {
		return nil, err
	}
	e := st.envelope
	if e.EmailNotifications == EmailAll {
		return nil, &apperr.Error{Code: apperr.Conflict, Reason: "signing_links_emailed",
			Message: fmt.Sprintf("Envelope %s has email_notifications %q, so its signers get their links by email; links are handed out only for envelopes with %q or %q.", e.ID, EmailAll, EmailNone, EmailCompletionOnly)}
	}
	if e.Status != StatusSent {
		return nil, stateConflict(e, "signed")
	}

	links := []SigningLinkInfo{}
	var recipientIDs []string
	for _, r := range st.recipients {
		if r.Status != RecipientActive {
			continue
		}
		links = append(links, SigningLinkInfo{
			RecipientID:  r.ID,
			Name:         r.Name,
			Email:        r.Email,
			RoutingOrder: r.RoutingOrder,
			URL:          SigningLink(s.cfg.SigningBaseURL, SigningToken(s.cfg.SigningKey, e.ID, r.ID)),
			ExpiresAt:    store.ParseTime(r.ActivatedAt).Add(s.cfg.SigningLinkTTL).Truncate(time.Second),
		})
		recipientIDs = append(recipientIDs, r.ID)
	}

	now := s.now().UTC()
	audit, err := s.auditPut(e.ID, ActionSigningLinksViewed, callerActor(caller, client), map[string]string{"recipient_ids": strings.Join(recipientIDs, ",")}, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Transact(ctx, audit); err != nil {
		return nil, fmt.Errorf("audit signing links of envelope %s: %w", e.ID, err)
	}
	return links, nil
}
