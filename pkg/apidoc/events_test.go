package apidoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apidoc"
	"github.com/signsecure/signsecure/pkg/creditalerts"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/notify"
)

// webhookBody returns the body a webhook delivery of e posts, in the
// shape of package webhooks: the type, the event's time in UTC and the
// data.
func webhookBody(t *testing.T, e events.Event) []byte {
	t.Helper()
	body, err := json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{e.Type, e.Timestamp.UTC(), e.Data})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// outboxEvents returns every event in the table's outbox.
func outboxEvents(t *testing.T, api *testApp) []events.Event {
	t.Helper()
	ctx := context.Background()
	table := api.env.TableName
	var out []events.Event
	var start map[string]types.AttributeValue
	for {
		page, err := api.env.Clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 &table,
			FilterExpression:          new("entity = :event"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":event": &types.AttributeValueMemberS{Value: "event"}},
			ExclusiveStartKey:         start,
			ConsistentRead:            new(true),
		})
		if err != nil {
			t.Fatalf("scan the outbox: %v", err)
		}
		for _, it := range page.Items {
			id, ok := it["id"].(*types.AttributeValueMemberS)
			if !ok {
				t.Fatalf("outbox item without an id: %v", it)
			}
			e, err := events.Get(ctx, api.app.Store, id.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		start = page.LastEvaluatedKey
	}
}

// deliverOutbox runs the credit alerts, then validates the webhook body
// of every event in the outbox against the document and delivers each
// event as in-app notifications, as the dispatcher would. It returns the
// number of events.
func (f *flow) deliverOutbox(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	alerts := creditalerts.NewHandler(f.api.app.Store, io.Discard, nil, logger)
	if _, err := alerts.Handle(ctx, lambdaevents.EventBridgeEvent{ID: "apidoc-test"}); err != nil {
		t.Fatalf("credit alerts: %v", err)
	}

	inApp := notify.NewInApp(notify.NewService(f.api.app.Store, nil))
	seen := map[string]int{}
	evs := outboxEvents(t, f.api)
	for _, e := range evs {
		seen[e.Type]++
		err := apidoc.ValidateWebhookPayload(e.Type, webhookBody(t, e))
		switch {
		case strings.HasPrefix(e.Type, "security."):
			if err == nil {
				t.Errorf("%s event %s validates as a webhook payload; security events are never delivered to webhooks", e.Type, e.ID)
			}
		case err != nil:
			t.Errorf("%s event %s: %v\ndata: %s", e.Type, e.ID, err, e.Data)
		}
		if err := inApp.Deliver(ctx, e); err != nil {
			t.Fatalf("deliver %s event %s as notifications: %v", e.Type, e.ID, err)
		}
	}
	for _, typ := range events.Types {
		if seen[typ] == 0 {
			t.Errorf("the flow raised no %s event, so its webhook payload was not validated", typ)
		}
	}
	return len(evs)
}

// testPDF returns a small but complete PDF: a header, one page and a
// cross-reference table at the offset its startxref gives.
func testPDF(text string) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 720 Td (%s) Tj ET", text)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, obj)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}
