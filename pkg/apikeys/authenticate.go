package apikeys

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// validKeyCondition holds for a key that exists, is not revoked and has not
// expired at :now_unix.
const validKeyCondition = "attribute_exists(PK) AND attribute_not_exists(revoked_at) AND " +
	"(attribute_not_exists(key_expires_at) OR key_expires_at > :now_unix)"

// Authenticate checks an API key and counts the request against the key's
// per-minute limit. It returns the key and its usage in the current window.
//
// A malformed key is rejected before any database call. Otherwise, in the
// common case, one conditional UpdateItem on the key item checks that the
// key exists, is not revoked, has not expired and is under its limit in the
// current window, counts the request and sets last_used_at. The first
// request of a new window takes a second conditional UpdateItem that opens
// the window; no request takes more than two calls.
//
// Errors: Unauthorized with reason malformed_api_key for a key of the wrong
// form, invalid_api_key for an unknown or revoked key (the same error for
// both), and api_key_expired for an expired key. RateLimited
// (rate_limit_exceeded) over the limit, with RetryAfter set to the time
// left in the window. The Usage returned with that error is filled in, so
// the caller can still write the rate-limit headers.
func (s *Service) Authenticate(ctx context.Context, raw string) (Key, Usage, error) {
	if !Valid(raw) {
		return Key{}, Usage{}, malformedKey()
	}
	now := s.now().UTC()
	itemKey := store.APIKeyKey(token.Hash(raw))
	current := windowStart(now)

	it, old, err := s.countInWindow(ctx, itemKey, now, current)
	if err == nil {
		return it.key(), usageOf(it, now), nil
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		return Key{}, Usage{}, err
	}

	// The condition failed, and the item as it was shows why. Unless the
	// key is rejected, the window has rolled over and the next update opens
	// the new one.
	before, usage, err := rejection(old, now, current)
	if err != nil {
		return Key{}, usage, err
	}
	// A window later than current comes from a request whose clock runs
	// ahead; counting in it keeps the window from moving backwards.
	open := max(current, before.WindowStart)
	it, old, err = s.openWindow(ctx, itemKey, now, before.WindowStart, open)
	if err == nil {
		return it.key(), usageOf(it, now), nil
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		return Key{}, Usage{}, err
	}
	if _, usage, err := rejection(old, now, open); err != nil {
		return Key{}, usage, err
	}
	// NOTE: reached only when requests timed by clocks that disagree by a
	// minute or more moved the window between the two updates. Rather than
	// make a third call, the request is rejected for a second.
	return Key{}, Usage{}, &apperr.Error{Code: apperr.RateLimited, Reason: "rate_limit_busy", RetryAfter: time.Second,
		Message: "The API key's rate-limit window changed during the request; retry in one second."}
}

// countInWindow counts a request in the window that starts at current,
// when that is the item's window and it is below the key's limit.
func (s *Service) countInWindow(ctx context.Context, itemKey store.Key, now time.Time, current int64) (keyItem, map[string]types.AttributeValue, error) {
	return s.countRequest(ctx, itemKey, &dynamodb.UpdateItemInput{
		UpdateExpression: new("SET last_used_at = :now, window_counts.#window = window_counts.#window + :one"),
		ConditionExpression: new(validKeyCondition +
			" AND window_start = :window AND window_counts.#window < rate_limit_per_minute"),
		ExpressionAttributeNames:  map[string]string{"#window": windowName(current)},
		ExpressionAttributeValues: requestValues(now, current),
	})
}

