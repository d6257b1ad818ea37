package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// countingDynamoDB returns a client for the test table that counts every
// DynamoDB API call it makes.
func countingDynamoDB(tb testing.TB, base *dynamodb.Client, calls *atomic.Int64) *dynamodb.Client {
	tb.Helper()
	return dynamodb.New(base.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					calls.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
}

// benchHandler returns the full route table over a fresh table, with a
// call counter on its DynamoDB client.
func benchHandler(b *testing.B) (http.Handler, *atomic.Int64) {
	b.Helper()
	env := localstacktest.New(b)
	calls := &atomic.Int64{}
	cfg := testConfig(env)
	a, err := New(cfg, Deps{DynamoDB: countingDynamoDB(b, env.Clients.DynamoDB, calls), S3: env.Clients.S3, SQS: env.Clients.SQS, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	h, err := a.Handler(a.Routes(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return h, calls
}

func serve(b *testing.B, h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "203.0.113.10:51000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// BenchmarkGetMe measures GET /v1/me with a session token through the
// whole handler stack against DynamoDB Local: session lookup, user read and
// response. It reports DynamoDB calls per request.
func BenchmarkGetMe(b *testing.B) {
	h, calls := benchHandler(b)
	rec := serve(b, h, "POST", "/v1/auth/signup", "", `{"name":"Bench","email":"bench@example.com","password":"a long enough password"}`)
	if rec.Code != http.StatusCreated {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	var signup struct {
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &signup); err != nil {
		b.Fatal(err)
	}

	calls.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if rec := serve(b, h, "GET", "/v1/me", signup.Session.Token, ""); rec.Code != http.StatusOK {
			b.Fatalf("GET /v1/me: %d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(calls.Load())/float64(b.N), "dynamodb-calls/op")
}

// BenchmarkAPIKeyRequest measures GET /v1/workspace with an API key: the
// key is authenticated and counted against its rate limit in one
// conditional UpdateItem, and the handler needs no further read. It
// reports DynamoDB calls per request; at steady state the target is 1
// (2 on the first request of each new minute).
func BenchmarkAPIKeyRequest(b *testing.B) {
	h, calls := benchHandler(b)
	rec := serve(b, h, "POST", "/v1/auth/signup", "", `{"name":"Bench","email":"bench@example.com","password":"a long enough password"}`)
	var signup struct {
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &signup); err != nil {
		b.Fatal(err)
	}
	rec = serve(b, h, "POST", "/v1/api-keys", signup.Session.Token, `{"name":"bench","rate_limit_per_minute":10000}`)
	var created struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.Key == "" {
		b.Fatalf("create key: %d %s", rec.Code, rec.Body)
	}
	serve(b, h, "GET", "/v1/workspace", created.Key, "") // opens the rate-limit window

	calls.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if rec := serve(b, h, "GET", "/v1/workspace", created.Key, ""); rec.Code != http.StatusOK {
			b.Fatalf("GET /v1/workspace: %d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(calls.Load())/float64(b.N), "dynamodb-calls/op")
}
