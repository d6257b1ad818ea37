package apikeys

import (
	"strconv"
	"time"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/store"
)

// Key is an API key as clients see it. Its secret is never stored, so no
// Key carries it; NewKey does, once.
type Key struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	WorkspaceID string `json:"workspace_id"`
	// CreatedBy is the id of the user who created the key.
	CreatedBy string `json:"created_by"`
	// Prefix is the start of the key, such as "signsecure_Ab3x", for
	// telling keys apart.
	Prefix string `json:"prefix"`
	// LastFour is the key's last four characters.
	LastFour  string    `json:"last_four"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is nil for a key that does not expire.
	ExpiresAt *time.Time `json:"expires_at"`
	// RevokedAt is nil for a key that has not been revoked.
	RevokedAt          *time.Time `json:"revoked_at"`
	RateLimitPerMinute int        `json:"rate_limit_per_minute"`
	// LastUsedAt is the time of the last request the key authenticated,
	// or nil if it has never been used.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Caller returns the caller of a request authenticated with the key: the
// key's workspace, and the user who created it. An API-key caller has no
// role and never manages the workspace.
func (k Key) Caller() *authn.Caller {
	return &authn.Caller{
		Kind:        authn.KindAPIKey,
		UserID:      k.CreatedBy,
		APIKeyID:    k.ID,
		WorkspaceID: k.WorkspaceID,
	}
}

// NewKey is an API key at the moment it is created: the only time its
// secret exists outside the client.
type NewKey struct {
	Key
	// Secret is the whole key, "signsecure_...", sent as a bearer token.
	Secret string `json:"key"`
}

// Usage is the state of a key's current rate-limit window.
type Usage struct {
	// Limit is the number of requests allowed per window.
	Limit int
	// Remaining is the number of requests left in the window.
	Remaining int
	// Reset is the end of the window.
	Reset time.Time
	// ResetAfter is the time from the request to Reset.
	ResetAfter time.Duration
}

// window is the length of a rate-limit window. Windows are fixed and start
// on whole minutes of Unix time.
const window = time.Minute

const entityAPIKey = "api_key"

// keyItem is an API key, keyed by the SHA-256 of the whole key.
//
// The rate-limit counter lives in WindowCounts, a map from a window's start
// (Unix seconds, as a decimal string) to the number of requests counted in
// it. The map contains only the entry for WindowStart: the update that moves
// WindowStart forward removes the previous entry in the same write. Keeping
// the count under the window's name lets the update that opens a window
// also count into it when a concurrent request opened it first.
type keyItem struct {
	store.Item
	ID          string `dynamodbav:"id"`
	Name        string `dynamodbav:"name"`
	WorkspaceID string `dynamodbav:"workspace_id"`
	CreatedBy   string `dynamodbav:"created_by"`
	CreatedAt   string `dynamodbav:"created_at"`
	// KeyExpiresAt is the key's expiry in Unix seconds, or 0 for none. It
	// is separate from the item's TTL, which removes the item later.
	KeyExpiresAt int64          `dynamodbav:"key_expires_at,omitempty"`
	RevokedAt    string         `dynamodbav:"revoked_at,omitempty"`
	RateLimit    int            `dynamodbav:"rate_limit_per_minute"`
	WindowStart  int64          `dynamodbav:"window_start"`
	WindowCounts map[string]int `dynamodbav:"window_counts"`
	LastUsedAt   string         `dynamodbav:"last_used_at,omitempty"`
	Prefix       string         `dynamodbav:"prefix"`
	LastFour     string         `dynamodbav:"last_four"`
}

func (it keyItem) key() Key {
	k := Key{
		ID:                 it.ID,
		Name:               it.Name,
		WorkspaceID:        it.WorkspaceID,
		CreatedBy:          it.CreatedBy,
		Prefix:             it.Prefix,
		LastFour:           it.LastFour,
		CreatedAt:          store.ParseTime(it.CreatedAt),
		RateLimitPerMinute: it.RateLimit,
	}
	if it.KeyExpiresAt != 0 {
		t := time.Unix(it.KeyExpiresAt, 0).UTC()
		k.ExpiresAt = &t
	}
	if it.RevokedAt != "" {
		t := store.ParseTime(it.RevokedAt)
		k.RevokedAt = &t
	}
	if it.LastUsedAt != "" {
		t := store.ParseTime(it.LastUsedAt)
		k.LastUsedAt = &t
	}
	return k
}

// windowCount returns the number of requests counted in the item's
// current window.
func (it keyItem) windowCount() int {
	return it.WindowCounts[windowName(it.WindowStart)]
}

// expiredAt reports whether the key has expired at now.
func (it keyItem) expiredAt(now time.Time) bool {
	return it.KeyExpiresAt != 0 && now.Unix() >= it.KeyExpiresAt
}

func windowName(start int64) string { return strconv.FormatInt(start, 10) }

func windowStart(now time.Time) int64 { return now.Truncate(window).Unix() }
