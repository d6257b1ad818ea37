// Package apikeys manages workspace-bound API keys and authenticates
// requests made with them.
//
// A key is created in the caller's current workspace and is bound to it for
// life. Its secret, "signsecure_" followed by 32 random base62 characters
// and a 6-character base62 CRC-32 checksum, is returned once, at creation.
// The table stores only its SHA-256 hash, as the item's key, with a short
// display prefix and the last four characters.
//
// Every member of a workspace may list and read its keys. In an
// organization only owners and admins create, change and revoke them; in
// a personal workspace the user does. Revoking is idempotent: revoking a
// revoked key succeeds and keeps the first revocation time. A revoked or
// expired key stays listed, with revoked_at or expires_at, until DynamoDB's
// TTL deletes its item, which happens some time after 30 days. From then on
// an expired key gets invalid_api_key instead of api_key_expired.
//
// Authenticate checks a key and counts the request against the key's
// per-minute limit in one conditional UpdateItem in the common case.
package apikeys

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// Rate limit bounds, in requests per minute.
const (
	DefaultRateLimit = 600
	MaxRateLimit     = 10000
)

const (
	// maxNameRunes bounds a key's name.
	maxNameRunes = 100
	// retention is how long a revoked or expired key stays listed before
	// DynamoDB's TTL deletes its item.
	retention = 30 * 24 * time.Hour
)

// Service manages API keys.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a service over the store. now may be nil for
// time.Now.
func NewService(s *store.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, now: now}
}

// CreateInput is the request to create a key.
type CreateInput struct {
	Name string `json:"name"`
	// ExpiresAt is an RFC 3339 time in the future, or nil for a key that
	// does not expire. It is kept to the second.
	ExpiresAt *string `json:"expires_at"`
	// RateLimitPerMinute is from 1 to MaxRateLimit; nil means
	// DefaultRateLimit.
	RateLimitPerMinute *int `json:"rate_limit_per_minute"`
}

// Create makes a key in the caller's current workspace and returns it with
// its secret, which is never available again.
//
// Errors: Forbidden for an organization member who is not an owner or
// admin, or for an API-key caller; Invalid for a bad name, expiry or rate
// limit.
func (s *Service) Create(ctx context.Context, caller *authn.Caller, in CreateInput) (NewKey, error) {
	if err := requireManage(caller, "create"); err != nil {
		return NewKey{}, err
	}
	now := s.now().UTC()
	name, err := normalizeName(in.Name)
	if err != nil {
		return NewKey{}, err
	}
	expires, err := parseExpiry(in.ExpiresAt, now)
	if err != nil {
		return NewKey{}, err
	}
	limit := DefaultRateLimit
	if in.RateLimitPerMinute != nil {
		if limit, err = checkRateLimit(*in.RateLimitPerMinute); err != nil {
			return NewKey{}, err
		}
	}
	workspacePK, err := workspacePartition(caller)
	if err != nil {
		return NewKey{}, err
	}

	secret := newSecret()
	id := ids.NewAt(ids.APIKey, now)
	key := store.APIKeyKey(token.Hash(secret))
	start := windowStart(now)
	it := keyItem{
		Item: store.Item{
			PK:     key.PK,
			SK:     key.SK,
			GSI1PK: store.APIKeysGSI1PK(workspacePK),
			GSI1SK: id,
			Entity: entityAPIKey,
		},
		ID:           id,
		Name:         name,
		WorkspaceID:  caller.WorkspaceID,
		CreatedBy:    caller.UserID,
		CreatedAt:    store.FormatTime(now),
		RateLimit:    limit,
		WindowStart:  start,
		WindowCounts: map[string]int{windowName(start): 0},
		Prefix:       displayPrefix(secret),
		LastFour:     lastFour(secret),
	}
	if !expires.IsZero() {
		it.KeyExpiresAt = expires.Unix()
		it.ExpiresAt = expires.Add(retention).Unix()
	}

	put, err := s.store.PutNew(it)
	if err != nil {
		return NewKey{}, fmt.Errorf("create api key %s: %w", id, err)
	}
	if err := s.store.Transact(ctx, put); err != nil {
		return NewKey{}, fmt.Errorf("create api key %s in workspace %s: %w", id, caller.WorkspaceID, err)
	}
	return NewKey{Key: it.key(), Secret: secret}, nil
}

// List returns a page of the current workspace's keys, newest first, and
// the cursor of the next page, or "" after the last page.
//
// Errors: store.ErrInvalidCursor (wrapped) for a cursor not made by this
// listing.
func (s *Service) List(ctx context.Context, caller *authn.Caller, limit int, cursor string) ([]Key, string, error) {
	workspacePK, err := workspacePartition(caller)
	if err != nil {
		return nil, "", err
	}
	var items []keyItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Index:      store.GSI1,
		Partition:  store.APIKeysGSI1PK(workspacePK),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list api keys of workspace %s: %w", caller.WorkspaceID, err)
	}
	keys := make([]Key, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.key())
	}
	return keys, next, nil
}

