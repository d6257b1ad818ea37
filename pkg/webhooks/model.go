package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Delivery statuses.
const (
	// StatusPending: the delivery waits for its first or next attempt.
	StatusPending = "pending"
	// StatusSucceeded: the endpoint responded to an attempt with a 2xx
	// status.
	StatusSucceeded = "succeeded"
	// StatusFailed: every attempt failed, the endpoint responded 410 Gone,
	// or the endpoint was deleted or disabled before the delivery was made.
	StatusFailed = "failed"
)

// What created a delivery, in Delivery.Trigger.
const (
	// TriggerEvent: the dispatcher handed over an event of the catalogue.
	TriggerEvent = "event"
	// TriggerTest: a user asked for a test event.
	TriggerTest = "test"
)

// Reasons an endpoint is disabled, in Endpoint.DisabledReason.
const (
	// DisabledByUser: a user set enabled to false.
	DisabledByUser = "disabled_by_user"
	// DisabledGone: the endpoint responded to a delivery with 410 Gone.
	DisabledGone = "endpoint_gone"
	// DisabledFailing: the automatic rule disabled it after repeated
	// failed deliveries (see Config.DisableAfterFailures).
	DisabledFailing = "repeated_failures"
)

// TestEventType is the type of the event that POST /v1/webhooks/{id}/test
// sends. It is not in the event catalogue and needs no subscription.
const TestEventType = "webhook.test"

// AllEvents subscribes an endpoint to every event type it may receive.
const AllEvents = "*"

const (
	entityEndpoint = "webhook_endpoint"
	entityDelivery = "webhook_delivery"
	entityCounter  = "webhook_counter"

	// deliveryRetention is how long a delivery's log stays before TTL
	// removes it.
	deliveryRetention = 30 * 24 * time.Hour
	// maxStoredAttempts bounds the attempt log of one delivery; the oldest
	// attempts are dropped first. Each redelivery adds up to MaxAttempts.
	maxStoredAttempts = 30
	// maxExcerptBytes bounds the response excerpt stored per attempt.
	maxExcerptBytes = 512
)

// Endpoint is a webhook endpoint. Its signing secret is not part of it.
type Endpoint struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	URL         string `json:"url"`
	Description string `json:"description"`
	// Events lists the subscribed event types, or ["*"] for all.
	Events  []string `json:"events"`
	Enabled bool     `json:"enabled"`
	// DisabledReason is DisabledByUser, DisabledGone or DisabledFailing
	// while the endpoint is disabled, and null while it is enabled.
	DisabledReason *string    `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	// SecretRotatedAt is the time of the last rotation.
	SecretRotatedAt *time.Time `json:"secret_rotated_at"`
	// PreviousSecretExpiresAt is the end of the rotation window, while the
	// previous secret still signs deliveries.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	// ConsecutiveFailures counts the deliveries in a row that failed,
	// since FailingSince; a successful delivery resets it.
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	LastFailureAt       *time.Time `json:"last_failure_at"`
	CreatedAt           time.Time  `json:"created_at"`
	CreatedBy           string     `json:"created_by"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// NewEndpoint is a created endpoint with its signing secret, which only the
// create, secret and rotation responses carry.
type NewEndpoint struct {
	Endpoint
	Secret string `json:"secret"`
}

