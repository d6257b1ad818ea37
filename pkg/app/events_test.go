package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/lambdahttp"
)

// TestSampleEventsReachHandlers feeds each API Gateway sample event under
// infra/events, the ones `sam local invoke -e` uses, through the Lambda
// adapter into the route table.
func TestSampleEventsReachHandlers(t *testing.T) {
	api := newTestAPIApp(t)
	lambdaHandler := lambdahttp.NewHandler(api)

	cases := []struct {
		file   string
		status int
	}{
		{"auth-signup.json", 201},
		{"me-get.json", 401}, // the sample's token is a placeholder
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(repoRoot(t), "infra", "events", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("decode %s: %v", tc.file, err)
			}
			res, err := lambdaHandler(context.Background(), ev)
			if err != nil {
				t.Fatalf("handler returned an error: %v", err)
			}
			if res.StatusCode != tc.status {
				t.Errorf("status = %d; want %d (body %s)", res.StatusCode, tc.status, res.Body)
			}
			if res.Headers["X-Request-Id"] == "" {
				t.Errorf("response has no X-Request-Id header: %v", res.Headers)
			}
		})
	}
}
