package apidoc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator checks responses and webhook delivery bodies against the
// document. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator loads and validates the document and returns a validator
// over it.
func NewValidator() (*Validator, error) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(Document())
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate openapi document: %w", err)
	}

	// The router matches the servers' hosts, and a test server listens on
	// a random port, so the router works on paths alone.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi document: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// defaultValidator is the validator of ValidateResponse and
// ValidateWebhookPayload, built on first use.
var defaultValidator = sync.OnceValues(NewValidator)

// ValidateResponse validates a response to req against the document with
// the validator that NewValidator returns, built once. See
// Validator.ValidateResponse.
func ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	v, err := defaultValidator()
	if err != nil {
		return err
	}
	return v.ValidateResponse(req, status, header, body)
}

// ValidateWebhookPayload validates a webhook delivery body against the
// document with the validator that NewValidator returns, built once. See
// Validator.ValidateWebhookPayload.
func ValidateWebhookPayload(eventType string, body []byte) error {
	v, err := defaultValidator()
	if err != nil {
		return err
	}
	return v.ValidateWebhookPayload(eventType, body)
}

// ValidateResponse returns an error when a response to req does not match
// the document. It reports a status that the operation does not declare, a
// missing required header (X-Request-Id, Location, Allow and others), a
// header or body that does not match its schema, and a content type that
// the status does not declare. Only the method and URL path of req are read.
//
// A request whose path matches no operation must get the 404
// (route_not_found) of components.responses.NotFound, and one whose path
// exists with other methods the 405 of components.responses.MethodNotAllowed.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		route, err = v.unroutedRoute(req, http.StatusNotFound, "NotFound")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		route, err = v.unroutedRoute(req, http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}

	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
		},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("%s %s: response %d: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// unroutedRoute returns a route for a request that matches no operation,
// whose only response is the named component with the status.
func (v *Validator) unroutedRoute(req *http.Request, status int, component string) (*routers.Route, error) {
	resp := v.doc.Components.Responses[component]
	if resp == nil {
		return nil, fmt.Errorf("the document has no components.responses.%s", component)
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, resp))
	return &routers.Route{Spec: v.doc, Path: req.URL.Path, Method: req.Method, Operation: op}, nil
}

// ValidateWebhookPayload returns an error when body is not a valid
// delivery body of eventType under the document's webhooks, or when the
// document has no webhook of that type, as for the security.* events,
// which are never delivered to webhooks.
func (v *Validator) ValidateWebhookPayload(eventType string, body []byte) error {
	item := v.doc.Webhooks[eventType]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value == nil {
		known := "not a webhook event type"
		if strings.HasPrefix(eventType, "security.") {
			known = "a security event, which is never delivered to webhooks"
		}
		return fmt.Errorf("webhook payload of %q: the document has no webhooks entry for it: it is %s", eventType, known)
	}
	media := item.Post.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return fmt.Errorf("webhook payload of %q: the document's entry has no application/json schema", eventType)
	}

	var value any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&value); err != nil {
		return fmt.Errorf("webhook payload of %q: decode: %w", eventType, err)
	}
	if dec.More() {
		return fmt.Errorf("webhook payload of %q: data after the JSON value", eventType)
	}
	if err := media.Schema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("webhook payload of %q: %w", eventType, err)
	}
	return nil
}
