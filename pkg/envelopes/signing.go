package envelopes

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// SigningView is the envelope as a signing link shows it to its recipient.
type SigningView struct {
	Envelope  SigningEnvelope   `json:"envelope"`
	Recipient Recipient         `json:"recipient"`
	Documents []SigningDocument `json:"documents"`
}

// SigningEnvelope is the part of an envelope that its signers see.
type SigningEnvelope struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Message     string     `json:"message"`
	Status      string     `json:"status"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// SigningDocument is a document as its signers see it.
type SigningDocument struct {
	Document
	// DownloadPath is the URI template (RFC 6570) of the download route,
	// "/v1/signing/{token}/documents/<document id>". The client fills in
	// its own token, so no response repeats it.
	DownloadPath string `json:"download_path"`
}

// signingCase is a signing link resolved to its envelope and recipient.
type signingCase struct {
	st        state
	recipient recipientItem
	token     signingItem
}

// resolve looks up a signing token and reads its envelope.
//
// Errors: NotFound (signing_link_invalid, signing_link_expired).
func (s *Service) resolve(ctx context.Context, tok string) (signingCase, error) {
	invalid := &apperr.Error{Code: apperr.NotFound, Reason: "signing_link_invalid",
		Message: "The signing link is not valid; open the link from your signing email or ask the sender for a new one."}
	if !wellFormedToken(tok) {
		return signingCase{}, invalid
	}

	var it signingItem
	err := s.store.Get(ctx, store.SigningTokenKey(token.Hash(tok)), &it)
	if errors.Is(err, store.ErrNotFound) {
		return signingCase{}, invalid
	}
	if err != nil {
		return signingCase{}, fmt.Errorf("resolve signing link: %w", err)
	}
	// TTL deletion lags expiry by up to a few days, so expiry is checked
	// here too.
	if s.now().Unix() >= it.ExpiresAt {
		return signingCase{}, &apperr.Error{Code: apperr.NotFound, Reason: "signing_link_expired",
			Message: "The signing link has expired; ask the sender to send the envelope again."}
	}

	st, err := s.load(ctx, it.EnvelopeID)
	if errors.Is(err, store.ErrNotFound) {
		return signingCase{}, invalid
	}
	if err != nil {
		return signingCase{}, err
	}
	r, ok := st.recipient(it.RecipientID)
	if !ok {
		return signingCase{}, invalid
	}
	return signingCase{st: st, recipient: r, token: it}, nil
}

// readable returns the Conflict error for a link that no longer shows its
// envelope, because the envelope was rejected or voided, or nil.
func (c signingCase) readable() error {
	if c.token.Valid {
		return nil
	}
	return stateConflict(c.st.envelope, "viewed")
}

// actionable returns the Conflict error that keeps the recipient from
// signing or rejecting now, or nil.
func (c signingCase) actionable(action string) error {
	if c.st.envelope.Status != StatusSent || !c.token.Valid {
		return stateConflict(c.st.envelope, action)
	}
	r := c.recipient
	switch {
	case r.Status == RecipientActive:
		return nil
	case r.Status == RecipientSigned:
		return &apperr.Error{Code: apperr.Conflict, Reason: "already_signed",
			Message: fmt.Sprintf("Recipient %s signed envelope %s at %s and can no longer sign or reject it.", r.ID, r.EnvelopeID, r.SignedAt)}
	default:
		return &apperr.Error{Code: apperr.Conflict, Reason: "recipient_" + r.Status,
			Message: fmt.Sprintf("Recipient %s of envelope %s is %s and cannot act now.", r.ID, r.EnvelopeID, r.Status)}
	}
}

func (c signingCase) view() SigningView {
	e := c.st.envelope
	v := SigningView{
		Envelope: SigningEnvelope{
			ID:          e.ID,
			Title:       e.Title,
			Message:     e.Message,
			Status:      e.Status,
			SentAt:      optionalTime(e.SentAt),
			CompletedAt: optionalTime(e.CompletedAt),
		},
		Recipient: c.recipient.recipient(),
		Documents: make([]SigningDocument, 0, len(c.st.documents)),
	}
	for _, d := range c.st.documents {
		v.Documents = append(v.Documents, SigningDocument{
			Document:     d.document(),
			DownloadPath: "/v1/signing/{token}/documents/" + d.ID,
		})
	}
	return v
}

func recipientActor(r recipientItem, client Client) actor {
	return actor{Type: ActorRecipient, ID: r.ID, Client: client}
}

// View returns the envelope behind a signing link. The first view by an
// active signer is recorded in the audit trail.
//
// Errors: NotFound (signing_link_invalid, signing_link_expired); Conflict
// when the envelope was rejected or voided.
func (s *Service) View(ctx context.Context, tok string, client Client) (SigningView, error) {
	c, err := s.resolve(ctx, tok)
	if err != nil {
		return SigningView{}, err
	}
	if err := c.readable(); err != nil {
		return SigningView{}, err
	}
	if c.recipient.Status != RecipientActive || c.recipient.ViewedAt != "" || c.st.envelope.Status != StatusSent {
		return c.view(), nil
	}

	now := s.now().UTC()
	update := s.store.UpdateIn(c.recipient.key(), "SET viewed_at = :now",
		"attribute_not_exists(viewed_at) AND #status = :active",
		map[string]string{"#status": "status"},
		map[string]types.AttributeValue{":now": str(store.FormatTime(now)), ":active": str(RecipientActive)})
	audit, err := s.auditPut(c.st.envelope.ID, ActionRecipientViewed, recipientActor(c.recipient, client), nil, now)
	if err != nil {
		return SigningView{}, err
	}
	err = s.store.Transact(ctx, update, audit)
	if store.FailedAt(err, 0) {
		// Another request recorded the first view, or the signer acted
		// in between; this view needs no entry.
		return c.view(), nil
	}
	if err != nil {
		return SigningView{}, fmt.Errorf("record view of envelope %s by recipient %s: %w", c.st.envelope.ID, c.recipient.ID, err)
	}
	c.recipient.ViewedAt = store.FormatTime(now)
	return c.view(), nil
}

// OpenSigningDocument returns a document of the envelope behind a signing
// link and its content, which the caller must close.
//
// Errors: as View; NotFound (document_not_found).
func (s *Service) OpenSigningDocument(ctx context.Context, tok, documentID string) (Document, io.ReadCloser, error) {
	c, err := s.resolve(ctx, tok)
	if err != nil {
		return Document{}, nil, err
	}
	if err := c.readable(); err != nil {
		return Document{}, nil, err
	}
	return s.openDocument(ctx, c.st, documentID)
}

// SignInput is a signature.
type SignInput struct {
	// TypedName is the name the signer types as their signature.
	TypedName string `json:"typed_name"`
	// SignaturePNG is an optional drawn signature: a base64 PNG image of
	// at most MaxSignatureBytes.
	SignaturePNG string `json:"signature_png"`
}

// Sign records the signature of the recipient behind a signing link and
// writes an envelope.signed event. When the recipient was the last signer
// of their routing order, the next order's turn begins in the same
// transaction. When they were the last signer of the envelope, the
// envelope is completed and an envelope.completed event is written too.
// Concurrent signatures are serialized by the envelope's version, so
// exactly one of them completes the envelope.
//
// Errors: Invalid (invalid_typed_name, invalid_signature_png); NotFound
// as View; Conflict when the envelope is not in progress, the recipient
// has signed (already_signed) or is not active.
func (s *Service) Sign(ctx context.Context, tok string, client Client, in SignInput) (SigningView, error) {
	typedName, err := oneLine("typed_name", in.TypedName, MaxNameLength, "invalid_typed_name")
	if err != nil {
		return SigningView{}, err
	}
	var image []byte
	if in.SignaturePNG != "" {
		if image, err = decodeSignaturePNG(in.SignaturePNG); err != nil {
			return SigningView{}, err
		}
	}

	imageKey := ""
	var out SigningView
	err = s.retry(ctx, "", func() error {
		c, err := s.resolve(ctx, tok)
		if err != nil {
			return err
		}
		if err := c.actionable("signed"); err != nil {
			return err
		}
		if c.recipient.Role != RoleSigner {
			return &apperr.Error{Code: apperr.Conflict, Reason: "not_a_signer",
				Message: fmt.Sprintf("Recipient %s of envelope %s is a %s and does not sign.", c.recipient.ID, c.st.envelope.ID, c.recipient.Role)}
		}
		if image != nil && imageKey == "" {
			if imageKey, err = s.putSignatureImage(ctx, c.recipient, image); err != nil {
				return err
			}
		}

		now := s.now().UTC()
		items, next, err := s.signItems(c, typedName, imageKey, client, now)
		if err != nil {
			return err
		}
		err = s.store.Transact(ctx, items...)
		if store.FailedAt(err, 0) || store.FailedAt(err, 1) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("sign envelope %s as recipient %s: %w", c.st.envelope.ID, c.recipient.ID, err)
		}
		out = next.view()
		return nil
	})
	if err != nil {
		if imageKey != "" {
			s.deleteObject(ctx, imageKey)
		}
		return SigningView{}, err
	}
	return out, nil
}

// signItems returns the transaction items of a signature and the case as
// it is once they commit. The envelope's update comes first and the
// recipient's second.
func (s *Service) signItems(c signingCase, typedName, imageKey string, client Client, now time.Time) ([]types.TransactWriteItem, signingCase, error) {
	next := c
	next.st.recipients = append([]recipientItem(nil), c.st.recipients...)
	for i, r := range next.st.recipients {
		if r.ID == c.recipient.ID {
			next.st.recipients[i].Status = RecipientSigned
			next.st.recipients[i].SignedAt = store.FormatTime(now)
			next.st.recipients[i].TypedName = typedName
			next.st.recipients[i].SignatureKey = imageKey
			next.recipient = next.st.recipients[i]
		}
	}

	// The next routing order begins only when no signer of this one is
	// still active.
	var activation []types.TransactWriteItem
	activated := []string{}
	if !anyActive(next.st.recipients) {
		var err error
		activation, activated, err = s.activate(&next.st, firstOrder(next.st.signers()), now)
		if err != nil {
			return nil, signingCase{}, err
		}
	}
	completed := allSigned(next.st.signers())

	e := &next.st.envelope
	e.Version++
	e.UpdatedAt = store.FormatTime(now)
	update := "SET updated_at = :now"
	values := map[string]types.AttributeValue{":now": str(store.FormatTime(now))}
	if completed {
		e.Status, e.CompletedAt = StatusCompleted, store.FormatTime(now)
		update += ", #status = :completed, completed_at = :now"
		values[":completed"] = str(StatusCompleted)
	}
	envelopeUpdate := s.envelopeUpdate(c.st.envelope, update, nil, values)

	recipientSet := "SET #status = :signed, signed_at = :now, typed_name = :typed, action_ip = :ip, action_user_agent = :ua"
	recipientValues := map[string]types.AttributeValue{
		":signed": str(RecipientSigned), ":active": str(RecipientActive), ":now": str(store.FormatTime(now)),
		":typed": str(typedName), ":ip": str(client.IP), ":ua": str(truncate(client.UserAgent, maxUserAgentLength)),
	}
	if imageKey != "" {
		recipientSet += ", signature_key = :image"
		recipientValues[":image"] = str(imageKey)
	}
	recipientUpdate := s.store.UpdateIn(c.recipient.key(), recipientSet, "#status = :active",
		map[string]string{"#status": "status"}, recipientValues)

	audit, err := s.auditPut(e.ID, ActionSigned, recipientActor(c.recipient, client), map[string]string{"typed_name": typedName}, now)
	if err != nil {
		return nil, signingCase{}, err
	}
	data := eventData(*e, next.st.recipients)
	data.RecipientID = c.recipient.ID
	data.ActivatedRecipientIDs = activated
	event, err := s.eventPut(events.EnvelopeSigned, data, now)
	if err != nil {
		return nil, signingCase{}, err
	}

	items := append([]types.TransactWriteItem{envelopeUpdate, recipientUpdate}, activation...)
	items = append(items, audit, event)
	if completed {
		// Entry ids sort by millisecond, so the completion is dated one
		// millisecond after the signature that caused it to list after it.
		completedAudit, err := s.auditPut(e.ID, ActionCompleted, actor{Type: ActorSystem}, nil, now.Add(time.Millisecond))
		if err != nil {
			return nil, signingCase{}, err
		}
		completedEvent, err := s.eventPut(events.EnvelopeCompleted, eventData(*e, next.st.recipients), now)
		if err != nil {
			return nil, signingCase{}, err
		}
		items = append(items, completedAudit, completedEvent)
	}
	return items, next, nil
}

func anyActive(rs []recipientItem) bool {
	for _, r := range rs {
		if r.Status == RecipientActive {
			return true
		}
	}
	return false
}

func allSigned(signers []recipientItem) bool {
	for _, r := range signers {
		if r.Status != RecipientSigned {
			return false
		}
	}
	return true
}

// putSignatureImage stores a drawn signature under a key of its own, so an
// attempt that loses a race never overwrites the winner's image.
func (s *Service) putSignatureImage(ctx context.Context, r recipientItem, image []byte) (string, error) {
	key := fmt.Sprintf("envelopes/%s/signatures/%s/%s.png", r.EnvelopeID, r.ID, ids.New("sig"))
	_, err := s.objects.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(image),
		ContentLength: new(int64(len(image))),
		ContentType:   new("image/png"),
	})
	if err != nil {
		return "", fmt.Errorf("store signature of recipient %s of envelope %s: %w", r.ID, r.EnvelopeID, err)
	}
	return key, nil
}

// pngMagic is the 8-byte signature that starts every PNG file.
var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// decodeSignaturePNG decodes a base64 PNG and checks its size, its magic
// bytes and that its header parses with sane dimensions.
func decodeSignaturePNG(b64 string) ([]byte, error) {
	const field = "signature_png"
	if base64.StdEncoding.DecodedLen(len(b64)) > MaxSignatureBytes+3 {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q decodes to more than %d bytes; send a smaller image.", field, MaxSignatureBytes)
	}
	image, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q is not standard base64: %v.", field, err)
	}
	if len(image) > MaxSignatureBytes {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q decodes to %d bytes; the limit is %d.", field, len(image), MaxSignatureBytes)
	}
	if !bytes.HasPrefix(image, pngMagic) {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q is not a PNG image: it lacks the PNG signature bytes.", field)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(image))
	if err != nil {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q is not a readable PNG image: %v.", field, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxSignatureWidth || cfg.Height > maxSignatureHeight {
		return nil, apperr.InvalidField(field, "invalid_signature_png", "Field %q is %dx%d pixels; a signature is at most %dx%d.",
			field, cfg.Width, cfg.Height, maxSignatureWidth, maxSignatureHeight)
	}
	return image, nil
}

// RejectInput is a signer's refusal to sign.
type RejectInput struct {
	Reason string `json:"reason"`
}

// Reject ends the envelope behind a signing link as rejected, invalidates
// every signing link of the envelope and writes an envelope.rejected event.
//
// Errors: Invalid (invalid_reason); NotFound as View; Conflict when the
// envelope is not in progress or the recipient is not active.
func (s *Service) Reject(ctx context.Context, tok string, client Client, in RejectInput) (SigningView, error) {
	reason, err := text("reason", in.Reason, MaxReasonLength, true, "invalid_reason")
	if err != nil {
		return SigningView{}, err
	}

	var out SigningView
	err = s.retry(ctx, "", func() error {
		c, err := s.resolve(ctx, tok)
		if err != nil {
			return err
		}
		if err := c.actionable("rejected"); err != nil {
			return err
		}

		now := s.now().UTC()
		next := c
		next.st.recipients = append([]recipientItem(nil), c.st.recipients...)
		for i, r := range next.st.recipients {
			if r.ID == c.recipient.ID {
				next.st.recipients[i].Status = RecipientRejected
				next.st.recipients[i].RejectedAt = store.FormatTime(now)
				next.st.recipients[i].RejectReason = reason
				next.recipient = next.st.recipients[i]
			}
		}
		e := &next.st.envelope
		e.Status, e.RejectedAt, e.RejectedBy, e.RejectReason = StatusRejected, store.FormatTime(now), c.recipient.ID, reason
		e.Version++
		e.UpdatedAt = store.FormatTime(now)
		next.token.Valid = false

		envelopeUpdate := s.envelopeUpdate(c.st.envelope,
			"SET #status = :rejected, rejected_at = :now, rejected_by = :by, reject_reason = :reason, updated_at = :now", nil,
			map[string]types.AttributeValue{":rejected": str(StatusRejected), ":now": str(store.FormatTime(now)), ":by": str(c.recipient.ID), ":reason": str(reason)})
		recipientUpdate := s.store.UpdateIn(c.recipient.key(),
			"SET #status = :rejected, rejected_at = :now, reject_reason = :reason, action_ip = :ip, action_user_agent = :ua",
			"#status = :active", map[string]string{"#status": "status"},
			map[string]types.AttributeValue{
				":rejected": str(RecipientRejected), ":active": str(RecipientActive), ":now": str(store.FormatTime(now)),
				":reason": str(reason), ":ip": str(client.IP), ":ua": str(truncate(client.UserAgent, maxUserAgentLength)),
			})
		invalidations, err := s.invalidateTokens(c.st)
		if err != nil {
			return err
		}
		audit, err := s.auditPut(e.ID, ActionRejected, recipientActor(c.recipient, client), map[string]string{"reason": reason}, now)
		if err != nil {
			return err
		}
		data := eventData(*e, next.st.recipients)
		data.RecipientID, data.Reason = c.recipient.ID, reason
		event, err := s.eventPut(events.EnvelopeRejected, data, now)
		if err != nil {
			return err
		}

		items := append([]types.TransactWriteItem{envelopeUpdate, recipientUpdate}, invalidations...)
		err = s.store.Transact(ctx, append(items, audit, event)...)
		if store.FailedAt(err, 0) || store.FailedAt(err, 1) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("reject envelope %s as recipient %s: %w", e.ID, c.recipient.ID, err)
		}
		out = next.view()
		return nil
	})
	return out, err
}

// invalidateTokens returns the transaction items that mark the signing
// token of every recipient whose turn has begun as no longer valid. Each
// token item is written whole and without a condition, so an item that TTL
// already removed cannot fail the transaction. It reappears as invalid
// until its original expiry.
func (s *Service) invalidateTokens(st state) ([]types.TransactWriteItem, error) {
	var items []types.TransactWriteItem
	for _, r := range st.recipients {
		if r.SigningTokenHash == "" {
			continue
		}
		activatedAt := store.ParseTime(r.ActivatedAt)
		it := signingItem{
			Item:        itemAt(store.SigningTokenKey(r.SigningTokenHash), entitySigning),
			EnvelopeID:  r.EnvelopeID,
			RecipientID: r.ID,
			Valid:       false,
			CreatedAt:   r.ActivatedAt,
		}
		it.ExpiresAt = activatedAt.Add(s.cfg.SigningLinkTTL).Unix()
		put, err := s.store.Put(it, "")
		if err != nil {
			return nil, fmt.Errorf("invalidate signing token of recipient %s of envelope %s: %w", r.ID, r.EnvelopeID, err)
		}
		items = append(items, put)
	}
	return items, nil
}
