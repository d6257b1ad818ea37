package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// MaxBodyBytes is the largest JSON request body accepted.
const MaxBodyBytes = 1 << 20

// DecodeJSON decodes the request body into v, a pointer to a struct. It
// returns an Invalid error that names the field and value for an empty
// body, malformed JSON, an unknown field, a value of the wrong type or data
// after the JSON value, and a TooLarge error for a body over MaxBodyBytes.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSONContentType(ct) {
		return &apperr.Error{Code: apperr.Invalid, Reason: "unsupported_content_type", Field: "Content-Type",
			Message: fmt.Sprintf("Content-Type %q is not supported; send application/json.", ct)}
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apperr.Error{Code: apperr.TooLarge, Reason: "body_too_large",
			Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", MaxBodyBytes)}
	}
	if err != nil {
		return apperr.New(apperr.Invalid, "The request body could not be read: %v.", err).WithReason("unreadable_body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.Invalid, "The request body is empty; send a JSON object.").WithReason("empty_body")
	}

	if !utf8.Valid(body) {
		return apperr.New(apperr.Invalid, "The request body is not valid UTF-8; send JSON encoded as UTF-8.").WithReason("malformed_json")
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return apperr.New(apperr.Invalid, "The request body must be a JSON object, not null.").WithReason("malformed_json")
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Invalid, "The request body has data after the JSON object; send exactly one object.").WithReason("malformed_json")
	}
	return checkKeys(body, reflect.TypeOf(v))
}

func isJSONContentType(ct string) bool {
	media, _, _ := strings.Cut(ct, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	return media == "application/json" || strings.HasSuffix(media, "+json")
}

func decodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return apperr.New(apperr.Invalid, "The request body is not valid JSON at byte %d: %s.", syntaxErr.Offset, syntaxErr.Error()).WithReason("malformed_json")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "The request body ends in the middle of a JSON value.").WithReason("malformed_json")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apperr.New(apperr.Invalid, "The request body must be a JSON object, not %s.", typeErr.Value).WithReason("malformed_json")
		}
		return apperr.InvalidField(field, "wrong_type", "Field %q must be %s, not %s.", field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.InvalidField(name, "unknown_field", "Field %q is not accepted by this endpoint.", name)
	default:
		return apperr.New(apperr.Invalid, "The request body could not be decoded: %s.", err.Error()).WithReason("malformed_json")
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of another type"
	default:
		return "a value of another type"
	}
}
