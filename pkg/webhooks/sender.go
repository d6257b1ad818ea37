package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

const (
	// maxResponseBytes bounds how much of a response body is read.
	maxResponseBytes = 4 << 10
	// maxErrorBytes bounds an attempt's error text.
	maxErrorBytes = 300
	// leaseMargin is added to Config.Timeout for the claim on a delivery,
	// to cover the table writes around the request.
	leaseMargin = 30 * time.Second
	// userAgent identifies delivery requests.
	userAgent = "SignSecure-Webhooks/1"
)

// Sender is the handler of the deliveries queue. Each message is one
// attempt of one delivery.
//
// Before posting, the sender claims the delivery with a conditional write,
// so two messages of the same delivery never attempt at once, and a
// delivery that succeeded or failed is not attempted again. After the
// attempt it records the outcome in the delivery's log:
//
//   - a 2xx response: succeeded;
//   - 410 Gone: failed, and the endpoint is disabled;
//   - any other status or no response, before the last attempt: the message's
//     visibility timeout is set to the next retry delay and the message is
//     reported as failed, so the queue delivers it again then;
//   - the same at the last attempt (the message's ApproximateReceiveCount
//     reaches Config.MaxAttempts): failed, and the message is reported as
//     failed with no visibility timeout, so the queue's redrive policy
//     moves it to the dead-letter queue on its next receive.
type Sender struct {
	svc *Service
}

// NewSender returns the handler of the deliveries queue.
func NewSender(svc *Service) *Sender { return &Sender{svc: svc} }

// Handle is the Lambda handler for the deliveries queue, whose event source
// mapping must enable ReportBatchItemFailures. It attempts the messages of
// the batch concurrently, so a batch takes about as long as its slowest
// attempt (at most Config.Timeout), and reports each message that should be
// received again in BatchItemFailures. It returns no error itself.
func (s *Sender) Handle(ctx context.Context, ev lambdaevents.SQSEvent) (lambdaevents.SQSEventResponse, error) {
	again := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i, msg := range ev.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			again[i] = s.handleMessage(ctx, msg)
		}()
	}
	wg.Wait()

	var resp lambdaevents.SQSEventResponse
	for i, msg := range ev.Records {
		if again[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, lambdaevents.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

// handleMessage makes the attempt of the delivery that msg names. It reports whether the
// message should be received again.
//
// An error of the table is reported as a failed message, without an
// attempt. At the last receive, the delivery is then marked failed so that
// it can be redelivered, because the queue moves the message to the
// dead-letter queue.
//
// NOTE: when that last write fails too, the delivery stays pending with no
// message left to finish it, and Redeliver rejects pending deliveries.
func (s *Sender) handleMessage(ctx context.Context, msg lambdaevents.SQSMessage) bool {
	log := s.svc.logger.With("message_id", msg.MessageId)
	var m message
	if err := json.Unmarshal([]byte(msg.Body), &m); err != nil || m.DeliveryID == "" || m.EndpointID == "" {
		log.Error("webhook delivery message does not hold a delivery and endpoint id; it stays on the queue until the dead-letter queue takes it")
		return true
	}
	receives, err := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	if err != nil || receives < 1 {
		log.Warn("webhook delivery message has no ApproximateReceiveCount attribute; counted as the first receive")
		receives = 1
	}
	log = log.With("delivery_id", m.DeliveryID, "webhook_id", m.EndpointID, "round", m.Round, "receive_count", receives)

	again, err := s.attempt(ctx, log, m, msg.ReceiptHandle, receives)
	if err == nil {
		return again
	}
	if receives < s.svc.cfg.MaxAttempts {
		log.Error("webhook delivery message failed before or after its attempt; it will be received again", "error", err.Error())
		return true
	}
	log.Error("webhook delivery message failed at its last receive; delivery marked failed", "error", err.Error())
	if markErr := s.markAbandoned(context.WithoutCancel(ctx), m); markErr != nil {
		log.Error("mark webhook delivery failed after its last receive failed", "error", markErr.Error())
	}
	return true
}

// markAbandoned marks a pending delivery of the message's round failed,
// after the last receive of its message failed without an outcome.
func (s *Sender) markAbandoned(ctx context.Context, m message) error {
	_, err := s.svc.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                      store.WebhookDeliveryKey(m.EndpointID, m.DeliveryID).Attributes(),
		UpdateExpression:         aws.String("SET #status = :failed, last_error = :error, completed_at = :now REMOVE lease_until, claim_token, next_attempt_at"),
		ConditionExpression:      aws.String("round = :round AND #status = :pending"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":failed":  str(StatusFailed),
			":pending": str(StatusPending),
			":error":   str("an internal error stopped the last attempt; redeliver the delivery to try again"),
			":now":     str(store.FormatTime(s.svc.now())),
			":round":   &types.AttributeValueMemberN{Value: strconv.Itoa(m.Round)},
		},
		ReturnValues: types.ReturnValueNone,
	})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("mark webhook delivery %s failed: %w", m.DeliveryID, err)
	}
	return nil
}

