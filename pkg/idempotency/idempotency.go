// Package idempotency makes POST requests safe to retry: a request with an
// Idempotency-Key header runs once, and a retry with the same key and body
// gets the first response again.
//
// A record per caller, workspace and key is claimed with a conditional write
// before the handler runs, so two concurrent requests with one key do the
// work once: the second gets 409 until the first finishes. A retry with
// the same key but another body, method or path gets 422. A response with
// a 5xx status is not kept, so the client may retry it. Records expire
// after 24 hours.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/store"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

const (
	// TTL is how long a key is remembered.
	TTL = 24 * time.Hour
	// maxKeyLength bounds the key, as the IETF draft's examples do.
	maxKeyLength = 255
	// maxBodyBytes bounds the request body read for the fingerprint; it
	// is above every route's own limit, which still applies.
	maxBodyBytes = 5 << 20
	// maxStoredBody bounds a replayable response body, well under
	// DynamoDB's 400 KB item size. A larger response is not kept.
	maxStoredBody = 300 << 10

	statusInProgress = "in_progress"
	statusDone       = "done"
)

// record is the item that remembers one key.
type record struct {
	store.Item
	Status      string            `dynamodbav:"status"`
	Fingerprint string            `dynamodbav:"fingerprint"`
	Code        int               `dynamodbav:"code,omitempty"`
	Headers     map[string]string `dynamodbav:"headers,omitempty"`
	Body        []byte            `dynamodbav:"body,omitempty"`
}

// Middleware applies Idempotency-Key handling to handlers.
type Middleware struct {
	store *store.Store
	now   func() time.Time
}

// New returns the middleware over the store; now may be nil for time.Now.
func New(s *store.Store, now func() time.Time) *Middleware {
	if now == nil {
		now = time.Now
	}
	return &Middleware{store: s, now: now}
}

// Wrap returns next with Idempotency-Key handling. Requests without the
// header pass straight through.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return httpapi.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		values := r.Header.Values(Header)
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return nil
		}
		key := values[0]
		if err := checkKey(key); err != nil {
			return err
		}

		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil {
			return apperr.New(apperr.Invalid, "The request body could not be read: %v.", err).WithReason("unreadable_body")
		}
		if len(body) > maxBodyBytes {
			return &apperr.Error{Code: apperr.TooLarge, Reason: "body_too_large", Message: fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes)}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		// The record belongs to the caller and the workspace it acts in,
		// so one caller's key never replays another caller's response,
		// nor a response made in another workspace.
		scope := scopeOf(r)
		itemKey := store.Key{PK: "IDEMPOTENCY#" + hash(scope+"\x00"+key), SK: "IDEMPOTENCY"}
		fingerprint := hash(r.Method + "\x00" + r.URL.Path + "\x00" + r.URL.RawQuery + "\x00" + string(body))

		prior, claimed, err := m.claim(r.Context(), itemKey, fingerprint)
		if err != nil {
			return err
		}
		if !claimed {
			return replay(w, prior, fingerprint)
		}

		rec := &recorder{header: http.Header{}}
		next.ServeHTTP(rec, r)
		m.finish(r.Context(), itemKey, fingerprint, rec)
		rec.copyTo(w)
		return nil
	})
}

// scopeOf returns who a key belongs to: an API key, or a user acting in a
// workspace (every session of the user shares the scope). Public routes
// have no caller; their paths carry what identifies them.
func scopeOf(r *http.Request) string {
	c, ok := authn.FromContext(r.Context())
	switch {
	case !ok:
		return "public"
	case c.Kind == authn.KindAPIKey:
		return "key:" + c.APIKeyID
	default:
		return "user:" + c.UserID + ":" + c.WorkspaceID
	}
}

func checkKey(key string) error {
	if key == "" {
		return apperr.InvalidField(Header, "invalid_idempotency_key", "Header %s is empty; send a unique value such as a UUID, or leave the header out.", Header)
	}
	if len(key) > maxKeyLength {
		return apperr.InvalidField(Header, "invalid_idempotency_key", "Header %s is %d characters long; the limit is %d.", Header, len(key), maxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return apperr.InvalidField(Header, "invalid_idempotency_key", "Header %s must be printable ASCII without spaces, such as a UUID.", Header)
		}
	}
	return nil
}

// claim writes an in-progress record unless a live one exists. It returns
// the existing record and false when the key is already taken.
func (m *Middleware) claim(ctx context.Context, key store.Key, fingerprint string) (record, bool, error) {
	now := m.now()
	item, err := attributevalue.MarshalMap(record{
		Item:        store.Item{PK: key.PK, SK: key.SK, Entity: "idempotency_record", ExpiresAt: now.Add(TTL).Unix()},
		Status:      statusInProgress,
		Fingerprint: fingerprint,
	})
	if err != nil {
		return record{}, false, fmt.Errorf("encode idempotency record: %w", err)
	}
	table := m.store.Table()
	_, err = m.store.DB().PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &table,
		Item:                                item,
		ConditionExpression:                 new("attribute_not_exists(PK) OR expires_at < :now"),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var prior record
		if err := attributevalue.UnmarshalMap(ccf.Item, &prior); err != nil {
			return record{}, false, fmt.Errorf("decode idempotency record: %w", err)
		}
		return prior, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return record{}, true, nil
}

// finish stores the response for replay, or releases the key after a
// server error so that a retry runs again.
func (m *Middleware) finish(ctx context.Context, key store.Key, fingerprint string, rec *recorder) {
	logger := httpapi.Logger(ctx)
	if rec.status() >= 500 || rec.body.Len() > maxStoredBody {
		if err := m.store.Delete(ctx, key); err != nil {
			logger.Error("release idempotency key", "error", err.Error())
		}
		return
	}
	headers := map[string]string{}
	for _, name := range []string{"Content-Type", "Location", "Retry-After"} {
		if v := rec.header.Get(name); v != "" {
			headers[name] = v
		}
	}
	item, err := attributevalue.MarshalMap(record{
		Item:        store.Item{PK: key.PK, SK: key.SK, Entity: "idempotency_record", ExpiresAt: m.now().Add(TTL).Unix()},
		Status:      statusDone,
		Fingerprint: fingerprint,
		Code:        rec.status(),
		Headers:     headers,
		Body:        rec.body.Bytes(),
	})
	if err == nil {
		table := m.store.Table()
		_, err = m.store.DB().PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
	}
	if err != nil {
		// The key stays in progress until it expires; retries get 409.
		logger.Error("store idempotent response", "error", err.Error())
	}
}

func replay(w http.ResponseWriter, prior record, fingerprint string) error {
	if prior.Fingerprint != fingerprint {
		return &apperr.Error{Code: apperr.Unprocessable, Reason: "idempotency_key_reused", Field: Header,
			Message: fmt.Sprintf("Header %s was already used with another request (method, path or body); use a new key for a new request.", Header)}
	}
	if prior.Status != statusDone {
		return &apperr.Error{Code: apperr.Conflict, Reason: "idempotency_request_in_progress", Field: Header, RetryAfter: time.Second,
			Message: fmt.Sprintf("A request with this %s is still being processed; retry shortly.", Header)}
	}
	for name, v := range prior.Headers {
		w.Header().Set(name, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(prior.Code)
	_, _ = w.Write(prior.Body)
	return nil
}

// recorder buffers a response so it can be stored before it is sent.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (r *recorder) copyTo(w http.ResponseWriter) {
	for name, values := range r.header {
		w.Header()[name] = values
	}
	w.WriteHeader(r.status())
	_, _ = w.Write(r.body.Bytes())
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
