package localrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// StreamsAPI is the part of *dynamodbstreams.Client that StreamPoller uses.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// DescribeTableAPI is the part of *dynamodb.Client that StreamARN uses.
type DescribeTableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// StreamARN returns the ARN of the table's latest stream.
func StreamARN(ctx context.Context, client DescribeTableAPI, table string) (string, error) {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	arn := aws.ToString(out.Table.LatestStreamArn)
	if arn == "" {
		return "", fmt.Errorf("table %s has no stream; enable one with StreamSpecification", table)
	}
	return arn, nil
}

// StreamHandler is the signature of a DynamoDB stream Lambda handler, such
// as (*notify.Dispatcher).Handle.
type StreamHandler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// StreamOptions tunes a StreamPoller. Zero values select the defaults.
type StreamOptions struct {
	// BatchSize is the maximum number of records per handler call; default
	// 100, as the event source mapping's, at most 1000 (GetRecords' limit).
	BatchSize int
	// MaxRetryAttempts bounds the retries of a failed batch; default 3.
	// After the last retry the failed records are dropped and logged, as
	// an event source mapping with MaximumRetryAttempts does.
	MaxRetryAttempts int
	// RetryDelay is the wait before a retry; default 1 s. Each further
	// retry of the same records waits twice as long.
	RetryDelay time.Duration
	// PollInterval is the wait after a round in which no shard had
	// records. The default is 250 ms, because the event source mapping
	// polls each shard four times a second.
	PollInterval time.Duration
	// ShardRefreshInterval is how often the stream is described again to
	// find new shards; default 10 s.
	ShardRefreshInterval time.Duration
	// Region goes into each record's awsRegion; default "us-east-1".
	Region string
	// Logger receives start, retry and give-up lines; default
	// slog.Default().
	Logger *slog.Logger
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	o.BatchSize = min(o.BatchSize, 1000)
	if o.MaxRetryAttempts <= 0 {
		o.MaxRetryAttempts = 3
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.ShardRefreshInterval <= 0 {
		o.ShardRefreshInterval = 10 * time.Second
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// StreamPoller reads a DynamoDB stream and calls a handler with batches of
// records, as a Lambda event source mapping with ReportBatchItemFailures
// does:
//
//   - it starts at LATEST in each shard that is open when it starts, so
//     records written before Ready is closed are not delivered. Shards
//     that appear later are read from TRIM_HORIZON once their parent is
//     finished;
//   - records of one shard reach the handler in order, one batch at a time;
//   - when the handler returns an error or panics, the whole batch is
//     retried;
//   - when the handler reports failed sequence numbers, the batch is
//     retried from the earliest of them, so the failed record and every
//     record after it in the shard come again. An identifier that is not a
//     sequence number of the batch fails the whole batch;
//   - after MaxRetryAttempts retries the remaining records are dropped and
//     logged.
//
// Shards are read in turn by one goroutine, where Lambda reads them in
// parallel.
type StreamPoller struct {
	client    StreamsAPI
	streamARN string
	handler   StreamHandler
	opts      StreamOptions

	ready     chan struct{}
	readyOnce sync.Once
}

// NewStreamPoller returns a poller of the stream with the ARN (see
// StreamARN) that calls handler.
func NewStreamPoller(client StreamsAPI, streamARN string, handler StreamHandler, opts StreamOptions) *StreamPoller {
	return &StreamPoller{client: client, streamARN: streamARN, handler: handler, opts: opts.withDefaults(), ready: make(chan struct{})}
}

// Ready returns a channel that is closed once the poller holds an iterator
// for every open shard: records written after that are delivered.
func (p *StreamPoller) Ready() <-chan struct{} { return p.ready }

// shard is the poller's state for one shard.
type shard struct {
	id       string
	parentID string
	iterator string
	// lastSequence is the sequence number of the last record handed to the
	// handler, to resume after an expired iterator.
	lastSequence string
	// started is set once the shard has an iterator. done is set once the
	// shard is closed and read to its end, or was closed at start.
	started bool
	done    bool
}

// Run polls the stream until ctx is cancelled, then returns nil. It
// returns an error only when the stream cannot be described at start.
func (p *StreamPoller) Run(ctx context.Context) error {
	log := p.opts.Logger.With("stream_arn", p.streamARN)
	shards := map[string]*shard{}
	order := []string{}

	if err := p.refresh(ctx, shards, &order, true); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	p.readyOnce.Do(func() { close(p.ready) })
	log.Info("stream poller started", "shards", len(shards))

	nextRefresh := time.Now().Add(p.opts.ShardRefreshInterval)
	for ctx.Err() == nil {
		if time.Now().After(nextRefresh) {
			if err := p.refresh(ctx, shards, &order, false); err != nil && ctx.Err() == nil {
				log.Error("describe stream failed; keeping the known shards", "error", err.Error())
			}
			nextRefresh = time.Now().Add(p.opts.ShardRefreshInterval)
		}

		delivered := 0
		for _, id := range order {
			s := shards[id]
			if s.done || ctx.Err() != nil {
				continue
			}
			if !s.started {
				if parent, ok := shards[s.parentID]; ok && !parent.done {
					continue
				}
				if err := p.startShard(ctx, s, streamtypes.ShardIteratorTypeTrimHorizon); err != nil {
					log.Error("get shard iterator failed", "shard_id", s.id, "error", err.Error())
					continue
				}
			}
			n, err := p.poll(ctx, s)
			if err != nil && ctx.Err() == nil {
				log.Error("get records failed", "shard_id", s.id, "error", err.Error())
			}
			delivered += n
		}
		if delivered == 0 {
			sleep(ctx, p.opts.PollInterval)
		}
	}
	log.Info("stream poller stopped")
	return nil
}

// refresh describes the stream and adds the shards it does not know yet.
// At start, shards that are already closed are history before LATEST and
// are marked done, and open shards get an iterator at LATEST.
func (p *StreamPoller) refresh(ctx context.Context, shards map[string]*shard, order *[]string, atStart bool) error {
	var start *string
	for {
		out, err := p.client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{
			StreamArn:             &p.streamARN,
			ExclusiveStartShardId: start,
		})
		if err != nil {
			return fmt.Errorf("describe stream %s: %w", p.streamARN, err)
		}
		desc := out.StreamDescription
		for _, sh := range desc.Shards {
			id := aws.ToString(sh.ShardId)
			if _, known := shards[id]; known || id == "" {
				continue
			}
			s := &shard{id: id, parentID: aws.ToString(sh.ParentShardId)}
			closed := sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
			if atStart {
				if closed {
					s.started, s.done = true, true
				} else if err := p.startShard(ctx, s, streamtypes.ShardIteratorTypeLatest); err != nil {
					return err
				}
			}
			shards[id] = s
			*order = append(*order, id)
		}
		if desc.LastEvaluatedShardId == nil {
			return nil
		}
		start = desc.LastEvaluatedShardId
	}
}

// startShard takes an iterator of the given type for the shard.
func (p *StreamPoller) startShard(ctx context.Context, s *shard, typ streamtypes.ShardIteratorType) error {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: &p.streamARN, ShardId: &s.id, ShardIteratorType: typ}
	if typ == streamtypes.ShardIteratorTypeAfterSequenceNumber {
		in.SequenceNumber = &s.lastSequence
	}
	out, err := p.client.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("get %s iterator of shard %s: %w", typ, s.id, err)
	}
	s.iterator = aws.ToString(out.ShardIterator)
	s.started = true
	if s.iterator == "" {
		s.done = true
	}
	return nil
}