// attempt loads, claims and attempts the delivery. It reports whether the
// message should be received again, and returns an error when the table
// could not be read or written.
func (s *Sender) attempt(ctx context.Context, log *slog.Logger, m message, receiptHandle string, receives int) (bool, error) {
	var d deliveryItem
	err := s.svc.store.Get(ctx, store.WebhookDeliveryKey(m.EndpointID, m.DeliveryID), &d)
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("webhook delivery not found; message dropped")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if d.Round != m.Round || d.Status != StatusPending {
		log.Info("webhook delivery already handled; nothing sent", "status", d.Status, "current_round", d.Round)
		return false, nil
	}

	token, claimed, err := s.claim(ctx, d)
	if err != nil {
		return false, err
	}
	if !claimed {
		// The other attempt ends within its lease, so look again soon after
		// instead of waiting out the queue's visibility timeout.
		log.Warn("webhook delivery is claimed by another attempt; the message will be received again")
		s.changeVisibility(ctx, log, receiptHandle, s.svc.cfg.Timeout+leaseMargin)
		return true, nil
	}

	ep, err := s.svc.endpoint(ctx, d.WorkspaceID, d.EndpointID)
	if apperr.CodeOf(err) == apperr.NotFound {
		log.Info("webhook endpoint was deleted; delivery failed without an attempt")
		return false, s.finishUnsent(ctx, d, token, "the endpoint was deleted before the delivery was made")
	}
	if err != nil {
		return false, err
	}
	if !ep.Enabled && d.RequestedBy == "" {
		log.Info("webhook endpoint is disabled; delivery failed without an attempt")
		return false, s.finishUnsent(ctx, d, token, "the endpoint was disabled before the delivery was made")
	}

	result := s.post(ctx, ep, d)
	now := s.svc.now().UTC()
	succeeded := result.StatusCode >= 200 && result.StatusCode < 300
	gone := result.StatusCode == http.StatusGone
	last := succeeded || gone || receives >= s.svc.cfg.MaxAttempts
	delay := s.svc.cfg.retryDelay(receives)
	if !last {
		result.NextAttemptAt = store.FormatTime(now.Add(delay))
	}
	if err := s.record(ctx, d, token, result, succeeded, last, now); err != nil {
		return false, err
	}
	log = log.With("status_code", result.StatusCode, "latency_ms", result.LatencyMS)

	switch {
	case succeeded:
		log.Info("webhook delivered")
		s.svc.recordSuccess(ctx, ep, now)
		return false, nil
	case gone:
		log.Warn("webhook endpoint responded 410 Gone; delivery failed and endpoint disabled")
		if err := s.svc.disable(ctx, ep, DisabledGone, d, now); err != nil {
			// The delivery is recorded, so the message is done. The next
			// delivery that gets 410 Gone disables the endpoint.
			log.Error("disable webhook endpoint after 410 Gone failed", "error", err.Error())
		}
		return false, nil
	case last:
		log.Warn("webhook delivery failed at its last attempt; the queue moves the message to the dead-letter queue", "error", result.Error)
		s.changeVisibility(ctx, log, receiptHandle, 0)
		if d.RequestedBy == "" {
			if err := s.svc.recordFailure(ctx, ep, d, now); err != nil {
				log.Error("record webhook failure streak failed", "error", err.Error())
			}
		}
		return true, nil
	default:
		log.Info("webhook attempt failed; retrying later", "error", result.Error, "retry_in", delay.String())
		s.changeVisibility(ctx, log, receiptHandle, delay)
		return true, nil
	}
}

