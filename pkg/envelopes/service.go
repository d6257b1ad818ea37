// Package envelopes is SignSecure's core: envelopes with their documents
// and recipients, sending them for signature, signing and rejecting through
// private signing links, voiding, and each envelope's audit trail.
//
// An envelope is a draft until it is sent. Sending moves it to sent, takes
// its cost from the workspace's wallet and begins the turn of the signers
// with the lowest routing order, all in one DynamoDB transaction. When every
// signer of a routing order has signed, the next order's turn begins; when
// the last signer signs, the envelope is completed. A rejection by any
// signer, or a void by the sender, ends it.
//
// Every change is one TransactWriteItems call that writes the envelope,
// conditioned on the status and version it read, together with its audit
// entry and its event (the transactional outbox). Two concurrent changes
// therefore never both commit from the same state: the later one reads the
// envelope again and either applies to the new state or fails.
package envelopes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Wallet takes credits from a workspace's wallet in the transaction of a
// paid operation. *billing.Service implements it.
type Wallet interface {
	// DebitWith commits items and a debit of cost credits in one
	// transaction, with the caller's items first. It returns an
	// InsufficientCredit error when the balance does not cover the cost,
	// and the transaction's error unchanged when one of items failed.
	DebitWith(ctx context.Context, workspaceID string, cost int64, reason, reference string, items ...types.TransactWriteItem) (billing.LedgerEntry, error)
}