// Secret is an endpoint's current signing secret.
type Secret struct {
	Secret string `json:"secret"`
	// PreviousSecretExpiresAt is set while the previous secret, too, signs
	// each delivery.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// Delivery is one event sent, or to be sent, to one endpoint.
type Delivery struct {
	// ID is also the webhook-id header, the same on every attempt and
	// redelivery.
	ID         string `json:"id"`
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	// Trigger is TriggerEvent or TriggerTest.
	Trigger string `json:"trigger"`
	Status  string `json:"status"`
	// RequestedBy is the user who asked for the test event or the latest
	// redelivery, or null.
	RequestedBy   *string    `json:"requested_by"`
	RedeliveredAt *time.Time `json:"redelivered_at"`
	// AttemptCount counts every attempt, over all redeliveries.
	AttemptCount   int        `json:"attempt_count"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
	CompletedAt    *time.Time `json:"completed_at"`
}

// DeliveryDetail is a delivery with its request body and attempt log.
type DeliveryDetail struct {
	Delivery
	// Payload is the JSON body that each attempt posts.
	Payload json.RawMessage `json:"payload"`
	// Attempts lists the attempts, oldest first; at most the last 30.
	Attempts []Attempt `json:"attempts"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	// Number counts the delivery's attempts from 1, over redeliveries.
	Number int       `json:"number"`
	At     time.Time `json:"at"`
	// StatusCode is the response status, or null when no response came.
	StatusCode *int `json:"status_code"`
	// Error is the reason the attempt failed, or null when it succeeded.
	Error     *string `json:"error"`
	LatencyMS int64   `json:"latency_ms"`
	// ResponseExcerpt holds the start of the response body, at most 512
	// bytes of valid UTF-8.
	ResponseExcerpt string `json:"response_excerpt"`
	// NextAttemptAt is when the queue makes the next attempt, or null
	// when this attempt was the last.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// endpointItem is an endpoint in the table.
//
// NOTE: signing secrets are stored as plain text, because the delivery
// function needs them to sign and so cannot keep only a hash. Production
// should encrypt them with a KMS key that only the webhook functions can
// use.
type endpointItem struct {
	store.Item
	ID                      string   `dynamodbav:"id"`
	WorkspaceID             string   `dynamodbav:"workspace_id"`
	URL                     string   `dynamodbav:"url"`
	Description             string   `dynamodbav:"description"`
	EventTypes              []string `dynamodbav:"event_types"`
	Enabled                 bool     `dynamodbav:"enabled"`
	DisabledReason          string   `dynamodbav:"disabled_reason,omitempty"`
	DisabledAt              string   `dynamodbav:"disabled_at,omitempty"`
	Secret                  string   `dynamodbav:"secret"`
	SecretVersion           int      `dynamodbav:"secret_version"`
	PreviousSecret          string   `dynamodbav:"previous_secret,omitempty"`
	PreviousSecretExpiresAt string   `dynamodbav:"previous_secret_expires_at,omitempty"`
	SecretRotatedAt         string   `dynamodbav:"secret_rotated_at,omitempty"`
	ConsecutiveFailures     int      `dynamodbav:"consecutive_failures"`
	FailingSince            string   `dynamodbav:"failing_since,omitempty"`
	LastSuccessAt           string   `dynamodbav:"last_success_at,omitempty"`
	LastFailureAt           string   `dynamodbav:"last_failure_at,omitempty"`
	CreatedAt               string   `dynamodbav:"created_at"`
	CreatedBy               string   `dynamodbav:"created_by"`
	UpdatedAt               string   `dynamodbav:"updated_at"`
}

func (it endpointItem) endpoint() Endpoint {
	e := Endpoint{
		ID:                      it.ID,
		WorkspaceID:             it.WorkspaceID,
		URL:                     it.URL,
		Description:             it.Description,
		Events:                  it.EventTypes,
		Enabled:                 it.Enabled,
		DisabledAt:              optionalTime(it.DisabledAt),
		SecretRotatedAt:         optionalTime(it.SecretRotatedAt),
		PreviousSecretExpiresAt: optionalTime(it.PreviousSecretExpiresAt),
		ConsecutiveFailures:     it.ConsecutiveFailures,
		FailingSince:            optionalTime(it.FailingSince),
		LastSuccessAt:           optionalTime(it.LastSuccessAt),
		LastFailureAt:           optionalTime(it.LastFailureAt),
		CreatedAt:               store.ParseTime(it.CreatedAt),
		CreatedBy:               it.CreatedBy,
		UpdatedAt:               store.ParseTime(it.UpdatedAt),
	}
	if e.Events == nil {
		e.Events = []string{}
	}
	if !it.Enabled && it.DisabledReason != "" {
		reason := it.DisabledReason
		e.DisabledReason = &reason
	}
	return e
}

// signingSecrets returns the secrets that sign a delivery made at now:
// the current one, and the previous one during the rotation window.
func (it endpointItem) signingSecrets(now time.Time) []string {
	secrets := []string{it.Secret}
	if it.PreviousSecret != "" && now.Before(store.ParseTime(it.PreviousSecretExpiresAt)) {
		secrets = append(secrets, it.PreviousSecret)
	}
	return secrets
}

// subscribed reports whether the endpoint receives events of the type.
func (it endpointItem) subscribed(eventType string) bool {
	for _, t := range it.EventTypes {
		if t == AllEvents || t == eventType {
			return true
		}
	}
	return false
}

// deliveryItem is a delivery in the table.
type deliveryItem struct {
	store.Item
	ID          string `dynamodbav:"id"`
	EndpointID  string `dynamodbav:"endpoint_id"`
	WorkspaceID string `dynamodbav:"workspace_id"`
	EventID     string `dynamodbav:"event_id"`
	EventType   string `dynamodbav:"event_type"`
	Trigger     string `dynamodbav:"trigger"`
	// RequestedBy is the user who asked for the current round: a test
	// event or a redelivery. Such rounds are sent to disabled endpoints
	// too.
	RequestedBy   string `dynamodbav:"requested_by,omitempty"`
	RedeliveredAt string `dynamodbav:"redelivered_at,omitempty"`
	// Payload is the exact request body, so every attempt signs and posts
	// the same bytes, also after the event's outbox item has expired.
	Payload string `dynamodbav:"payload"`
	Status  string `dynamodbav:"status"`
	// Round counts the times the delivery was queued: 1 for the first,
	// one more for each redelivery. Queue messages carry it, so a message
	// of an earlier round does nothing.
	Round int `dynamodbav:"round"`
	// EnqueuedAt is set once the current round's message is on the queue.
	EnqueuedAt string `dynamodbav:"enqueued_at,omitempty"`
	// LeaseUntil (Unix milliseconds) and ClaimToken mark the delivery
	// function instance that is making an attempt.
	LeaseUntil     int64         `dynamodbav:"lease_until,omitempty"`
	ClaimToken     string        `dynamodbav:"claim_token,omitempty"`
	AttemptCount   int           `dynamodbav:"attempt_count"`
	Attempts       []attemptItem `dynamodbav:"attempts"`
	LastStatusCode int           `dynamodbav:"last_status_code,omitempty"`
	LastError      string        `dynamodbav:"last_error,omitempty"`
	NextAttemptAt  string        `dynamodbav:"next_attempt_at,omitempty"`
	CreatedAt      string        `dynamodbav:"created_at"`
	CompletedAt    string        `dynamodbav:"completed_at,omitempty"`
}

// attemptItem is an attempt in a delivery's log.
type attemptItem struct {
	Number          int    `dynamodbav:"number"`
	Round           int    `dynamodbav:"round"`
	At              string `dynamodbav:"at"`
	StatusCode      int    `dynamodbav:"status_code,omitempty"`
	Error           string `dynamodbav:"error,omitempty"`
	LatencyMS       int64  `dynamodbav:"latency_ms"`
	ResponseExcerpt string `dynamodbav:"response_excerpt,omitempty"`
	NextAttemptAt   string `dynamodbav:"next_attempt_at,omitempty"`
}

func (it deliveryItem) delivery() Delivery {
	d := Delivery{
		ID:            it.ID,
		EndpointID:    it.EndpointID,
		EventID:       it.EventID,
		EventType:     it.EventType,
		Trigger:       it.Trigger,
		Status:        it.Status,
		RedeliveredAt: optionalTime(it.RedeliveredAt),
		AttemptCount:  it.AttemptCount,
		NextAttemptAt: optionalTime(it.NextAttemptAt),
		CreatedAt:     store.ParseTime(it.CreatedAt),
		CompletedAt:   optionalTime(it.CompletedAt),
	}
	if it.LastStatusCode != 0 {
		code := it.LastStatusCode
		d.LastStatusCode = &code
	}
	if it.LastError != "" {
		msg := it.LastError
		d.LastError = &msg
	}
	if it.RequestedBy != "" {
		user := it.RequestedBy
		d.RequestedBy = &user
	}
	return d
}

func (it deliveryItem) detail() DeliveryDetail {
	out := DeliveryDetail{
		Delivery: it.delivery(),
		Payload:  json.RawMessage("null"),
		Attempts: make([]Attempt, 0, len(it.Attempts)),
	}
	if json.Valid([]byte(it.Payload)) {
		out.Payload = json.RawMessage(it.Payload)
	}
	for _, a := range it.Attempts {
		attempt := Attempt{
			Number:          a.Number,
			At:              store.ParseTime(a.At),
			LatencyMS:       a.LatencyMS,
			ResponseExcerpt: a.ResponseExcerpt,
			NextAttemptAt:   optionalTime(a.NextAttemptAt),
		}
		if a.StatusCode != 0 {
			code := a.StatusCode
			attempt.StatusCode = &code
		}
		if a.Error != "" {
			msg := a.Error
			attempt.Error = &msg
		}
		out.Attempts = append(out.Attempts, attempt)
	}
	return out
}

// deliveryID returns the id of the delivery of an event to an endpoint,
// derived from both ids with the event's time, so a stream record handed
// over twice derives the same id.
func deliveryID(eventID, endpointID string, eventTime time.Time) string {
	return derivedID(ids.Delivery, eventTime, eventID, endpointID)
}

// derivedID returns prefix, an underscore and a lowercase ULID whose time
// part is t (the Unix epoch for earlier times) and whose entropy is the
// first 80 bits of a SHA-256 over parts. The same inputs always give the
// same id.
func derivedID(prefix string, t time.Time, parts ...string) string {
	if t.Before(time.Unix(0, 0)) {
		t = time.Unix(0, 0)
	}
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	id := ulid.MustNew(ulid.Timestamp(t), bytes.NewReader(h.Sum(nil)))
	return prefix + "_" + strings.ToLower(id.String())
}

func optionalTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := store.ParseTime(s)
	return &t
}
