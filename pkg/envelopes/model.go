package envelopes

import (
	"time"

	"github.com/signsecure/signsecure/pkg/store"
)

// Envelope statuses. Completed, rejected and voided are terminal: an
// envelope in one of them accepts no further change.
const (
	StatusDraft     = "draft"
	StatusSent      = "sent"
	StatusCompleted = "completed"
	StatusRejected  = "rejected"
	StatusVoided    = "voided"
)

// Recipient statuses. A signer is pending until its routing order's turn,
// active while it may sign or reject, then signed or rejected. A cc
// recipient takes no action and stays pending.
const (
	RecipientPending  = "pending"
	RecipientActive   = "active"
	RecipientSigned   = "signed"
	RecipientRejected = "rejected"
)

// Recipient roles.
const (
	RoleSigner = "signer"
	RoleCC     = "cc"
)

// Email notification settings. They govern only the emails to the
// envelope's recipients: signing requests, next-signer alerts and the
// completion copy with "all", only the completion copy with
// "completion_only", and none with "none". In-app notifications and
// webhooks do not depend on them.
const (
	EmailAll            = "all"
	EmailCompletionOnly = "completion_only"
	EmailNone           = "none"
)

// Envelope is a set of documents sent to recipients for signature.
type Envelope struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	// CreatedBy is the user who created the envelope; for an API key, the
	// user who created the key.
	CreatedBy string `json:"created_by"`
	// CreatedByAPIKeyID is the API key that created the envelope, if any.
	CreatedByAPIKeyID  string `json:"created_by_api_key_id,omitempty"`
	Title              string `json:"title"`
	Message            string `json:"message"`
	EmailNotifications string `json:"email_notifications"`
	Status             string `json:"status"`
	// Version grows by one with every change of the envelope.
	Version        int64 `json:"version"`
	CreditsSpent   int64 `json:"credits_spent"`
	DocumentCount  int   `json:"document_count"`
	RecipientCount int   `json:"recipient_count"`
	// VoidReason and VoidedBy (a user id) are set on a voided envelope.
	VoidReason string `json:"void_reason,omitempty"`
	VoidedBy   string `json:"voided_by,omitempty"`
	// RejectReason and RejectedBy (a recipient id) are set on a rejected
	// envelope.
	RejectReason string     `json:"reject_reason,omitempty"`
	RejectedBy   string     `json:"rejected_by,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	SentAt       *time.Time `json:"sent_at,omitempty"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
	RejectedAt   *time.Time `json:"rejected_at,omitempty"`
	VoidedAt     *time.Time `json:"voided_at,omitempty"`
	// Recipients and Documents are filled in by Get, and left out of lists.
	Recipients []Recipient `json:"recipients,omitzero"`
	Documents  []Document  `json:"documents,omitzero"`
}

// Recipient is a person an envelope goes to.
type Recipient struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Role  string `json:"role"`
	// RoutingOrder is from 1 to 999; signers with the lowest order sign
	// first, and signers with equal orders sign in parallel.
	RoutingOrder int        `json:"routing_order"`
	Status       string     `json:"status"`
	ActivatedAt  *time.Time `json:"activated_at,omitempty"`
	ViewedAt     *time.Time `json:"viewed_at,omitempty"`
	SignedAt     *time.Time `json:"signed_at,omitempty"`
	RejectedAt   *time.Time `json:"rejected_at,omitempty"`
	// TypedName is the name the signer typed as their signature.
	TypedName string `json:"typed_name,omitempty"`
	// HasSignatureImage reports whether the signer also drew a signature.
	HasSignatureImage bool   `json:"has_signature_image,omitempty"`
	RejectReason      string `json:"reject_reason,omitempty"`
}

// Document is a PDF of an envelope.
type Document struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	// Size is in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the content.
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
}

