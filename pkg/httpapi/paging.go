package httpapi

import (
	"net/http"
	"strconv"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// Page size bounds for list endpoints.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageParams reads the limit and cursor query parameters. It returns an
// Invalid error for a limit that is not a whole number from 1 to
// MaxPageSize.
func PageParams(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = DefaultPageSize
	if raw := q.Get("limit"); raw != "" {
		n, convErr := strconv.Atoi(raw)
		if convErr != nil || n < 1 || n > MaxPageSize {
			return 0, "", apperr.InvalidField("limit", "invalid_limit",
				"Query parameter limit=%q must be a whole number from 1 to %d.", raw, MaxPageSize)
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

// InvalidCursor returns the error for a cursor that the store rejected.
func InvalidCursor(cursor string) error {
	shown := cursor
	if len(shown) > 40 {
		shown = shown[:40] + "..."
	}
	return apperr.InvalidField("cursor", "invalid_cursor",
		"Query parameter cursor=%q is not a cursor returned by this listing; start again without it.", shown)
}

// Page is the envelope of every list response.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}
