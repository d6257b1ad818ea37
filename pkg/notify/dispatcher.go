package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// Fanout hands events to one kind of consumer: in-app notifications, email
// jobs, and webhook deliveries once they exist. A stream record can arrive
// more than once, so Deliver must be idempotent per event id.
type Fanout interface {
	// Name names the fan-out in logs, such as "emails".
	Name() string
	// Deliver hands one event to the consumer. An error makes the
	// dispatcher retry the event with every fan-out, unless it is a
	// *PermanentError.
	Deliver(ctx context.Context, e events.Event) error
}

// PermanentError is a fan-out error that retrying cannot fix, such as
// event data that does not decode. The dispatcher logs it and goes on with
// the next fan-out instead of reporting the record as failed, so one bad
// event does not block its stream shard.
type PermanentError struct {
	Err error
}

// Error returns the wrapped error's text.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// permanent wraps err in a *PermanentError.
func permanent(err error) error { return &PermanentError{Err: err} }

// Dispatcher is the handler of the table's stream. It turns each new event
// item into an events.Event and hands it to every fan-out in order.
type Dispatcher struct {
	fanouts []Fanout
	logger  *slog.Logger
}

// NewDispatcher returns a dispatcher over the fan-outs, which it calls in
// the order given. logger may be nil for the default logger.
func NewDispatcher(logger *slog.Logger, fanouts ...Fanout) *Dispatcher {
	if logger == nil {
		logger = slog.Default()
	}
	return &Dispatcher{fanouts: fanouts, logger: logger}
}

// Handle is the Lambda handler for the table's DynamoDB stream, whose event
// source mapping must enable ReportBatchItemFailures. It dispatches the
// INSERT records of event items in order and skips every other record.
// At the first record that fails, it stops and reports that record's
// sequence number, so Lambda retries from it: the records after it in the
// shard are retried too, and the fan-outs' idempotency absorbs the
// repeats. It never returns an error itself.
func (d *Dispatcher) Handle(ctx context.Context, ev lambdaevents.DynamoDBEvent) (lambdaevents.DynamoDBEventResponse, error) {
	var resp lambdaevents.DynamoDBEventResponse
	for _, rec := range ev.Records {
		e, ok, err := eventFromRecord(rec)
		if err != nil {
			d.logger.Error("stream record is an event item that does not decode; skipped",
				"sequence_number", rec.Change.SequenceNumber, "error", err.Error())
			continue
		}
		if !ok {
			continue
		}
		if err := d.Dispatch(ctx, e); err != nil {
			d.logger.Error("event dispatch failed; the record and those after it will be retried",
				"event_id", e.ID, "event_type", e.Type, "sequence_number", rec.Change.SequenceNumber, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures,
				lambdaevents.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			return resp, nil
		}
	}
	return resp, nil
}

// Dispatch hands the event to every fan-out. It returns the first error
// that is worth a retry, after trying every fan-out.
func (d *Dispatcher) Dispatch(ctx context.Context, e events.Event) error {
	var errs []error
	for _, f := range d.fanouts {
		err := f.Deliver(ctx, e)
		var perm *PermanentError
		switch {
		case err == nil:
		case errors.As(err, &perm):
			d.logger.Error("event cannot be delivered; not retried",
				"fanout", f.Name(), "event_id", e.ID, "event_type", e.Type, "error", err.Error())
		default:
			errs = append(errs, fmt.Errorf("%s: %w", f.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// eventFromRecord returns the event of an INSERT record of an event item.
// ok is false for any other record.
func eventFromRecord(rec lambdaevents.DynamoDBEventRecord) (e events.Event, ok bool, err error) {
	if rec.EventName != string(lambdaevents.DynamoDBOperationTypeInsert) {
		return events.Event{}, false, nil
	}
	img := rec.Change.NewImage
	pk, sk := stringAttr(img, "PK"), stringAttr(img, "SK")
	if !strings.HasPrefix(pk, "EVENT#") || sk != "EVENT" {
		return events.Event{}, false, nil
	}

	e = events.Event{
		ID:          stringAttr(img, "id"),
		Type:        stringAttr(img, "type"),
		WorkspaceID: stringAttr(img, "workspace_id"),
		Data:        []byte(stringAttr(img, "data")),
	}
	if e.ID == "" || e.Type == "" {
		return events.Event{}, false, fmt.Errorf("event item %s has no id or type", pk)
	}
	e.Timestamp, err = time.Parse(time.RFC3339Nano, stringAttr(img, "timestamp"))
	if err != nil {
		return events.Event{}, false, fmt.Errorf("event %s timestamp: %w", e.ID, err)
	}
	if len(e.Data) == 0 {
		e.Data = []byte("{}")
	}
	return e, true, nil
}

// stringAttr returns the string attribute, or "" when it is missing or
// not a string.
func stringAttr(img map[string]lambdaevents.DynamoDBAttributeValue, name string) string {
	v, ok := img[name]
	if !ok || v.DataType() != lambdaevents.DataTypeString {
		return ""
	}
	return v.String()
}

// NewEventDispatcher returns the dispatcher that the dispatcher function
// runs: in-app notifications, then email jobs sent through sqsClient to
// cfg.EmailsQueueURL, then the extra fan-outs, such as webhook deliveries.
// logger and now may be nil for the default logger and time.Now.
func NewEventDispatcher(st *store.Store, sqsClient email.SQS, cfg DispatcherConfig, logger *slog.Logger, now func() time.Time, extra ...Fanout) *Dispatcher {
	svc := NewService(st, now)
	fanouts := []Fanout{
		NewInApp(svc),
		NewEmails(st, email.NewEnqueuer(st, sqsClient, cfg.EmailsQueueURL, now), logger).WithInvitationCodeKey(cfg.InvitationCodeKey),
	}
	return NewDispatcher(logger, append(fanouts, extra...)...)
}
