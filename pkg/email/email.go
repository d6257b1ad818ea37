// Package email sends SignSecure's emails. The event dispatcher turns
// events into email jobs and sends each job to the emails queue as a JSON
// message. The email function reads the queue, renders the job's templates
// and sends the email through Amazon SES v2.
//
// Each job is sent at most once, whatever the queue redelivers: the job's
// item in the table (see store.EmailJobKey) records its state, and the
// sender claims the job with a conditional write before it calls SES. See
// Sender for the crash window this leaves and why.
package email

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Kind names an email template.
type Kind string

// The kinds of email.
const (
	// SigningRequest asks a signer to sign, with their private signing link.
	SigningRequest Kind = "signing_request"
	// NextSigner tells the next signer in the routing order that it is
	// their turn, with their private signing link.
	NextSigner Kind = "next_signer"
	// EnvelopeCompleted tells a recipient that every signer has signed.
	EnvelopeCompleted Kind = "envelope_completed"
	// EnvelopeRejected tells a recipient that a signer rejected the
	// envelope.
	EnvelopeRejected Kind = "envelope_rejected"
	// EnvelopeVoided tells a recipient that the sender voided the envelope.
	EnvelopeVoided Kind = "envelope_voided"
	// OrganizationInvitation invites an address to an organization.
	OrganizationInvitation Kind = "organization_invitation"
	// NewLogin alerts a user to a login from a new device or network.
	NewLogin Kind = "new_login"
	// LowCreditBalance alerts a wallet's owner, or an organization's owners
	// and admins, that the balance dropped below its threshold.
	LowCreditBalance Kind = "low_credit_balance"
)

// Kinds lists every kind of email.
var Kinds = []Kind{
	SigningRequest, NextSigner, EnvelopeCompleted, EnvelopeRejected, EnvelopeVoided,
	OrganizationInvitation, NewLogin, LowCreditBalance,
}

// NeedsSigningLink reports whether emails of the kind carry the
// recipient's private signing link.
func (k Kind) NeedsSigningLink() bool { return k == SigningRequest || k == NextSigner }

// JobIDPrefix starts every email job id.
const JobIDPrefix = "eml"

// Job is one email to one address: the body of a message on the emails
// queue. It never carries a secret, so signing links are rebuilt by the
// sender from EnvelopeID and RecipientID.
type Job struct {
	// ID identifies the job. JobID derives it from the event, the kind and
	// the address, so a redelivered event makes the same job again.
	ID string `json:"id"`
	// Kind selects the templates.
	Kind Kind `json:"kind"`
	// EventID is the event the job was made for.
	EventID string `json:"event_id"`
	// To is the recipient's address.
	To string `json:"to"`
	// ToName is the recipient's name, if known.
	ToName string `json:"to_name,omitempty"`
	// EnvelopeID and RecipientID identify the signer whose signing link
	// the email carries, for the kinds that need one.
	EnvelopeID  string `json:"envelope_id,omitempty"`
	RecipientID string `json:"recipient_id,omitempty"`
	// Vars holds the values the kind's templates show, such as
	// "envelope_title".
	Vars map[string]string `json:"vars,omitempty"`
}

// Validate returns an error that names the first missing or unknown field.
func (j Job) Validate() error {
	switch {
	case j.ID == "":
		return fmt.Errorf("email job: missing id")
	case !knownKind(j.Kind):
		return fmt.Errorf("email job %s: unknown kind %q", j.ID, j.Kind)
	case !strings.Contains(j.To, "@"):
		return fmt.Errorf("email job %s: invalid address %q", j.ID, j.To)
	case j.Kind.NeedsSigningLink() && (j.EnvelopeID == "" || j.RecipientID == ""):
		return fmt.Errorf("email job %s: kind %s needs envelope_id and recipient_id", j.ID, j.Kind)
	}
	return nil
}

func knownKind(k Kind) bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// JobID returns the id of the job of kind for the address, made for the
// event: "eml_" and a ULID whose time part is the event's time and whose
// random part is taken from a SHA-256 of the three inputs. The address is
// compared in lowercase.
func JobID(eventID string, eventTime time.Time, kind Kind, address string) string {
	return derivedID(JobIDPrefix, eventTime, eventID, string(kind), strings.ToLower(address))
}

// derivedID returns prefix, an underscore and a lowercase ULID whose time
// part is t (the Unix epoch for earlier times) and whose entropy is the
// first 80 bits of a SHA-256 over parts.
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
