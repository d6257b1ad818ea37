// Package apperr defines the one error type that SignSecure's packages return
// for failures a client can act on, and the small set of codes it carries.
//
// The HTTP layer maps each Code to exactly one status; no other package picks
// an HTTP status. Any error that is not an *Error is internal: its text is
// logged and never sent to a client.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Code is the category of an error. Each code maps to one HTTP status.
type Code string

// The codes. Interface comments in other packages name the codes a method
// returns.
const (
	Invalid            Code = "invalid"             // 400: the request is malformed or a field is invalid
	Unauthorized       Code = "unauthorized"        // 401: missing, malformed, expired or unknown credentials
	InsufficientCredit Code = "insufficient_credit" // 402: the wallet cannot pay for the operation
	Forbidden          Code = "forbidden"           // 403: authenticated, but the role does not allow it
	NotFound           Code = "not_found"           // 404: no such resource in the caller's workspace
	MethodNotAllowed   Code = "method_not_allowed"  // 405: the path exists with other methods
	Conflict           Code = "conflict"            // 409: the resource's state does not allow the change
	TooLarge           Code = "too_large"           // 413: the body is over the limit
	Unprocessable      Code = "unprocessable"       // 422: well-formed but cannot be processed
	RateLimited        Code = "rate_limited"        // 429: too many requests; RetryAfter gives the wait before a retry
	Internal           Code = "internal"            // 500: a bug or an outage; details are only logged
)

// Error is a failure that a client can act on.
type Error struct {
	// Code is the category that selects the HTTP status.
	Code Code
	// Reason is a stable, specific machine-readable code such as
	// "email_taken". Empty means the Code itself.
	Reason string
	// Message is a human sentence that names the field and value involved.
	Message string
	// Field is the JSON field or parameter at fault, if any.
	Field string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Extra holds further members for the problem document, such as a
	// wallet's balance and the cost of the operation.
	Extra map[string]any
}

// Error returns the message with its code.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.ReasonCode(), e.Message)
}

// ReasonCode returns Reason, or the Code when no Reason is set.
func (e *Error) ReasonCode() string {
	if e.Reason != "" {
		return e.Reason
	}
	return string(e.Code)
}

// New returns an error with the code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an Invalid error for a field, with a stable reason.
func InvalidField(field, reason, format string, args ...any) *Error {
	return &Error{Code: Invalid, Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// WithReason sets Reason and returns e.
func (e *Error) WithReason(reason string) *Error {
	e.Reason = reason
	return e
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of err: the code of the *Error in its chain,
// or Internal for any other non-nil error, or "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}
