package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
)

// RequestIDFunc returns an upstream request id for the request, such as the
// API Gateway request id, and whether there is one.
type RequestIDFunc func(ctx context.Context) (string, bool)

// Wrap returns h with the middleware every route runs behind, outermost
// first: a request id (from upstream, or a new one) on the context and in
// the X-Request-Id response header, a request-scoped logger, one JSON log
// line per request, and recovery of panics into a 500 problem.
func Wrap(h http.Handler, logger *slog.Logger, upstream RequestIDFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()

		id := ""
		if upstream != nil {
			id, _ = upstream(r.Context())
		}
		if id == "" {
			id = ids.New(ids.Request)
		}
		reqLogger := logger.With("request_id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = WithLogger(ctx, reqLogger)
		r = r.WithContext(ctx)

		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey, info))

		rec := &statusRecorder{ResponseWriter: w}
		rec.Header().Set("X-Request-Id", id)
		defer func() {
			if p := recover(); p != nil {
				reqLogger.Error("panic while serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wroteHeader {
					WriteError(rec, r, &apperr.Error{Code: apperr.Internal, Message: fmt.Sprint(p)})
				}
			}
			// The route pattern is logged, not the path, because some
			// paths carry secrets (signing tokens).
			route := info.pattern
			if route == "" {
				route = "(no route)"
			}
			reqLogger.Info("request",
				"method", r.Method,
				"route", route,
				"status", rec.status(),
				"bytes", rec.bytes,
				"duration_ms", float64(time.Since(start).Microseconds())/1000,
			)
		}()

		h.ServeHTTP(rec, r)
	})
}

// requestInfo carries what the mux learns about a request back to the
// middleware around it.
type requestInfo struct {
	pattern string
}

// statusRecorder records the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	bytes       int
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code = code
		s.wroteHeader = true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) status() int {
	if !s.wroteHeader {
		return http.StatusOK
	}
	return s.code
}

// Unwrap returns the underlying writer for http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
