package envelopes

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// VoidInput is the sender's reason for voiding an envelope.
type VoidInput struct {
	Reason string `json:"reason"`
}

// Void ends a sent envelope that is not finished, invalidates its signing
// links and writes an envelope.voided event. The credits spent on sending
// are not refunded.
//
// Errors: Invalid (invalid_id, invalid_reason); NotFound; Forbidden
// (not_envelope_sender); Conflict when the envelope is a draft or already
// finished.
func (s *Service) Void(ctx context.Context, caller *authn.Caller, client Client, envelopeID string, in VoidInput) (Envelope, error) {
	reason, err := text("reason", in.Reason, MaxReasonLength, true, "invalid_reason")
	if err != nil {
		return Envelope{}, err
	}

	var out Envelope
	err = s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		if st.envelope.Status != StatusSent {
			return stateConflict(st.envelope, "voided")
		}

		now := s.now().UTC()
		next := st
		e := &next.envelope
		e.Status, e.VoidedAt, e.VoidedBy, e.VoidReason = StatusVoided, store.FormatTime(now), caller.UserID, reason
		e.Version++
		e.UpdatedAt = store.FormatTime(now)

		update := s.envelopeUpdate(st.envelope,
			"SET #status = :voided, voided_at = :now, voided_by = :by, void_reason = :reason, updated_at = :now", nil,
			map[string]types.AttributeValue{":voided": str(StatusVoided), ":now": str(store.FormatTime(now)), ":by": str(caller.UserID), ":reason": str(reason)})
		invalidations, err := s.invalidateTokens(st)
		if err != nil {
			return err
		}
		audit, err := s.auditPut(envelopeID, ActionVoided, callerActor(caller, client), map[string]string{"reason": reason}, now)
		if err != nil {
			return err
		}
		data := eventData(*e, next.recipients)
		data.Reason, data.VoidedBy = reason, caller.UserID
		event, err := s.eventPut(events.EnvelopeVoided, data, now)
		if err != nil {
			return err
		}

		items := append([]types.TransactWriteItem{update}, invalidations...)
		err = s.store.Transact(ctx, append(items, audit, event)...)
		if store.FailedAt(err, 0) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("void envelope %s: %w", envelopeID, err)
		}
		out = next.full()
		return nil
	})
	return out, err
}
