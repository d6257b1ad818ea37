package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
)

type contextKey int

const (
	requestIDKey contextKey = iota
	loggerKey
	requestInfoKey
)

// RequestID returns the id of the request being served, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Logger returns the request's logger, which adds the request id to every
// line, or the default logger outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// WithLogger returns a context that carries the logger.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// ClientIP returns the address of the client: the host part of
// r.RemoteAddr, which the Lambda adapter sets from API Gateway's source IP
// and the local runner from the TCP peer. X-Forwarded-For is not trusted,
// because a client can send any value in it.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
