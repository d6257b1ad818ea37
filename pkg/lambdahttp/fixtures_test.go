package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// loadEvent decodes testdata/name into an event, rejecting unknown fields.
func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()

	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}

	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	var event events.APIGatewayV2HTTPRequest
	if err := decoder.Decode(&event); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
	return event
}

// invoke runs h through NewHandler and fails the test if it returns an error.
func invoke(t *testing.T, h http.Handler, event events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()

	resp, err := NewHandler(h)(context.Background(), event)
	if err != nil {
		t.Fatalf("handler returned error %v, want nil", err)
	}
	return resp
}

// capturedRequest is what a handler saw of its request.
type capturedRequest struct {
	request *http.Request
	body    []byte
}

// captureRequest serves event with a handler that records the request,
// reads its body and writes a 204.
func captureRequest(t *testing.T, event events.APIGatewayV2HTTPRequest) capturedRequest {
	t.Helper()

	var captured capturedRequest
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		captured = capturedRequest{request: r, body: body}
		w.WriteHeader(http.StatusNoContent)
	})

	resp := invoke(t, h, event)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", resp.StatusCode)
	}
	if captured.request == nil {
		t.Fatal("handler was not called")
	}
	return captured
}

// newTestLogger returns a JSON logger writing to the returned buffer.
func newTestLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

// logLines decodes each JSON log line in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var record map[string]any
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Fatalf("decode log line %q: %v", line, err)
		}
		lines = append(lines, record)
	}
	return lines
}

// requiredFields lists, by JSON object path, the fields every API Gateway
// HTTP API payload 2.0 event has.
var requiredFields = map[string][]string{
	"":                    {"version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext", "isBase64Encoded"},
	"requestContext":      {"accountId", "apiId", "domainName", "http", "requestId", "routeKey", "stage", "time", "timeEpoch"},
	"requestContext.http": {"method", "path", "protocol", "sourceIp", "userAgent"},
}

func TestFixturesRoundTrip(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no fixtures in testdata")
	}

	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			event := loadEvent(t, filepath.Base(path))

			encoded, err := json.Marshal(event)
			if err != nil {
				t.Fatalf("encode event: %v", err)
			}

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var original, reencoded map[string]any
			if err := json.Unmarshal(data, &original); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(encoded, &reencoded); err != nil {
				t.Fatal(err)
			}

			if original["version"] != "2.0" {
				t.Errorf("version = %v, want 2.0", original["version"])
			}
			checkRequiredFields(t, original)
			checkContained(t, "$", original, reencoded)
		})
	}
}

// checkRequiredFields reports each field of requiredFields missing from event.
func checkRequiredFields(t *testing.T, event map[string]any) {
	t.Helper()

	for objectPath, fields := range requiredFields {
		object := event
		if objectPath != "" {
			for _, key := range strings.Split(objectPath, ".") {
				child, ok := object[key].(map[string]any)
				if !ok {
					t.Errorf("fixture has no object %s", objectPath)
					break
				}
				object = child
			}
		}
		for _, field := range fields {
			if _, ok := object[field]; !ok {
				t.Errorf("fixture has no field %s in object %q", field, objectPath)
			}
		}
	}
}

// checkContained reports every value of want that got lacks or changes.
// Fields that only got has are fine: the events package also writes
// zero-valued fields that API Gateway leaves out.
func checkContained(t *testing.T, path string, want, got any) {
	t.Helper()

	switch want := want.(type) {
	case map[string]any:
		gotObject, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: re-encoded as %T, want object", path, got)
			return
		}
		for key, wantValue := range want {
			gotValue, ok := gotObject[key]
			if !ok {
				t.Errorf("%s.%s: lost in the round trip", path, key)
				continue
			}
			checkContained(t, path+"."+key, wantValue, gotValue)
		}
	case []any:
		gotArray, ok := got.([]any)
		if !ok || len(gotArray) != len(want) {
			t.Errorf("%s: re-encoded as %v, want %v", path, got, want)
			return
		}
		for i := range want {
			checkContained(t, path, want[i], gotArray[i])
		}
	default:
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: re-encoded as %#v, want %#v", path, got, want)
		}
	}
}
