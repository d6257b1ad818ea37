package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// SES is the part of *sesv2.Client that the Sender uses.
type SES interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, opts ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// SigningLinkFunc returns the private signing link of a recipient of an
// envelope. The link is rebuilt when the email is sent, because no event or
// queue message may carry it. EnvelopeSigningLinks returns the one that
// matches package envelopes.
type SigningLinkFunc func(ctx context.Context, envelopeID, recipientID string) (string, error)

// JobIDHeader is the header that carries the job id in every email, so a
// support request can be traced to its job.
const JobIDHeader = "X-SignSecure-Email-Job"

// errClaimHeld reports a job that another sender claimed and may still be
// sending. The message is retried after its visibility timeout.
var errClaimHeld = errors.New("email job is claimed by another sender")

// Sender consumes the emails queue and sends each job through SES.
//
// A job is sent at most once. Before calling SES, the sender claims the job
// with a conditional write that moves its status from queued or retry to
// sending, with a lease of Config.ClaimLease. After the call it records the
// outcome: sent; retry when SES responded with an error, taken to mean
// that SES did not accept the email; rejected for a permanent rejection.
// A redelivered message finds the recorded state and sends nothing.
//
// The crash window lies between SES accepting the email and the outcome
// being recorded. It includes an SES call that fails without a response,
// such as a timeout or a dropped connection. SES SendEmail has no
// idempotency key, so nothing shows whether the email left. A redelivery
// that finds such a claim after its lease expired marks the job
// unconfirmed and does not send. Such a job may lose its email, but no job
// sends two. Jobs in that state are logged at error level.
type Sender struct {
	store     *store.Store
	ses       SES
	cfg       Config
	templates *Templates
	links     SigningLinkFunc
	logger    *slog.Logger
	now       func() time.Time
}

