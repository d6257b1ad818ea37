package billing

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ledongthuc/pdf"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// pdfText returns the text of every page of a PDF document.
func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("open PDF: %v", err)
	}
	text, err := r.GetPlainText()
	if err != nil {
		t.Fatalf("extract PDF text: %v", err)
	}
	b, err := io.ReadAll(text)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInvoiceShowsPurchaseFacts(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	org := f.newOrg(t, "Analytical Engines Ltd")
	buyer := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	f.clock.Advance(36 * time.Hour) // 2026-12-02
	p, err := f.svc.CreatePurchase(ctx, org, buyer, "team")
	if err != nil {
		t.Fatal(err)
	}

	inv, err := f.svc.GetInvoice(ctx, org, p.ID)
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.HasPrefix(inv.PDF, []byte("%PDF-")) {
		t.Fatalf("invoice starts with %q; want a PDF header", inv.PDF[:min(8, len(inv.PDF))])
	}
	if inv.Number != "INV-000001" {
		t.Errorf("number = %q; want INV-000001", inv.Number)
	}
	text := pdfText(t, inv.PDF)
	facts := []struct{ name, want string }{
		{"invoice number", "INV-000001"},
		{"invoice date", "2026-12-02"},
		{"purchase id", p.ID},
		{"seller name", "SignSecure Test Ltd"},
		{"seller street", "12 Quill Lane"},
		{"seller city", "Lisbon 1100-148"},
		{"seller country", "Portugal"},
		{"seller tax id", "PT999999990"},
		{"buyer name", "Ada Lovelace"},
		{"buyer email", "ada@example.com"},
		{"buyer organization", "Analytical Engines Ltd"},
		{"line item", "Team credit pack: 250 credits"},
		{"amount and currency", "100.00 USD"},
		{"total", "Total"},
		{"test marking", "Test purchase: no money was charged."},
	}
	for _, fact := range facts {
		if !strings.Contains(text, fact.want) {
			t.Errorf("invoice text lacks the %s %q; text: %q", fact.name, fact.want, text)
		}
	}
}

func TestInvoiceOfPersonalWorkspaceHasNoOrganization(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}

	inv, err := f.svc.GetInvoice(ctx, ws, p.ID)
	if err != nil {
		t.Fatal(err)
	}

	text := pdfText(t, inv.PDF)
	if strings.Contains(text, "Organization") {
		t.Errorf("personal invoice names an organization; text: %q", text)
	}
	if !strings.Contains(text, "25.00 USD") || !strings.Contains(text, "Ada Lovelace") {
		t.Errorf("invoice lacks the amount or the buyer; text: %q", text)
	}
}

func TestInvoiceServedFromStorageAfterFirstRender(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}

	first, err := f.svc.GetInvoice(ctx, ws, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	key := "invoices/" + ws + "/" + p.ID + ".pdf"
	stored, err := f.env.Clients.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.env.BucketName), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("the first download stored nothing at %s: %v", key, err)
	}
	body, err := io.ReadAll(stored.Body)
	stored.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, first.PDF) {
		t.Errorf("stored object (%d bytes) differs from the first download (%d bytes)", len(body), len(first.PDF))
	}
	if ct := aws.ToString(stored.ContentType); ct != "application/pdf" {
		t.Errorf("stored Content-Type = %q; want application/pdf", ct)
	}

	// Replace the stored document: a second download that rendered again
	// would not return these bytes.
	marker := []byte("%PDF-1.3 stored copy")
	_, err = f.env.Clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.env.BucketName), Key: aws.String(key), Body: bytes.NewReader(marker)})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.GetInvoice(ctx, ws, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.PDF, marker) {
		t.Errorf("second download has %d bytes; want the %d stored bytes, not a new rendering", len(second.PDF), len(marker))
	}
}

func TestInvoiceRenderingIsRepeatable(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	p, err := f.svc.CreatePurchase(context.Background(), ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}
	item, err := f.svc.getPurchase(context.Background(), ws, p.ID)
	if err != nil {
		t.Fatal(err)
	}

	a, err := f.svc.renderInvoice(item)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	b, err := f.svc.renderInvoice(item)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two renderings of one purchase differ; concurrent first downloads would store different documents")
	}
}

func TestInvoiceOfPendingPurchase(t *testing.T) {
	f, _ := newStripeFixture(t)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	ctx := context.Background()
	p, err := f.svc.CreatePurchase(ctx, ws, ws, "starter")
	if err != nil {
		t.Fatal(err)
	}

	_, err = f.svc.GetInvoice(ctx, ws, p.ID)

	wantCode(t, err, apperr.Conflict, "purchase_not_completed")
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{2500, "USD", "25.00 USD"},
		{5, "eur", "0.05 EUR"},
		{-1999, "GBP", "-19.99 GBP"},
		{500, "JPY", "500 JPY"},
		{1234, "KWD", "1.234 KWD"},
	}
	for _, tt := range tests {
		if got := formatMoney(tt.minor, tt.currency); got != tt.want {
			t.Errorf("formatMoney(%d, %q) = %q; want %q", tt.minor, tt.currency, got, tt.want)
		}
	}
}
