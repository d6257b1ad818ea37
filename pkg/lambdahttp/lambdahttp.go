package lambdahttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// internalErrorBody is the RFC 9457 problem document sent when the adapter
// cannot convert the event or the handler panics.
const internalErrorBody = `{"type":"about:blank","title":"Internal Server Error","status":500,"code":"internal","detail":"The server failed to process the request."}`

// Start runs h as the Lambda function's handler for API Gateway HTTP API
// events. Like [lambda.Start], it does not return.
func Start(h http.Handler) {
	lambda.Start(NewHandler(h))
}

// NewHandler returns a Lambda handler that serves API Gateway HTTP API
// (payload format 2.0) events with h. Its error result is always nil: when
// the event cannot be converted or h panics, it logs the failure with the
// default [slog.Logger] and returns a 500 application/problem+json response.
func NewHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return newHandler(h, nil)
}

// newHandler is NewHandler with the logger for failures. A nil logger means
// slog.Default() at the time of the failure.
func newHandler(h http.Handler, logger *slog.Logger) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, event events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := serve(ctx, h, event)
		if err != nil {
			failureLogger := logger
			if failureLogger == nil {
				failureLogger = slog.Default()
			}
			logFailure(ctx, failureLogger, event, err)
			return internalErrorResponse(), nil
		}
		return resp, nil
	}
}

// RequestID returns the API Gateway request ID (requestContext.requestId)
// of the event that ctx was created for. It reports false for a context
// that no handler from [NewHandler] created.
func RequestID(ctx context.Context) (string, bool) {
	requestContext, ok := core.GetAPIGatewayV2ContextFromContext(ctx)
	if !ok || requestContext.RequestID == "" {
		return "", false
	}
	return requestContext.RequestID, true
}

func serve(ctx context.Context, h http.Handler, event events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r, err := newRequest(ctx, event)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}

	w := newResponseWriter()
	if err := serveHTTP(h, w, r); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return w.response()
}

// panicError is a panic recovered from the handler.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("handler panicked: %v", e.value)
}

// serveHTTP runs h and turns a panic into a *panicError. The HTTP
// middleware is expected to recover panics first. This recover stops a
// panic that escapes it from reaching the Lambda runtime, which would
// report a function error, and API Gateway would then send a 502.
func serveHTTP(h http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()

	h.ServeHTTP(w, r)
	return nil
}

// logFailure logs one line for a failed event. It logs the IDs and the
// route pattern but not the path, the query, the headers or the body,
// because they can contain tokens.
func logFailure(ctx context.Context, logger *slog.Logger, event events.APIGatewayV2HTTPRequest, err error) {
	attrs := []any{
		slog.String("error", err.Error()),
		slog.String("request_id", event.RequestContext.RequestID),
		slog.String("route_key", event.RequestContext.RouteKey),
		slog.String("method", event.RequestContext.HTTP.Method),
	}

	var panicErr *panicError
	if errors.As(err, &panicErr) {
		attrs = append(attrs, slog.String("stack", string(panicErr.stack)))
	}
	logger.ErrorContext(ctx, "API Gateway request failed", attrs...)
}

func internalErrorResponse() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusInternalServerError,
		Headers:    map[string]string{"Content-Type": "application/problem+json"},
		Body:       internalErrorBody,
	}
}