// openWindow moves the item's window from previous to open, counts a
// request in it and removes the previous window's count in the same write,
// so the map of counts keeps one entry. The condition holds only while the
// item's window is previous or open: a concurrent request may have opened
// the window already, so the count starts from the window's entry if there
// is one.
func (s *Service) openWindow(ctx context.Context, itemKey store.Key, now time.Time, previous, open int64) (keyItem, map[string]types.AttributeValue, error) {
	update := "SET last_used_at = :now, window_start = :window, " +
		"window_counts.#window = if_not_exists(window_counts.#window, :zero) + :one"
	condition := validKeyCondition + " AND window_start = :window"
	names := map[string]string{"#window": windowName(open)}
	values := requestValues(now, open)
	values[":zero"] = &types.AttributeValueMemberN{Value: "0"}
	if previous != open {
		update += " REMOVE window_counts.#previous"
		condition = validKeyCondition + " AND (window_start = :previous OR window_start = :window)"
		names["#previous"] = windowName(previous)
		values[":previous"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(previous, 10)}
	}
	condition += " AND (attribute_not_exists(window_counts.#window) OR window_counts.#window < rate_limit_per_minute)"

	return s.countRequest(ctx, itemKey, &dynamodb.UpdateItemInput{
		UpdateExpression:          new(update),
		ConditionExpression:       new(condition),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
}

// countRequest runs one counting update on the key item. On success it
// returns the item as updated. When the condition fails it returns
// store.ErrConditionFailed and the item as it was, or nil when there is no
// item.
func (s *Service) countRequest(ctx context.Context, itemKey store.Key, in *dynamodb.UpdateItemInput) (keyItem, map[string]types.AttributeValue, error) {
	in.Key = itemKey.Attributes()
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	attrs, err := s.store.Update(ctx, in)
	if errors.Is(err, store.ErrConditionFailed) {
		return keyItem{}, attrs, err
	}
	if err != nil {
		return keyItem{}, nil, fmt.Errorf("authenticate api key: %w", err)
	}
	var it keyItem
	if err := decodeItem(attrs, &it); err != nil {
		return keyItem{}, nil, fmt.Errorf("authenticate api key: %w", err)
	}
	return it, nil, nil
}

// rejection returns the error for a request whose counting update failed
// its condition, from the item as it was (old, nil when there was no
// item), and the usage when the key is over its limit. When the key is
// valid and may count a request in current or a later window, it returns
// the decoded item and no error.
func rejection(old map[string]types.AttributeValue, now time.Time, current int64) (keyItem, Usage, error) {
	if len(old) == 0 {
		return keyItem{}, Usage{}, invalidKey()
	}
	var it keyItem
	if err := decodeItem(old, &it); err != nil {
		return keyItem{}, Usage{}, fmt.Errorf("authenticate api key: %w", err)
	}
	if it.RevokedAt != "" {
		return keyItem{}, Usage{}, invalidKey()
	}
	if it.expiredAt(now) {
		return keyItem{}, Usage{}, &apperr.Error{Code: apperr.Unauthorized, Reason: "api_key_expired",
			Message: fmt.Sprintf("API key %s expired at %s; create a new key.", it.ID, time.Unix(it.KeyExpiresAt, 0).UTC().Format(time.RFC3339))}
	}
	if it.WindowStart >= current && it.windowCount() >= it.RateLimit {
		usage := usageOf(it, now)
		return keyItem{}, usage, rateLimited(it, usage)
	}
	return it, Usage{}, nil
}

func requestValues(now time.Time, window int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		":now":      &types.AttributeValueMemberS{Value: store.FormatTime(now)},
		":now_unix": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
		":window":   &types.AttributeValueMemberN{Value: strconv.FormatInt(window, 10)},
		":one":      &types.AttributeValueMemberN{Value: "1"},
	}
}

func usageOf(it keyItem, now time.Time) Usage {
	reset := time.Unix(it.WindowStart, 0).UTC().Add(window)
	return Usage{
		Limit:      it.RateLimit,
		Remaining:  max(it.RateLimit-it.windowCount(), 0),
		Reset:      reset,
		ResetAfter: max(reset.Sub(now), 0),
	}
}

// WriteRateLimitHeaders sets the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset headers, named as in the IETF draft
// draft-ietf-httpapi-ratelimit-headers-06, on an API-key response, 429s
// included. RateLimit-Reset is the number of seconds until the window
// resets, rounded up.
func WriteRateLimitHeaders(w http.ResponseWriter, u Usage) {
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(u.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(u.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(resetSeconds(u.ResetAfter)))
}

func resetSeconds(d time.Duration) int {
	return int((max(d, 0) + time.Second - 1) / time.Second)
}

func decodeItem(attrs map[string]types.AttributeValue, it *keyItem) error {
	if err := attributevalue.UnmarshalMap(attrs, it); err != nil {
		return fmt.Errorf("decode api key item: %w", err)
	}
	return nil
}

func malformedKey() error {
	return &apperr.Error{Code: apperr.Unauthorized, Reason: "malformed_api_key",
		Message: fmt.Sprintf("The API key is malformed: it must be %q followed by %d base62 characters, as shown once at creation; check that it was copied whole.",
			Prefix, randomChars+checksumChars)}
}

// invalidKey is the error for an unknown and for a revoked key alike, so
// a response does not tell whether a key ever existed.
func invalidKey() error {
	return &apperr.Error{Code: apperr.Unauthorized, Reason: "invalid_api_key",
		Message: "The API key is unknown or has been revoked; use an active key or create a new one."}
}

func rateLimited(it keyItem, u Usage) error {
	return &apperr.Error{Code: apperr.RateLimited, Reason: "rate_limit_exceeded", RetryAfter: u.ResetAfter,
		Message: fmt.Sprintf("API key %s has used its limit of %d requests per minute; retry after %s.",
			it.ID, it.RateLimit, u.Reset.Format(time.RFC3339)),
		Extra: map[string]any{
			"rate_limit":           u.Limit,
			"rate_limit_remaining": u.Remaining,
			"rate_limit_reset":     resetSeconds(u.ResetAfter),
		}}
}
