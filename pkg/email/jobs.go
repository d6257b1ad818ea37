package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/store"
)

// Job states, in the status attribute of a job's item.
const (
	// StatusQueued: the dispatcher recorded the job and sends, or sent, its
	// message to the queue.
	StatusQueued = "queued"
	// StatusSending: a sender claimed the job and is calling SES; the claim
	// holds until lease_until.
	StatusSending = "sending"
	// StatusRetry: SES did not accept the email (throttling or another
	// error response), so the next delivery of the message may send it.
	StatusRetry = "retry"
	// StatusSent: SES accepted the email.
	StatusSent = "sent"
	// StatusRejected: SES rejected the email permanently; it is not retried.
	StatusRejected = "rejected"
	// StatusUnconfirmed: a sender claimed the job and never recorded the
	// outcome, so SES may or may not have accepted the email. It is not
	// sent again.
	StatusUnconfirmed = "unconfirmed"
)

// jobRetention is how long a job's item stays before TTL removes it: far
// longer than the queue (4 days) and its dead-letter queue (14 days) keep
// the message, so a redelivery always finds it.
const jobRetention = 30 * 24 * time.Hour

const entityEmailJob = "email_job"

// jobItem records the state of one job.
type jobItem struct {
	store.Item
	ID          string `dynamodbav:"id"`
	Kind        Kind   `dynamodbav:"kind"`
	EventID     string `dynamodbav:"event_id"`
	To          string `dynamodbav:"to"`
	Status      string `dynamodbav:"status"`
	QueuedAt    string `dynamodbav:"queued_at,omitempty"`
	EnqueuedAt  string `dynamodbav:"enqueued_at,omitempty"`
	ClaimToken  string `dynamodbav:"claim_token,omitempty"`
	LeaseUntil  string `dynamodbav:"lease_until,omitempty"`
	Attempts    int    `dynamodbav:"attempts,omitempty"`
	SESID       string `dynamodbav:"ses_message_id,omitempty"`
	SentAt      string `dynamodbav:"sent_at,omitempty"`
	LastError   string `dynamodbav:"last_error,omitempty"`
	CompletedAt string `dynamodbav:"completed_at,omitempty"`
}

// JobState is the recorded state of a job.
type JobState struct {
	ID           string
	Kind         Kind
	Status       string
	Attempts     int
	SESMessageID string
	LastError    string
	EnqueuedAt   time.Time
	SentAt       time.Time
}

// GetJobState reads the state of the job with the id. It returns an error
// wrapping store.ErrNotFound for an unknown job.
func GetJobState(ctx context.Context, st *store.Store, jobID string) (JobState, error) {
	var it jobItem
	if err := st.Get(ctx, store.EmailJobKey(jobID), &it); err != nil {
		return JobState{}, fmt.Errorf("get email job %s: %w", jobID, err)
	}
	return it.state(), nil
}

func (it jobItem) state() JobState {
	return JobState{
		ID:           it.ID,
		Kind:         it.Kind,
		Status:       it.Status,
		Attempts:     it.Attempts,
		SESMessageID: it.SESID,
		LastError:    it.LastError,
		EnqueuedAt:   store.ParseTime(it.EnqueuedAt),
		SentAt:       store.ParseTime(it.SentAt),
	}
}

// SQS is the part of *sqs.Client that the Enqueuer uses.
type SQS interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Enqueuer sends email jobs to the emails queue.
type Enqueuer struct {
	store    *store.Store
	sqs      SQS
	queueURL string
	now      func() time.Time
}

// NewEnqueuer returns an enqueuer that sends to the queue at queueURL
// (EMAILS_QUEUE_URL). now may be nil for time.Now.
func NewEnqueuer(st *store.Store, client SQS, queueURL string, now func() time.Time) *Enqueuer {
	if now == nil {
		now = time.Now
	}
	return &Enqueuer{store: st, sqs: client, queueURL: queueURL, now: now}
}

// Enqueue records the job in the table and sends its message to the queue,
// unless an earlier call recorded that the message was sent. It reports
// whether it sent a message.
//
// The record is written before the message is sent, and marked as
// enqueued after. A crash between the two leaves a record without the
// mark, so the next call for the same job sends the message again. The
// sender's claim on the job keeps that second message from sending a
// second email.
func (q *Enqueuer) Enqueue(ctx context.Context, job Job) (bool, error) {
	if err := job.Validate(); err != nil {
		return false, err
	}
	now := q.now().UTC()

	enqueued, err := q.record(ctx, job, now)
	if err != nil || enqueued {
		return false, err
	}

	body, err := json.Marshal(job)
	if err != nil {
		return false, fmt.Errorf("encode email job %s: %w", job.ID, err)
	}
	out, err := q.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.queueURL, MessageBody: aws.String(string(body))})
	if err != nil {
		return false, fmt.Errorf("send email job %s to queue: %w", job.ID, err)
	}

	_, err = q.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                 store.EmailJobKey(job.ID).Attributes(),
		UpdateExpression:    aws.String("SET enqueued_at = :now, sqs_message_id = :mid"),
		ConditionExpression: aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberS{Value: store.FormatTime(now)},
			":mid": &types.AttributeValueMemberS{Value: aws.ToString(out.MessageId)},
		},
	})
	if err != nil {
		return true, fmt.Errorf("mark email job %s enqueued: %w", job.ID, err)
	}
	return true, nil
}

// record writes the job's item unless it exists. It reports whether an
// existing item shows that the job's message was sent before.
func (q *Enqueuer) record(ctx context.Context, job Job, now time.Time) (bool, error) {
	key := store.EmailJobKey(job.ID)
	item, err := attributevalue.MarshalMap(jobItem{
		Item:     store.Item{PK: key.PK, SK: key.SK, Entity: entityEmailJob, ExpiresAt: now.Add(jobRetention).Unix()},
		ID:       job.ID,
		Kind:     job.Kind,
		EventID:  job.EventID,
		To:       job.To,
		Status:   StatusQueued,
		QueuedAt: store.FormatTime(now),
	})
	if err != nil {
		return false, fmt.Errorf("encode email job %s: %w", job.ID, err)
	}
	table := q.store.Table()
	_, err = q.store.DB().PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &table,
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(PK)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var old jobItem
		if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
			return false, fmt.Errorf("decode email job %s: %w", job.ID, err)
		}
		// A sender only touches a job after its message arrived, so any
		// status past queued means the message was sent.
		return old.EnqueuedAt != "" || old.Status != StatusQueued, nil
	}
	if err != nil {
		return false, fmt.Errorf("record email job %s: %w", job.ID, err)
	}
	return false, nil
}