// AuditEntry is one action in an envelope's audit trail.
type AuditEntry struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	// ActorType is "user", "api_key", "recipient" or "system"; ActorID is
	// the id of that user, key or recipient, empty for "system".
	ActorType string            `json:"actor_type"`
	ActorID   string            `json:"actor_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Entity names of the items this package writes.
const (
	entityEnvelope  = "envelope"
	entityRecipient = "recipient"
	entityDocument  = "document"
	entityAudit     = "audit_entry"
	entitySigning   = "signing_token"
)

// envelopeItem is an envelope. Version grows by one with every write, and
// every write is conditioned on the status and the version it read, so a
// transaction that commits saw the recipients and documents as they are.
type envelopeItem struct {
	store.Item
	ID                 string `dynamodbav:"id"`
	WorkspaceID        string `dynamodbav:"workspace_id"`
	CreatedBy          string `dynamodbav:"created_by"`
	CreatedByAPIKeyID  string `dynamodbav:"created_by_api_key_id,omitempty"`
	Title              string `dynamodbav:"title"`
	Message            string `dynamodbav:"message"`
	EmailNotifications string `dynamodbav:"email_notifications"`
	Status             string `dynamodbav:"status"`
	Version            int64  `dynamodbav:"version"`
	CreditsSpent       int64  `dynamodbav:"credits_spent"`
	DocumentCount      int    `dynamodbav:"document_count"`
	RecipientCount     int    `dynamodbav:"recipient_count"`
	VoidReason         string `dynamodbav:"void_reason,omitempty"`
	VoidedBy           string `dynamodbav:"voided_by,omitempty"`
	RejectReason       string `dynamodbav:"reject_reason,omitempty"`
	RejectedBy         string `dynamodbav:"rejected_by,omitempty"`
	CreatedAt          string `dynamodbav:"created_at"`
	UpdatedAt          string `dynamodbav:"updated_at"`
	SentAt             string `dynamodbav:"sent_at,omitempty"`
	CompletedAt        string `dynamodbav:"completed_at,omitempty"`
	RejectedAt         string `dynamodbav:"rejected_at,omitempty"`
	VoidedAt           string `dynamodbav:"voided_at,omitempty"`
}

func (e envelopeItem) envelope() Envelope {
	return Envelope{
		ID:                 e.ID,
		WorkspaceID:        e.WorkspaceID,
		CreatedBy:          e.CreatedBy,
		CreatedByAPIKeyID:  e.CreatedByAPIKeyID,
		Title:              e.Title,
		Message:            e.Message,
		EmailNotifications: e.EmailNotifications,
		Status:             e.Status,
		Version:            e.Version,
		CreditsSpent:       e.CreditsSpent,
		DocumentCount:      e.DocumentCount,
		RecipientCount:     e.RecipientCount,
		VoidReason:         e.VoidReason,
		VoidedBy:           e.VoidedBy,
		RejectReason:       e.RejectReason,
		RejectedBy:         e.RejectedBy,
		CreatedAt:          store.ParseTime(e.CreatedAt),
		UpdatedAt:          store.ParseTime(e.UpdatedAt),
		SentAt:             optionalTime(e.SentAt),
		CompletedAt:        optionalTime(e.CompletedAt),
		RejectedAt:         optionalTime(e.RejectedAt),
		VoidedAt:           optionalTime(e.VoidedAt),
	}
}

// terminal reports whether the envelope can no longer change.
func (e envelopeItem) terminal() bool {
	return e.Status == StatusCompleted || e.Status == StatusRejected || e.Status == StatusVoided
}

// recipientItem is a recipient. Position keeps the order in which the
// sender listed recipients of the same routing order. SigningTokenHash is
// the SHA-256 of the recipient's signing token once its turn has begun. It
// lets reject and void invalidate the token without the signing key, and
// no response includes it.
type recipientItem struct {
	store.Item
	ID               string `dynamodbav:"id"`
	EnvelopeID       string `dynamodbav:"envelope_id"`
	Name             string `dynamodbav:"name"`
	Email            string `dynamodbav:"email"`
	Role             string `dynamodbav:"role"`
	RoutingOrder     int    `dynamodbav:"routing_order"`
	Position         int    `dynamodbav:"position"`
	Status           string `dynamodbav:"status"`
	SigningTokenHash string `dynamodbav:"signing_token_hash,omitempty"`
	ActivatedAt      string `dynamodbav:"activated_at,omitempty"`
	ViewedAt         string `dynamodbav:"viewed_at,omitempty"`
	SignedAt         string `dynamodbav:"signed_at,omitempty"`
	RejectedAt       string `dynamodbav:"rejected_at,omitempty"`
	TypedName        string `dynamodbav:"typed_name,omitempty"`
	SignatureKey     string `dynamodbav:"signature_key,omitempty"`
	RejectReason     string `dynamodbav:"reject_reason,omitempty"`
	// ActionIP and ActionUserAgent describe the client that signed or
	// rejected.
	ActionIP        string `dynamodbav:"action_ip,omitempty"`
	ActionUserAgent string `dynamodbav:"action_user_agent,omitempty"`
}

func (r recipientItem) recipient() Recipient {
	return Recipient{
		ID:                r.ID,
		Name:              r.Name,
		Email:             r.Email,
		Role:              r.Role,
		RoutingOrder:      r.RoutingOrder,
		Status:            r.Status,
		ActivatedAt:       optionalTime(r.ActivatedAt),
		ViewedAt:          optionalTime(r.ViewedAt),
		SignedAt:          optionalTime(r.SignedAt),
		RejectedAt:        optionalTime(r.RejectedAt),
		TypedName:         r.TypedName,
		HasSignatureImage: r.SignatureKey != "",
		RejectReason:      r.RejectReason,
	}
}

func (r recipientItem) key() store.Key {
	return store.RecipientKey(r.EnvelopeID, r.RoutingOrder, r.ID)
}

// documentItem is a document; its content is the S3 object ObjectKey.
type documentItem struct {
	store.Item
	ID          string `dynamodbav:"id"`
	EnvelopeID  string `dynamodbav:"envelope_id"`
	Filename    string `dynamodbav:"filename"`
	ContentType string `dynamodbav:"content_type"`
	Size        int64  `dynamodbav:"size"`
	SHA256      string `dynamodbav:"sha256"`
	ObjectKey   string `dynamodbav:"object_key"`
	CreatedAt   string `dynamodbav:"created_at"`
}

func (d documentItem) document() Document {
	return Document{
		ID:          d.ID,
		Filename:    d.Filename,
		ContentType: d.ContentType,
		Size:        d.Size,
		SHA256:      d.SHA256,
		CreatedAt:   store.ParseTime(d.CreatedAt),
	}
}

// auditItem is an audit entry. Entries are only ever appended.
type auditItem struct {
	store.Item
	ID         string            `dynamodbav:"id"`
	EnvelopeID string            `dynamodbav:"envelope_id"`
	Action     string            `dynamodbav:"action"`
	ActorType  string            `dynamodbav:"actor_type"`
	ActorID    string            `dynamodbav:"actor_id,omitempty"`
	IP         string            `dynamodbav:"ip,omitempty"`
	UserAgent  string            `dynamodbav:"user_agent,omitempty"`
	Details    map[string]string `dynamodbav:"details,omitempty"`
	CreatedAt  string            `dynamodbav:"created_at"`
}

func (a auditItem) entry() AuditEntry {
	return AuditEntry{
		ID:        a.ID,
		Action:    a.Action,
		ActorType: a.ActorType,
		ActorID:   a.ActorID,
		IP:        a.IP,
		UserAgent: a.UserAgent,
		Details:   a.Details,
		CreatedAt: store.ParseTime(a.CreatedAt),
	}
}

// signingItem is a signing token, stored under the SHA-256 of the token.
// Valid turns false when the envelope is rejected or voided. The item then
// stays until its TTL, so the link can report why it no longer works.
type signingItem struct {
	store.Item
	EnvelopeID  string `dynamodbav:"envelope_id"`
	RecipientID string `dynamodbav:"recipient_id"`
	Valid       bool   `dynamodbav:"valid"`
	CreatedAt   string `dynamodbav:"created_at"`
}

func optionalTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := store.ParseTime(s)
	return &t
}

func itemAt(k store.Key, entity string) store.Item {
	return store.Item{PK: k.PK, SK: k.SK, Entity: entity}
}
