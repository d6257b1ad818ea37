package store

import "time"

// TimeLayout is the layout of every time attribute in the table: RFC 3339
// with nanoseconds, in UTC, so strings sort in time order.
const TimeLayout = time.RFC3339Nano

// FormatTime returns t in UTC in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime returns the UTC time of a stored time attribute, or the zero
// time for an empty or malformed value.
func ParseTime(s string) time.Time {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