// poll reads one batch from the shard and delivers it. It returns the
// number of records read.
func (p *StreamPoller) poll(ctx context.Context, s *shard) (int, error) {
	out, err := p.client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{
		ShardIterator: &s.iterator,
		Limit:         aws.Int32(int32(p.opts.BatchSize)),
	})
	var expired *streamtypes.ExpiredIteratorException
	var trimmed *streamtypes.TrimmedDataAccessException
	switch {
	case errors.As(err, &expired):
		// Iterators expire after 15 minutes; resume after the last record.
		typ := streamtypes.ShardIteratorTypeAfterSequenceNumber
		if s.lastSequence == "" {
			typ = streamtypes.ShardIteratorTypeLatest
		}
		return 0, p.startShard(ctx, s, typ)
	case errors.As(err, &trimmed):
		p.opts.Logger.Warn("stream records were trimmed before they were read; resuming at the oldest record", "shard_id", s.id)
		return 0, p.startShard(ctx, s, streamtypes.ShardIteratorTypeTrimHorizon)
	case err != nil:
		return 0, fmt.Errorf("get records of shard %s: %w", s.id, err)
	}

	if len(out.Records) > 0 {
		p.deliver(ctx, s, out.Records)
	}
	s.iterator = aws.ToString(out.NextShardIterator)
	if s.iterator == "" {
		s.done = true
	}
	return len(out.Records), nil
}