// Get returns a key of the current workspace.
//
// Errors: Invalid for a malformed id; NotFound for an id that is not a key
// of the current workspace.
func (s *Service) Get(ctx context.Context, caller *authn.Caller, id string) (Key, error) {
	it, err := s.find(ctx, caller, id)
	if err != nil {
		return Key{}, err
	}
	return it.key(), nil
}

// UpdateInput holds the fields to change; nil fields stay as they are.
type UpdateInput struct {
	Name               *string `json:"name"`
	RateLimitPerMinute *int    `json:"rate_limit_per_minute"`
}

// Update renames a key or changes its rate limit. A new limit applies
// from the next request, within the current window.
//
// Errors: Forbidden as for Create; Invalid for a malformed id, an empty
// update or a bad field; NotFound for an id that is not a key of the
// current workspace; Conflict (api_key_revoked) for a revoked key.
func (s *Service) Update(ctx context.Context, caller *authn.Caller, id string, in UpdateInput) (Key, error) {
	if err := requireManage(caller, "change"); err != nil {
		return Key{}, err
	}
	if in.Name == nil && in.RateLimitPerMinute == nil {
		return Key{}, apperr.New(apperr.Invalid, "Give at least one of the fields \"name\" and \"rate_limit_per_minute\".").WithReason("empty_update")
	}
	var sets []string
	values := map[string]types.AttributeValue{}
	if in.Name != nil {
		name, err := normalizeName(*in.Name)
		if err != nil {
			return Key{}, err
		}
		sets = append(sets, "#name = :name")
		values[":name"] = &types.AttributeValueMemberS{Value: name}
	}
	if in.RateLimitPerMinute != nil {
		limit, err := checkRateLimit(*in.RateLimitPerMinute)
		if err != nil {
			return Key{}, err
		}
		sets = append(sets, "rate_limit_per_minute = :limit")
		values[":limit"] = &types.AttributeValueMemberN{Value: strconv.Itoa(limit)}
	}

	found, err := s.find(ctx, caller, id)
	if err != nil {
		return Key{}, err
	}
	values[":workspace"] = &types.AttributeValueMemberS{Value: caller.WorkspaceID}
	names := map[string]string{}
	if in.Name != nil {
		names["#name"] = "name"
	}
	newItem, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                                 store.Key{PK: found.PK, SK: found.SK}.Attributes(),
		UpdateExpression:                    new("SET " + strings.Join(sets, ", ")),
		ConditionExpression:                 new("attribute_exists(PK) AND workspace_id = :workspace AND attribute_not_exists(revoked_at)"),
		ExpressionAttributeNames:            nilIfEmpty(names),
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		if len(newItem) == 0 {
			return Key{}, keyNotFound(id)
		}
		return Key{}, &apperr.Error{Code: apperr.Conflict, Reason: "api_key_revoked",
			Message: fmt.Sprintf("API key %s is revoked and can no longer be changed.", id)}
	}
	if err != nil {
		return Key{}, fmt.Errorf("update api key %s: %w", id, err)
	}

	var it keyItem
	if err := decodeItem(newItem, &it); err != nil {
		return Key{}, fmt.Errorf("update api key %s: %w", id, err)
	}
	return it.key(), nil
}

// Revoke ends a key: from the next request on, it authenticates nothing.
// Revoking a revoked key succeeds and changes nothing.
//
// Errors: Forbidden as for Create; Invalid for a malformed id; NotFound
// for an id that is not a key of the current workspace.
func (s *Service) Revoke(ctx context.Context, caller *authn.Caller, id string) error {
	if err := requireManage(caller, "revoke"); err != nil {
		return err
	}
	found, err := s.find(ctx, caller, id)
	if err != nil {
		return err
	}

	now := s.now().UTC()
	removeAt := now.Add(retention).Unix()
	if found.ExpiresAt != 0 {
		removeAt = min(removeAt, found.ExpiresAt)
	}
	old, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                 store.Key{PK: found.PK, SK: found.SK}.Attributes(),
		UpdateExpression:    new("SET revoked_at = :now, expires_at = :remove_at"),
		ConditionExpression: new("attribute_exists(PK) AND workspace_id = :workspace AND attribute_not_exists(revoked_at)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":       &types.AttributeValueMemberS{Value: store.FormatTime(now)},
			":remove_at": &types.AttributeValueMemberN{Value: strconv.FormatInt(removeAt, 10)},
			":workspace": &types.AttributeValueMemberS{Value: caller.WorkspaceID},
		},
		ReturnValues:                        types.ReturnValueNone,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		if len(old) == 0 {
			return keyNotFound(id)
		}
		// The key was revoked already, and its first revocation time is kept.
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return nil
}