// NewSender returns a sender. links rebuilds signing links; while it is nil,
// signing requests and next-signer alerts fail and stay on the queue.
// logger and now may be nil for the default logger and time.Now.
func NewSender(st *store.Store, ses SES, cfg Config, links SigningLinkFunc, logger *slog.Logger, now func() time.Time) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClaimLease == 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	tmpl, err := ParseTemplates()
	if err != nil {
		return nil, fmt.Errorf("new email sender: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Sender{store: st, ses: ses, cfg: cfg, templates: tmpl, links: links, logger: logger, now: now}, nil
}

// Handle is the Lambda handler for the emails queue. It reports each
// message that should be received again in BatchItemFailures, so one bad
// message does not fail its batch. It returns no error itself.
func (s *Sender) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, msg := range ev.Records {
		log := s.logger.With("message_id", msg.MessageId, "receive_count", msg.Attributes["ApproximateReceiveCount"])

		var job Job
		if err := json.Unmarshal([]byte(msg.Body), &job); err != nil {
			log.Error("email message is not a JSON job; it stays on the queue until the dead-letter queue takes it", "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
			continue
		}
		if err := s.Send(ctx, job); err != nil {
			log.Error("email job failed; it will be retried", "job_id", job.ID, "kind", string(job.Kind), "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

// Send sends the job's email unless its recorded state shows that it was
// handled before. It returns nil when the job needs no further delivery
// (sent now or before, rejected, unconfirmed) and an error when the
// message should be received again.
func (s *Sender) Send(ctx context.Context, job Job) error {
	if err := job.Validate(); err != nil {
		return err
	}
	msg, err := s.render(ctx, job)
	if err != nil {
		return err
	}

	token := ids.New("clm")
	claimed, err := s.claim(ctx, job, token)
	if err != nil || !claimed {
		return err
	}

	out, sendErr := s.ses.SendEmail(ctx, s.input(job, msg))
	switch outcome := classify(sendErr); outcome {
	case outcomeSent:
		s.finish(ctx, job, token, "SET #status = :sent, sent_at = :now, ses_message_id = :sesid",
			map[string]types.AttributeValue{":sent": str(StatusSent), ":sesid": str(aws.ToString(out.MessageId))})
		s.logger.Info("email sent", "job_id", job.ID, "kind", string(job.Kind), "event_id", job.EventID)
		return nil
	case outcomeRejected:
		s.finish(ctx, job, token, "SET #status = :rejected, last_error = :err",
			map[string]types.AttributeValue{":rejected": str(StatusRejected), ":err": str(sendErr.Error())})
		s.logger.Warn("SES rejected the email; it is not retried", "job_id", job.ID, "kind", string(job.Kind), "error", sendErr.Error())
		return nil
	case outcomeNotSent:
		s.finish(ctx, job, token, "SET #status = :retry, last_error = :err",
			map[string]types.AttributeValue{":retry": str(StatusRetry), ":err": str(sendErr.Error())})
		return fmt.Errorf("send email job %s: %w", job.ID, sendErr)
	default:
		// The claim stays, so a redelivery after the lease marks the job
		// unconfirmed instead of risking a second email.
		return fmt.Errorf("send email job %s, outcome unknown: %w", job.ID, sendErr)
	}
}

func (s *Sender) render(ctx context.Context, job Job) (Message, error) {
	link := ""
	if job.Kind.NeedsSigningLink() {
		if s.links == nil {
			return Message{}, fmt.Errorf("render email job %s: no signing link source is configured", job.ID)
		}
		var err error
		link, err = s.links(ctx, job.EnvelopeID, job.RecipientID)
		if err != nil {
			return Message{}, fmt.Errorf("render email job %s: signing link for envelope %s recipient %s: %w", job.ID, job.EnvelopeID, job.RecipientID, err)
		}
	}
	return s.templates.Render(job, link, s.cfg.AppURL)
}

func (s *Sender) input(job Job, msg Message) *sesv2.SendEmailInput {
	to := (&mail.Address{Name: job.ToName, Address: job.To}).String()
	utf8 := aws.String("UTF-8")
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.cfg.From),
		Destination:      &sestypes.Destination{ToAddresses: []string{to}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(msg.Subject), Charset: utf8},
			Body: &sestypes.Body{
				Text: &sestypes.Content{Data: aws.String(msg.Text), Charset: utf8},
				Html: &sestypes.Content{Data: aws.String(msg.HTML), Charset: utf8},
			},
			Headers: []sestypes.MessageHeader{{Name: aws.String(JobIDHeader), Value: aws.String(job.ID)}},
		}},
		EmailTags: []sestypes.MessageTag{{Name: aws.String("kind"), Value: aws.String(string(job.Kind))}},
	}
}

// claim takes the job for this sender. It reports false with a nil error
// when the recorded state shows that the job needs nothing more.
func (s *Sender) claim(ctx context.Context, job Job, token string) (bool, error) {
	now := s.now().UTC()
	old, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key: store.EmailJobKey(job.ID).Attributes(),
		UpdateExpression: aws.String("SET #status = :sending, claim_token = :token, lease_until = :lease, " +
			"attempts = if_not_exists(attempts, :zero) + :one, entity = if_not_exists(entity, :entity), " +
			"id = if_not_exists(id, :id), kind = if_not_exists(kind, :kind), event_id = if_not_exists(event_id, :event), " +
			"#to = if_not_exists(#to, :to), expires_at = if_not_exists(expires_at, :expires)"),
		ConditionExpression:                 aws.String("attribute_not_exists(PK) OR #status IN (:queued, :retry)"),
		ExpressionAttributeNames:            map[string]string{"#status": "status", "#to": "to"},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sending": str(StatusSending),
			":queued":  str(StatusQueued),
			":retry":   str(StatusRetry),
			":token":   str(token),
			":lease":   str(store.FormatTime(now.Add(s.cfg.ClaimLease))),
			":zero":    &types.AttributeValueMemberN{Value: "0"},
			":one":     &types.AttributeValueMemberN{Value: "1"},
			":entity":  str(entityEmailJob),
			":id":      str(job.ID),
			":kind":    str(string(job.Kind)),
			":event":   str(job.EventID),
			":to":      str(job.To),
			":expires": &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(jobRetention).Unix())},
		},
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		return false, fmt.Errorf("claim email job %s: %w", job.ID, err)
	}

	var it jobItem
	if err := attributevalue.UnmarshalMap(old, &it); err != nil {
		return false, fmt.Errorf("decode email job %s: %w", job.ID, err)
	}
	if it.Status != StatusSending {
		s.logger.Info("email job already handled; nothing sent", "job_id", job.ID, "status", it.Status)
		return false, nil
	}
	if lease := store.ParseTime(it.LeaseUntil); now.Before(lease) {
		return false, fmt.Errorf("claim email job %s until %s: %w", job.ID, it.LeaseUntil, errClaimHeld)
	}
	return false, s.markUnconfirmed(ctx, it, now)
}

