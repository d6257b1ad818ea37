package localrun

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of *sqs.Client that QueuePoller uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// QueueHandler is the signature of an SQS Lambda handler, such as
// (*email.Sender).Handle.
type QueueHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// QueueOptions tunes a QueuePoller. Zero values select the defaults.
type QueueOptions struct {
	// BatchSize is the maximum number of messages per handler call, from 1
	// to 10; default 10.
	BatchSize int
	// WaitTime is the long-polling wait of each ReceiveMessage call, at
	// most 20 s; default 20 s.
	WaitTime time.Duration
	// ErrorBackoff is the wait after a failed ReceiveMessage call; default
	// 1 s.
	ErrorBackoff time.Duration
	// Region goes into each message's awsRegion; default "us-east-1".
	Region string
	// Logger receives start, failure and stop lines; default
	// slog.Default().
	Logger *slog.Logger
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.BatchSize <= 0 || o.BatchSize > 10 {
		o.BatchSize = 10
	}
	if o.WaitTime <= 0 || o.WaitTime > 20*time.Second {
		o.WaitTime = 20 * time.Second
	}
	if o.ErrorBackoff <= 0 {
		o.ErrorBackoff = time.Second
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// QueuePoller receives messages from an SQS queue and calls a handler with
// them, as a Lambda SQS event source mapping with ReportBatchItemFailures
// does: it long-polls for up to BatchSize messages with every system
// attribute (ApproximateReceiveCount among them), deletes the messages
// that succeeded, and leaves the failed ones on the queue. A failed
// message comes back after the queue's visibility timeout. The queue's
// redrive policy moves it to the dead-letter queue after maxReceiveCount
// receives, because the poller itself never retries.
//
// The batch counts as failed as a whole when the handler returns an error
// or panics, or reports an item identifier that is not a message id of the
// batch. One goroutine receives and handles one batch at a time.
type QueuePoller struct {
	client   SQSAPI
	queueURL string
	handler  QueueHandler
	opts     QueueOptions
}

// NewQueuePoller returns a poller of the queue at queueURL that calls
// handler.
func NewQueuePoller(client SQSAPI, queueURL string, handler QueueHandler, opts QueueOptions) *QueuePoller {
	return &QueuePoller{client: client, queueURL: queueURL, handler: handler, opts: opts.withDefaults()}
}

// Run polls the queue until ctx is cancelled, then returns nil. It returns
// an error only when the queue's ARN cannot be read at start.
func (p *QueuePoller) Run(ctx context.Context) error {
	log := p.opts.Logger.With("queue_url", p.queueURL)
	arn, err := p.queueARN(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	log.Info("queue poller started")

	for ctx.Err() == nil {
		out, err := p.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &p.queueURL,
			MaxNumberOfMessages:         int32(p.opts.BatchSize),
			WaitTimeSeconds:             int32(p.opts.WaitTime / time.Second),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			log.Error("receive messages failed", "error", err.Error())
			sleep(ctx, p.opts.ErrorBackoff)
			continue
		}
		if len(out.Messages) > 0 {
			p.handle(ctx, arn, out.Messages)
		}
	}
	log.Info("queue poller stopped")
	return nil
}

func (p *QueuePoller) queueARN(ctx context.Context) (string, error) {
	out, err := p.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &p.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("get ARN of queue %s: %w", p.queueURL, err)
	}
	return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// handle calls the handler with the messages and deletes those that
// succeeded.
func (p *QueuePoller) handle(ctx context.Context, arn string, msgs []sqstypes.Message) {
	log := p.opts.Logger.With("queue_url", p.queueURL)
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		ev.Records = append(ev.Records, p.convert(arn, m))
	}

	failed, err := p.call(ctx, ev)
	if err != nil {
		log.Error("queue handler failed the whole batch; its messages return after the visibility timeout",
			"messages", len(msgs), "error", err.Error())
		return
	}

	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			continue
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{
			Id:            aws.String(fmt.Sprint(i)),
			ReceiptHandle: m.ReceiptHandle,
		})
	}
	if len(entries) == 0 {
		return
	}
	// The messages are handled, so delete them even when ctx was cancelled
	// meanwhile; otherwise they would be handled again.
	delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	out, err := p.client.DeleteMessageBatch(delCtx, &sqs.DeleteMessageBatchInput{QueueUrl: &p.queueURL, Entries: entries})
	if err != nil {
		log.Error("delete handled messages failed; they will be handled again", "messages", len(entries), "error", err.Error())
		return
	}
	for _, f := range out.Failed {
		log.Error("delete handled message failed; it will be handled again", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code))
	}
}

// call runs the handler once. It returns the ids of the failed messages,
// or an error when the whole batch failed.
func (p *QueuePoller) call(ctx context.Context, ev events.SQSEvent) (failed map[string]bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			failed, err = nil, fmt.Errorf("queue handler panicked: %v", v)
		}
	}()
	resp, err := p.handler(ctx, ev)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(ev.Records))
	for _, r := range ev.Records {
		ids[r.MessageId] = true
	}
	failed = map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if !ids[f.ItemIdentifier] {
			return nil, fmt.Errorf("queue handler reported %q, which is not a message id of the batch", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}

// convert returns the message as Lambda passes it to a handler.
func (p *QueuePoller) convert(arn string, m sqstypes.Message) events.SQSMessage {
	out := events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             map[string]string{},
		MessageAttributes:      map[string]events.SQSMessageAttribute{},
		EventSourceARN:         arn,
		EventSource:            "aws:sqs",
		AWSRegion:              p.opts.Region,
	}
	for k, v := range m.Attributes {
		out.Attributes[k] = v
	}
	for k, v := range m.MessageAttributes {
		out.MessageAttributes[k] = events.SQSMessageAttribute{
			StringValue:      v.StringValue,
			BinaryValue:      v.BinaryValue,
			StringListValues: v.StringListValues,
			BinaryListValues: v.BinaryListValues,
			DataType:         aws.ToString(v.DataType),
		}
	}
	return out
}