// claim takes the delivery for this attempt for Config.Timeout plus a
// margin. It reports false when another attempt holds it or when its
// round is over.
func (s *Sender) claim(ctx context.Context, d deliveryItem) (string, bool, error) {
	now := s.svc.now()
	token := ids.New("clm")
	_, err := s.svc.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                      store.WebhookDeliveryKey(d.EndpointID, d.ID).Attributes(),
		UpdateExpression:         aws.String("SET lease_until = :lease, claim_token = :token"),
		ConditionExpression:      aws.String("round = :round AND #status = :pending AND (attribute_not_exists(lease_until) OR lease_until < :now)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":lease":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(s.svc.cfg.Timeout+leaseMargin).UnixMilli(), 10)},
			":token":   str(token),
			":round":   &types.AttributeValueMemberN{Value: strconv.Itoa(d.Round)},
			":pending": str(StatusPending),
			":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		},
		ReturnValues: types.ReturnValueNone,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("claim webhook delivery %s: %w", d.ID, err)
	}
	return token, true, nil
}

// attemptResult is the outcome of one request.
type attemptResult struct {
	StatusCode    int
	Error         string
	LatencyMS     int64
	Excerpt       string
	At            time.Time
	NextAttemptAt string
}

// post sends the delivery's payload to the endpoint, signed with every
// secret that is valid now.
func (s *Sender) post(ctx context.Context, ep endpointItem, d deliveryItem) attemptResult {
	at := s.svc.now().UTC()
	result := attemptResult{At: at}

	if _, err := s.svc.policy.ParseURL(ep.URL); err != nil {
		result.Error = "the endpoint URL is not allowed: " + err.Error()
		return result
	}
	body := []byte(d.Payload)
	signature, err := signatureHeader(ep.signingSecrets(at), d.ID, at, body)
	if err != nil {
		result.Error = "the delivery could not be signed"
		s.svc.logger.Error("sign webhook delivery failed", "delivery_id", d.ID, "webhook_id", ep.ID, "error", err.Error())
		return result
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		result.Error = "the request could not be built: " + err.Error()
		return result
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, signature)

	start := time.Now()
	resp, err := s.svc.client.Do(req)
	if err != nil {
		result.LatencyMS = time.Since(start).Milliseconds()
		result.Error = describeRequestError(err, s.svc.cfg.Timeout)
		return result
	}
	excerpt, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	result.LatencyMS = time.Since(start).Milliseconds()
	result.StatusCode = resp.StatusCode
	result.Excerpt = validPrefix(excerpt, maxExcerptBytes)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		result.Error = fmt.Sprintf("the endpoint responded %s", resp.Status)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			result.Error += "; redirects are not followed"
		}
	} else if readErr != nil {
		s.svc.logger.Info("reading a webhook response body failed after a 2xx status; counted as delivered",
			"delivery_id", d.ID, "error", readErr.Error())
	}
	return result
}

// describeRequestError returns the text of a failed request for the
// delivery log. The URL is left out, because a user may have put a token
// in its query string, and the text is logged.
func describeRequestError(err error, timeout time.Duration) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var addrErr *AddressError
	var netErr net.Error
	switch {
	case errors.As(err, &addrErr):
		return "the endpoint's address is not allowed: " + addrErr.Reason
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("the request timed out after %s", timeout)
	default:
		return truncate(err.Error(), maxErrorBytes)
	}
}