// ObjectStore is the part of *s3.Client that stores documents and
// signature images.
type ObjectStore interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Deps are the clients the service works with.
type Deps struct {
	// Store is the single table.
	Store *store.Store
	// Wallet pays for sending.
	Wallet Wallet
	// Objects stores documents and signature images in Bucket.
	Objects ObjectStore
	Bucket  string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives retries and failed clean-ups; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Service manages envelopes.
type Service struct {
	store   *store.Store
	wallet  Wallet
	objects ObjectStore
	bucket  string
	cfg     Config
	now     func() time.Time
	logger  *slog.Logger
}

// NewService returns a service with the configuration, which must be valid.
func NewService(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new envelopes service: %w", err)
	}
	if deps.Store == nil || deps.Wallet == nil || deps.Objects == nil || deps.Bucket == "" {
		return nil, fmt.Errorf("new envelopes service: store, wallet, objects and bucket are required")
	}
	s := &Service{
		store:   deps.Store,
		wallet:  deps.Wallet,
		objects: deps.Objects,
		bucket:  deps.Bucket,
		cfg:     cfg,
		now:     deps.Now,
		logger:  deps.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s, nil
}

// Client describes where a request comes from, for the audit trail.
type Client struct {
	IP        string
	UserAgent string
}

// Actor types of audit entries.
const (
	ActorUser      = "user"
	ActorAPIKey    = "api_key"
	ActorRecipient = "recipient"
	ActorSystem    = "system"
)

// actor is who performs an action, as the audit trail records it.
type actor struct {
	Type string
	ID   string
	Client
}

func callerActor(c *authn.Caller, client Client) actor {
	if c.Kind == authn.KindAPIKey {
		return actor{Type: ActorAPIKey, ID: c.APIKeyID, Client: client}
	}
	return actor{Type: ActorUser, ID: c.UserID, Client: client}
}

// state is an envelope with its recipients and documents, read together
// with one consistent query.
type state struct {
	envelope   envelopeItem
	recipients []recipientItem // by routing order, then position
	documents  []documentItem  // by id, which is upload order
}

// signers returns the recipients with the signer role.
func (st state) signers() []recipientItem {
	var out []recipientItem
	for _, r := range st.recipients {
		if r.Role == RoleSigner {
			out = append(out, r)
		}
	}
	return out
}

func (st state) recipient(id string) (recipientItem, bool) {
	for _, r := range st.recipients {
		if r.ID == id {
			return r, true
		}
	}
	return recipientItem{}, false
}

func (st state) document(id string) (documentItem, bool) {
	for _, d := range st.documents {
		if d.ID == id {
			return d, true
		}
	}
	return documentItem{}, false
}

// full returns the envelope with its recipients and documents.
func (st state) full() Envelope {
	e := st.envelope.envelope()
	e.Recipients = make([]Recipient, 0, len(st.recipients))
	for _, r := range st.recipients {
		e.Recipients = append(e.Recipients, r.recipient())
	}
	e.Documents = make([]Document, 0, len(st.documents))
	for _, d := range st.documents {
		e.Documents = append(e.Documents, d.document())
	}
	return e
}

// load reads an envelope, its recipients and its documents. The sort keys
// DOCUMENT#..., ENVELOPE and RECIPIENT#... follow AUDIT#..., so one query
// from DOCUMENT# on reads them and skips the audit trail. It returns
// store.ErrNotFound when the envelope does not exist.
func (s *Service) load(ctx context.Context, envelopeID string) (state, error) {
	table := s.store.Table()
	in := &dynamodb.QueryInput{
		TableName:              &table,
		KeyConditionExpression: new("PK = :pk AND SK >= :sk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(store.EnvelopePK(envelopeID)),
			":sk": str(store.DocumentSKPrefix()),
		},
		ConsistentRead: new(true),
	}

	var st state
	found := false
	for {
		res, err := s.store.DB().Query(ctx, in)
		if err != nil {
			return state{}, fmt.Errorf("read envelope %s: %w", envelopeID, err)
		}
		for _, raw := range res.Items {
			if err := st.add(raw, &found); err != nil {
				return state{}, fmt.Errorf("read envelope %s: %w", envelopeID, err)
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
	if !found {
		return state{}, fmt.Errorf("read envelope %s: %w", envelopeID, store.ErrNotFound)
	}

	sortRecipients(st.recipients)
	return st, nil
}

// sortRecipients sorts recipients by routing order, then by their position
// in the sender's list.
func sortRecipients(rs []recipientItem) {
	slices.SortStableFunc(rs, func(a, b recipientItem) int {
		if a.RoutingOrder != b.RoutingOrder {
			return a.RoutingOrder - b.RoutingOrder
		}
		return a.Position - b.Position
	})
}

// add decodes one item of the envelope's partition into st.
func (st *state) add(raw map[string]types.AttributeValue, found *bool) error {
	var kind struct {
		Entity string `dynamodbav:"entity"`
	}
	if err := attributevalue.UnmarshalMap(raw, &kind); err != nil {
		return err
	}
	switch kind.Entity {
	case entityEnvelope:
		*found = true
		return attributevalue.UnmarshalMap(raw, &st.envelope)
	case entityRecipient:
		var r recipientItem
		if err := attributevalue.UnmarshalMap(raw, &r); err != nil {
			return err
		}
		st.recipients = append(st.recipients, r)
	case entityDocument:
		var d documentItem
		if err := attributevalue.UnmarshalMap(raw, &d); err != nil {
			return err
		}
		st.documents = append(st.documents, d)
	}
	return nil
}

// loadFor reads an envelope of the caller's workspace. An envelope of
// another workspace is reported exactly like a missing one.
//
// Errors: Invalid (invalid_id) for a malformed id; NotFound.
func (s *Service) loadFor(ctx context.Context, caller *authn.Caller, envelopeID string) (state, error) {
	if !ids.Valid(ids.Envelope, envelopeID) {
		return state{}, apperr.InvalidField("id", "invalid_id", "Envelope id %q is malformed; envelope ids look like env_01jf3k8x2q7m9v4n5b6c7d8e9f.", truncate(envelopeID, 40))
	}
	st, err := s.load(ctx, envelopeID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.envelope.WorkspaceID != caller.WorkspaceID) {
		return state{}, envelopeNotFound(envelopeID)
	}
	return st, err
}

// loadToChange reads an envelope that the caller may change: an API key
// acts for its whole workspace, an owner or admin may change every
// envelope of the organization, and a member only the envelopes they
// created.
//
// Errors: as loadFor; Forbidden (not_envelope_sender).
func (s *Service) loadToChange(ctx context.Context, caller *authn.Caller, envelopeID string) (state, error) {
	st, err := s.loadFor(ctx, caller, envelopeID)
	if err != nil {
		return state{}, err
	}
	if caller.Kind == authn.KindAPIKey || caller.CanManage() || st.envelope.CreatedBy == caller.UserID {
		return st, nil
	}
	return state{}, &apperr.Error{Code: apperr.Forbidden, Reason: "not_envelope_sender",
		Message: fmt.Sprintf("Envelope %s was created by another member; only its creator, an owner or an admin can change it.", envelopeID)}
}

// maxChangeAttempts bounds how often a change is tried again after another
// change of the same envelope committed first. Each attempt re-reads the
// envelope, so only a burst of that many concurrent changes exhausts it.
const maxChangeAttempts = 10

// errChanged reports that an envelope changed between its read and the
// transaction, so the change must be tried again on the new state.
var errChanged = errors.New("envelope changed since it was read")

// retry runs attempt until it returns anything but errChanged, at most
// maxChangeAttempts times, with jittered backoff in between. envelopeID
// names the envelope in the log and the error; it is empty when only a
// signing token is known.
//
// Errors: Conflict (envelope_busy) when every attempt found the envelope
// changed; otherwise whatever attempt returns.
func (s *Service) retry(ctx context.Context, envelopeID string, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if !errors.Is(err, errChanged) {
			return err
		}
		if n == maxChangeAttempts {
			s.logger.WarnContext(ctx, "envelope change gave up: envelope kept changing", "envelope_id", envelopeID, "attempts", n)
			return &apperr.Error{Code: apperr.Conflict, Reason: "envelope_busy", RetryAfter: time.Second,
				Message: fmt.Sprintf("The envelope changed during each of %d attempts to apply the request; retry it.", n)}
		}
		wait := time.Duration(rand.Int64N(int64(5*time.Millisecond)<<min(n, 6))) + time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("change envelope %q: %w", envelopeID, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// envelopeUpdate returns the transaction item that applies update to the
// envelope only while it has the status and version that were read, and
// increments its version. values must not use :status or :version.
func (s *Service) envelopeUpdate(e envelopeItem, update string, names map[string]string, values map[string]types.AttributeValue) types.TransactWriteItem {
	allNames := map[string]string{"#status": "status", "#version": "version"}
	for k, v := range names {
		allNames[k] = v
	}
	allValues := map[string]types.AttributeValue{":status": str(e.Status), ":version": num(e.Version), ":one": num(1)}
	for k, v := range values {
		allValues[k] = v
	}
	return s.store.UpdateIn(store.EnvelopeKey(e.ID), update+", #version = #version + :one",
		"#status = :status AND #version = :version", allNames, allValues)
}

// auditPut returns the transaction item that appends an audit entry.
func (s *Service) auditPut(envelopeID, action string, by actor, details map[string]string, now time.Time) (types.TransactWriteItem, error) {
	id := ids.NewAt(auditIDPrefix, now)
	it := auditItem{
		Item:       itemAt(store.AuditKey(envelopeID, id), entityAudit),
		ID:         id,
		EnvelopeID: envelopeID,
		Action:     action,
		ActorType:  by.Type,
		ActorID:    by.ID,
		IP:         by.IP,
		UserAgent:  truncate(by.UserAgent, maxUserAgentLength),
		Details:    details,
		CreatedAt:  store.FormatTime(now),
	}
	put, err := s.store.PutNew(it)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("audit %s of envelope %s: %w", action, envelopeID, err)
	}
	return put, nil
}

// auditIDPrefix starts audit entry ids.
const auditIDPrefix = "aud"

// maxUserAgentLength bounds the user agent kept in the audit trail.
const maxUserAgentLength = 256

// deleteObject removes an S3 object that no item refers to any more, such
// as the upload of a request whose transaction failed. A failure only
// leaves an unreferenced object behind, so it is logged, not returned.
func (s *Service) deleteObject(ctx context.Context, key string) {
	_, err := s.objects.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		s.logger.ErrorContext(ctx, "delete unreferenced object", "bucket", s.bucket, "key", key, "error", err.Error())
	}
}

// openObject returns the content of an S3 object.
func (s *Service) openObject(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("get object %s: %w", key, err)
	}
	return out.Body, nil
}

func envelopeNotFound(envelopeID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "envelope_not_found",
		Message: fmt.Sprintf("Envelope %s was not found in this workspace.", envelopeID)}
}

// stateConflict returns the Conflict error for an action that the
// envelope's status does not allow, with a reason that names the status,
// such as "envelope_voided".
func stateConflict(e envelopeItem, action string) error {
	reason := "envelope_" + e.Status
	var msg string
	switch e.Status {
	case StatusDraft:
		reason = "envelope_not_sent"
		msg = fmt.Sprintf("Envelope %s is a draft; it must be sent before it can be %s.", e.ID, action)
	case StatusSent:
		reason = "envelope_not_draft"
		msg = fmt.Sprintf("Envelope %s has been sent; only drafts can be %s.", e.ID, action)
	default:
		msg = fmt.Sprintf("Envelope %s is %s and can no longer be %s.", e.ID, e.Status, action)
	}
	return &apperr.Error{Code: apperr.Conflict, Reason: reason, Message: msg, Extra: map[string]any{"status": e.Status}}
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}
