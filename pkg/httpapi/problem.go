package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/store"
)

// ProblemContentType is the media type of error responses (RFC 9457).
const ProblemContentType = "application/problem+json"

// statusByCode is the one table that maps error codes to HTTP statuses.
var statusByCode = map[apperr.Code]int{
	apperr.Invalid:            http.StatusBadRequest,
	apperr.Unauthorized:       http.StatusUnauthorized,
	apperr.InsufficientCredit: http.StatusPaymentRequired,
	apperr.Forbidden:          http.StatusForbidden,
	apperr.NotFound:           http.StatusNotFound,
	apperr.MethodNotAllowed:   http.StatusMethodNotAllowed,
	apperr.Conflict:           http.StatusConflict,
	apperr.TooLarge:           http.StatusRequestEntityTooLarge,
	apperr.Unprocessable:      http.StatusUnprocessableEntity,
	apperr.RateLimited:        http.StatusTooManyRequests,
	apperr.Internal:           http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code apperr.Code) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem document with SignSecure's extension
// members.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Extra     map[string]any
}

// MarshalJSON flattens Extra into the document's top level.
func (p Problem) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range p.Extra {
		m[k] = v
	}
	m["type"] = p.Type
	m["title"] = p.Title
	m["status"] = p.Status
	m["detail"] = p.Detail
	m["code"] = p.Code
	if p.Field != "" {
		m["field"] = p.Field
	}
	if p.RequestID != "" {
		m["request_id"] = p.RequestID
	}
	return json.Marshal(m)
}

// WriteError writes err as a problem response. An error that is not an
// *apperr.Error is logged once, with the request id, and the client gets
// a generic 500 that reveals nothing of it.
//
// A pagination cursor that the store rejected (store.ErrInvalidCursor) is
// turned into the 400 invalid_cursor problem here, so no list handler
// needs to map it.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrInvalidCursor) && apperr.As(err) == nil {
		err = InvalidCursor(r.URL.Query().Get("cursor"))
	}
	ae := apperr.As(err)
	if ae == nil || ae.Code == apperr.Internal {
		Logger(r.Context()).Error("request failed", "error", err.Error())
		ae = &apperr.Error{Code: apperr.Internal, Message: "The server failed to process the request. Try again later; if it keeps failing, contact support with the request id."}
	}

	status := StatusOf(ae.Code)
	if ae.RetryAfter > 0 {
		secs := int(ae.RetryAfter.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	writeProblem(w, Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    ae.Message,
		Code:      ae.ReasonCode(),
		Field:     ae.Field,
		RequestID: RequestID(r.Context()),
		Extra:     ae.Extra,
	})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		slog.Error("encode problem", "error", err.Error())
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