// validPrefix returns at most n bytes of b as valid UTF-8: a rune cut in
// half at the end is dropped, and invalid sequences are replaced.
func validPrefix(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
			if utf8.RuneStart(b[len(b)-i]) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func marshalAttempts(attempts []attemptItem) (types.AttributeValue, error) {
	return attributevalue.Marshal(attempts)
}

// record appends the attempt to the delivery's log and sets its status,
// if this attempt still holds the claim.
func (s *Sender) record(ctx context.Context, d deliveryItem, token string, r attemptResult, succeeded, last bool, now time.Time) error {
	attempts := append(d.Attempts, attemptItem{
		Number:          d.AttemptCount + 1,
		Round:           d.Round,
		At:              store.FormatTime(r.At),
		StatusCode:      r.StatusCode,
		Error:           r.Error,
		LatencyMS:       r.LatencyMS,
		ResponseExcerpt: r.Excerpt,
		NextAttemptAt:   r.NextAttemptAt,
	})
	if len(attempts) > maxStoredAttempts {
		attempts = attempts[len(attempts)-maxStoredAttempts:]
	}
	list, err := marshalAttempts(attempts)
	if err != nil {
		return fmt.Errorf("encode attempts of webhook delivery %s: %w", d.ID, err)
	}

	status := StatusPending
	switch {
	case succeeded:
		status = StatusSucceeded
	case last:
		status = StatusFailed
	}
	sets := []string{"attempts = :attempts", "attempt_count = :count", "#status = :status"}
	removes := []string{"lease_until", "claim_token"}
	values := map[string]types.AttributeValue{
		":attempts": list,
		":count":    &types.AttributeValueMemberN{Value: strconv.Itoa(d.AttemptCount + 1)},
		":status":   str(status),
		":token":    str(token),
	}
	if r.StatusCode != 0 {
		sets = append(sets, "last_status_code = :code")
		values[":code"] = &types.AttributeValueMemberN{Value: strconv.Itoa(r.StatusCode)}
	} else {
		removes = append(removes, "last_status_code")
	}
	if r.Error != "" {
		sets = append(sets, "last_error = :error")
		values[":error"] = str(r.Error)
	} else {
		removes = append(removes, "last_error")
	}
	if r.NextAttemptAt != "" {
		sets = append(sets, "next_attempt_at = :next")
		values[":next"] = str(r.NextAttemptAt)
	} else {
		removes = append(removes, "next_attempt_at")
	}
	if last {
		sets = append(sets, "completed_at = :now")
		values[":now"] = str(store.FormatTime(now))
	}

	_, err = s.svc.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                       store.WebhookDeliveryKey(d.EndpointID, d.ID).Attributes(),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ") + " REMOVE " + strings.Join(removes, ", ")),
		ConditionExpression:       aws.String("claim_token = :token"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueNone,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("record attempt of webhook delivery %s: the claim expired before the outcome was recorded", d.ID)
	}
	if err != nil {
		return fmt.Errorf("record attempt of webhook delivery %s: %w", d.ID, err)
	}
	return nil
}

// finishUnsent marks a delivery failed without an attempt.
func (s *Sender) finishUnsent(ctx context.Context, d deliveryItem, token, reason string) error {
	_, err := s.svc.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                      store.WebhookDeliveryKey(d.EndpointID, d.ID).Attributes(),
		UpdateExpression:         aws.String("SET #status = :failed, last_error = :error, completed_at = :now REMOVE lease_until, claim_token, next_attempt_at"),
		ConditionExpression:      aws.String("claim_token = :token"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":failed": str(StatusFailed),
			":error":  str(reason),
			":now":    str(store.FormatTime(s.svc.now())),
			":token":  str(token),
		},
		ReturnValues: types.ReturnValueNone,
	})
	if err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("mark webhook delivery %s failed: %w", d.ID, err)
	}
	return nil
}

// changeVisibility makes the message visible again after delay. A failure
// is logged: the message then returns after the queue's own visibility
// timeout instead.
func (s *Sender) changeVisibility(ctx context.Context, log *slog.Logger, receiptHandle string, delay time.Duration) {
	_, err := s.svc.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          &s.svc.cfg.QueueURL,
		ReceiptHandle:     &receiptHandle,
		VisibilityTimeout: int32(delay / time.Second),
	})
	if err != nil {
		log.Error("change webhook message visibility failed; it returns after the queue's visibility timeout", "error", err.Error())
	}
}