// deliver calls the handler with the records and retries failures as
// StreamPoller describes.
func (p *StreamPoller) deliver(ctx context.Context, s *shard, records []streamtypes.Record) {
	log := p.opts.Logger.With("stream_arn", p.streamARN, "shard_id", s.id)
	batch := make([]events.DynamoDBEventRecord, 0, len(records))
	for _, r := range records {
		rec, err := p.convert(r)
		if err != nil {
			// Lambda cannot deliver such a record either; it would be a bug
			// in this conversion.
			log.Error("stream record cannot be converted; skipped", "event_id", aws.ToString(r.EventID), "error", err.Error())
			continue
		}
		batch = append(batch, rec)
	}
	if len(batch) > 0 {
		s.lastSequence = batch[len(batch)-1].Change.SequenceNumber
	}

	delay := p.opts.RetryDelay
	for attempt := 0; len(batch) > 0 && ctx.Err() == nil; attempt++ {
		failedFrom, err := p.call(ctx, batch)
		if err != nil {
			log.Error("stream handler returned an error; retrying the whole batch", "records", len(batch), "error", err.Error())
		}
		if failedFrom < 0 {
			return
		}
		batch = batch[failedFrom:]
		if attempt == p.opts.MaxRetryAttempts {
			log.Error("stream records failed after every retry; dropped",
				"records", len(batch), "first_sequence_number", batch[0].Change.SequenceNumber, "retries", attempt)
			return
		}
		log.Warn("stream batch failed; retrying from the failed record",
			"records", len(batch), "first_sequence_number", batch[0].Change.SequenceNumber, "retry", attempt+1)
		sleep(ctx, delay)
		delay *= 2
	}
}

// call runs the handler once. It returns the index of the first record to
// retry, or -1 when the whole batch succeeded.
func (p *StreamPoller) call(ctx context.Context, batch []events.DynamoDBEventRecord) (failedFrom int, err error) {
	defer func() {
		if v := recover(); v != nil {
			failedFrom, err = 0, fmt.Errorf("stream handler panicked: %v", v)
		}
	}()
	resp, err := p.handler(ctx, events.DynamoDBEvent{Records: batch})
	if err != nil {
		return 0, err
	}
	if len(resp.BatchItemFailures) == 0 {
		return -1, nil
	}
	failedFrom = len(batch)
	for _, f := range resp.BatchItemFailures {
		i := indexOfSequence(batch, f.ItemIdentifier)
		if i < 0 {
			return 0, fmt.Errorf("stream handler reported %q, which is not a sequence number of the batch", f.ItemIdentifier)
		}
		failedFrom = min(failedFrom, i)
	}
	return failedFrom, nil
}

func indexOfSequence(batch []events.DynamoDBEventRecord, seq string) int {
	for i, r := range batch {
		if seq != "" && r.Change.SequenceNumber == seq {
			return i
		}
	}
	return -1
}

// convert returns the record as Lambda passes it to a handler.
func (p *StreamPoller) convert(r streamtypes.Record) (events.DynamoDBEventRecord, error) {
	rec := events.DynamoDBEventRecord{
		AWSRegion:      p.opts.Region,
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    "aws:dynamodb",
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: p.streamARN,
	}
	if r.UserIdentity != nil {
		rec.UserIdentity = &events.DynamoDBUserIdentity{
			Type:        aws.ToString(r.UserIdentity.Type),
			PrincipalID: aws.ToString(r.UserIdentity.PrincipalId),
		}
	}
	if r.Dynamodb == nil {
		return rec, fmt.Errorf("record %s has no dynamodb member", rec.EventID)
	}
	d := r.Dynamodb
	rec.Change = events.DynamoDBStreamRecord{
		SequenceNumber: aws.ToString(d.SequenceNumber),
		SizeBytes:      aws.ToInt64(d.SizeBytes),
		StreamViewType: string(d.StreamViewType),
	}
	if d.ApproximateCreationDateTime != nil {
		rec.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
	}
	var err error
	if rec.Change.Keys, err = convertImage(d.Keys); err != nil {
		return rec, fmt.Errorf("record %s keys: %w", rec.EventID, err)
	}
	if rec.Change.NewImage, err = convertImage(d.NewImage); err != nil {
		return rec, fmt.Errorf("record %s new image: %w", rec.EventID, err)
	}
	if rec.Change.OldImage, err = convertImage(d.OldImage); err != nil {
		return rec, fmt.Errorf("record %s old image: %w", rec.EventID, err)
	}
	return rec, nil
}

// sleep waits for d or until ctx is cancelled.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