// markUnconfirmed records that the claim on a job expired without an
// outcome, so the job is never sent again.
func (s *Sender) markUnconfirmed(ctx context.Context, it jobItem, now time.Time) error {
	_, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                      store.EmailJobKey(it.ID).Attributes(),
		UpdateExpression:         aws.String("SET #status = :unconfirmed, completed_at = :now, last_error = :err REMOVE claim_token, lease_until"),
		ConditionExpression:      aws.String("#status = :sending AND claim_token = :token"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":unconfirmed": str(StatusUnconfirmed),
			":sending":     str(StatusSending),
			":token":       str(it.ClaimToken),
			":now":         str(store.FormatTime(now)),
			":err":         str("the claim expired at " + it.LeaseUntil + " before the SES outcome was recorded"),
		},
	})
	if errors.Is(err, store.ErrConditionFailed) {
		// The claim holder recorded an outcome after all.
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark email job %s unconfirmed: %w", it.ID, err)
	}
	s.logger.Error("email job unconfirmed: a sender claimed it and never recorded whether SES accepted it; it is not sent again",
		"job_id", it.ID, "kind", string(it.Kind), "event_id", it.EventID, "lease_until", it.LeaseUntil)
	return nil
}

// finish records the outcome of this sender's SES call, if the claim is
// still its own. A failure to record is logged and not returned: the
// outcome cannot change, and a redelivery finds the claim and sends
// nothing.
func (s *Sender) finish(ctx context.Context, job Job, token, set string, values map[string]types.AttributeValue) {
	values[":token"] = str(token)
	values[":now"] = str(store.FormatTime(s.now()))
	_, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                       store.EmailJobKey(job.ID).Attributes(),
		UpdateExpression:          aws.String(set + ", completed_at = :now REMOVE claim_token, lease_until"),
		ConditionExpression:       aws.String("claim_token = :token"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: values,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		s.logger.Warn("email job claim expired before its outcome was recorded", "job_id", job.ID)
		return
	}
	if err != nil {
		s.logger.Error("record email job outcome", "job_id", job.ID, "error", err.Error())
	}
}

// outcome is the meaning of an SES SendEmail result for a job.
type outcome int

const (
	// outcomeSent: SES accepted the email.
	outcomeSent outcome = iota
	// outcomeRejected: SES rejected the email for good.
	outcomeRejected
	// outcomeNotSent: SES responded with an error, such as throttling, so
	// it did not accept the email. A retry may succeed.
	outcomeNotSent
	// outcomeUnknown: no response from SES, so it may have accepted the
	// email.
	outcomeUnknown
)

func classify(err error) outcome {
	var (
		rejected    *sestypes.MessageRejected
		notVerified *sestypes.MailFromDomainNotVerifiedException
		badRequest  *sestypes.BadRequestException
		tooMany     *sestypes.TooManyRequestsException
		limit       *sestypes.LimitExceededException
		apiErr      smithy.APIError
	)
	switch {
	case err == nil:
		return outcomeSent
	case errors.As(err, &rejected), errors.As(err, &notVerified), errors.As(err, &badRequest):
		return outcomeRejected
	case errors.As(err, &tooMany), errors.As(err, &limit), errors.As(err, &apiErr):
		return outcomeNotSent
	default:
		return outcomeUnknown
	}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