// find returns the item of a key of the caller's workspace, through GSI1,
// so a key of another workspace is never found.
//
// NOTE: GSI1 is eventually consistent, so a key created a moment ago can
// be NotFound for a short while in AWS. Writes after find go to the item
// itself, conditionally, so they never act on stale data.
func (s *Service) find(ctx context.Context, caller *authn.Caller, id string) (keyItem, error) {
	if !ids.Valid(ids.APIKey, id) {
		return keyItem{}, apperr.InvalidField("id", "invalid_id",
			"Path parameter id=%q is not an API key id; ids look like key_01jf3k8x2q7m9v4n5b6c7d8e9f.", truncate(id, 64))
	}
	workspacePK, err := workspacePartition(caller)
	if err != nil {
		return keyItem{}, err
	}
	var items []keyItem
	_, err = s.store.QueryPage(ctx, store.Query{
		Index:     store.GSI1,
		Partition: store.APIKeysGSI1PK(workspacePK),
		// Ids have a fixed length, so this prefix matches exactly one id.
		SKPrefix: id,
		Limit:    1,
	}, &items)
	if err != nil {
		return keyItem{}, fmt.Errorf("find api key %s in workspace %s: %w", id, caller.WorkspaceID, err)
	}
	if len(items) == 0 || items[0].ID != id {
		return keyItem{}, keyNotFound(id)
	}
	return items[0], nil
}

// requireManage returns a Forbidden error unless the caller may create,
// change or revoke the workspace's keys. action names the operation in the
// message.
func requireManage(caller *authn.Caller, action string) error {
	if caller.CanManage() {
		return nil
	}
	if caller.Kind != authn.KindSession {
		return &apperr.Error{Code: apperr.Forbidden, Reason: "session_required",
			Message: fmt.Sprintf("API keys cannot %s API keys; log in and use a session token.", action)}
	}
	role := caller.Role
	if role == "" {
		role = "none"
	}
	return &apperr.Error{Code: apperr.Forbidden, Reason: "insufficient_role",
		Message: fmt.Sprintf("Only owners and admins can %s API keys for organization %s; your role is %s.", action, caller.WorkspaceID, role),
		Extra:   map[string]any{"role": caller.Role}}
}

// workspacePartition returns the partition of the caller's workspace. An
// id that is neither a user nor an organization id is a wiring bug.
func workspacePartition(caller *authn.Caller) (string, error) {
	pk := store.WorkspacePK(caller.WorkspaceID)
	if pk == "" {
		return "", fmt.Errorf("api keys: caller workspace %q is not a user or organization id", caller.WorkspaceID)
	}
	return pk, nil
}

func normalizeName(raw string) (string, error) {
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		return "", apperr.InvalidField("name", "invalid_name", "Field \"name\" is required and must not be blank.")
	case !utf8.ValidString(name):
		return "", apperr.InvalidField("name", "invalid_name", "Field \"name\" must be valid UTF-8.")
	case utf8.RuneCountInString(name) > maxNameRunes:
		return "", apperr.InvalidField("name", "invalid_name",
			"Field \"name\" has %d characters; the maximum is %d.", utf8.RuneCountInString(name), maxNameRunes)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", apperr.InvalidField("name", "invalid_name", "Field \"name\"=%q contains control characters.", name)
	}
	return name, nil
}

// parseExpiry returns the expiry of a new key to the second, or the zero
// time for none.
func parseExpiry(raw *string, now time.Time) (time.Time, error) {
	if raw == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *raw)
	if err != nil {
		return time.Time{}, apperr.InvalidField("expires_at", "invalid_expires_at",
			"Field \"expires_at\"=%q is not an RFC 3339 time such as 2027-01-31T00:00:00Z.", truncate(*raw, 64))
	}
	t = t.UTC().Truncate(time.Second)
	if !t.After(now) {
		return time.Time{}, apperr.InvalidField("expires_at", "invalid_expires_at",
			"Field \"expires_at\"=%q is not in the future; the time now is %s.", *raw, now.Format(time.RFC3339))
	}
	return t, nil
}

func checkRateLimit(n int) (int, error) {
	if n < 1 || n > MaxRateLimit {
		return 0, apperr.InvalidField("rate_limit_per_minute", "invalid_rate_limit",
			"Field \"rate_limit_per_minute\"=%d must be from 1 to %d.", n, MaxRateLimit)
	}
	return n, nil
}

func keyNotFound(id string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "api_key_not_found",
		Message: fmt.Sprintf("API key %s was not found in the current workspace.", id)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
