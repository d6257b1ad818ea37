package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"codeberg.org/go-pdf/fpdf"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/signsecure/signsecure/pkg/apperr"
)

// ObjectStore is the part of *s3.Client that stores invoices.
type ObjectStore interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Invoice is a rendered invoice document.
type Invoice struct {
	// Number is the invoice number, such as "INV-000042".
	Number string
	// PDF is the document.
	PDF []byte
}

// maxInvoiceBytes bounds the size of a stored invoice that is read back.
// A rendered invoice is a few kilobytes.
const maxInvoiceBytes = 10 << 20

// GetInvoice returns the PDF invoice of a completed purchase of the
// workspace. The first call renders it and stores it in the documents
// bucket, and later calls return the stored document.
//
// Errors: NotFound (purchase_not_found) for an id that is not a purchase of
// this workspace; Conflict (purchase_not_completed) while the purchase is
// pending.
func (s *Service) GetInvoice(ctx context.Context, workspaceID, purchaseID string) (Invoice, error) {
	p, err := s.getPurchase(ctx, workspaceID, purchaseID)
	if err != nil {
		return Invoice{}, err
	}
	if p.Status != StatusCompleted {
		return Invoice{}, &apperr.Error{Code: apperr.Conflict, Reason: "purchase_not_completed",
			Message: fmt.Sprintf("Purchase %s is %s; its invoice is issued when the payment completes.", p.ID, p.Status)}
	}

	key := invoiceObjectKey(p)
	doc, err := s.readInvoice(ctx, key)
	if err == nil {
		return Invoice{Number: p.InvoiceNumber, PDF: doc}, nil
	}
	if !isMissingObject(err) {
		return Invoice{}, fmt.Errorf("read invoice of purchase %s: %w", p.ID, err)
	}

	doc, err = s.renderInvoice(p)
	if err != nil {
		return Invoice{}, fmt.Errorf("render invoice of purchase %s: %w", p.ID, err)
	}
	// Rendering depends only on the stored purchase and the seller, so two
	// first downloads at once store the same document.
	_, err = s.documents.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(doc),
		ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		return Invoice{}, fmt.Errorf("store invoice of purchase %s: %w", p.ID, err)
	}
	s.logger.InfoContext(ctx, "invoice rendered", "purchase_id", p.ID, "invoice_number", p.InvoiceNumber, "bytes", len(doc))
	return Invoice{Number: p.InvoiceNumber, PDF: doc}, nil
}

// invoiceObjectKey returns the S3 key of a purchase's invoice.
func invoiceObjectKey(p purchaseItem) string {
	return fmt.Sprintf("invoices/%s/%s.pdf", p.WorkspaceID, p.ID)
}

func (s *Service) readInvoice(ctx context.Context, key string) ([]byte, error) {
	out, err := s.documents.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(out.Body, maxInvoiceBytes+1))
	if err != nil {
		return nil, err
	}
	if len(doc) > maxInvoiceBytes {
		return nil, fmt.Errorf("stored invoice %s is larger than %d bytes", key, maxInvoiceBytes)
	}
	return doc, nil
}

// isMissingObject reports whether err means that the object does not
// exist.
func isMissingObject(err error) bool {
	var noKey *s3types.NoSuchKey
	if errors.As(err, &noKey) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound")
}

// renderInvoice draws the invoice of a completed purchase on one A4 page.
// It fixes the document dates to the completion time, so the same purchase
// always renders to the same bytes.
func (s *Service) renderInvoice(p purchaseItem) ([]byte, error) {
	date := invoiceDate(p)
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(date)
	pdf.SetModificationDate(date)
	// Sorting the catalogue removes the map order from the output.
	pdf.SetCatalogSort(true)
	pdf.SetTitle("Invoice "+p.InvoiceNumber, true)
	pdf.SetAuthor(s.cfg.Seller.Name, true)
	pdf.SetMargins(20, 20, 20)
	pdf.SetAutoPageBreak(true, 20)
	pdf.AddPage()
	// The core fonts use Windows-1252, so UTF-8 text is translated into it.
	// NOTE: characters outside Windows-1252, such as CJK names, print as
	// '.', because no Unicode font is embedded.
	tr := pdf.UnicodeTranslatorFromDescriptor("")

	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(0, 10, "Invoice", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 6, "Invoice number: "+p.InvoiceNumber, "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 6, "Invoice date: "+date.Format("2006-01-02"), "", 1, "L", false, 0, "")
	pdf.CellFormat(0, 6, "Purchase: "+p.ID, "", 1, "L", false, 0, "")
	pdf.Ln(6)

	top := pdf.GetY()
	s.drawParty(pdf, tr, 20, top, "Seller", s.sellerLines())
	s.drawParty(pdf, tr, 110, top, "Bill to", buyerLines(p))
	pdf.SetXY(20, max(pdf.GetY(), top+40))
	pdf.Ln(6)

	drawLineItems(pdf, tr, p)

	pdf.Ln(8)
	pdf.SetFont("Helvetica", "", 9)
	paidThrough := "Stripe"
	if p.Provider == ProviderTest {
		paidThrough = "the local test provider"
	}
	pdf.MultiCell(0, 5, tr(fmt.Sprintf("Paid on %s through %s, reference %s.", date.Format("2006-01-02"), paidThrough, p.ProviderReference)), "", "L", false)
	if p.Test {
		pdf.MultiCell(0, 5, "Test purchase: no money was charged.", "", "L", false)
	}

	if err := pdf.Error(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Service) sellerLines() []string {
	lines := append([]string{s.cfg.Seller.Name}, s.cfg.Seller.Address...)
	if s.cfg.Seller.TaxID != "" {
		lines = append(lines, "Tax ID: "+s.cfg.Seller.TaxID)
	}
	return lines
}

func buyerLines(p purchaseItem) []string {
	var lines []string
	if p.Buyer.OrgName != "" {
		lines = append(lines, "Organization: "+p.Buyer.OrgName)
	}
	lines = append(lines, p.Buyer.Name, p.Buyer.Email, "Workspace: "+p.WorkspaceID)
	return lines
}

// drawParty draws a titled block of lines at x, y, 80 mm wide.
func (s *Service) drawParty(pdf *fpdf.Fpdf, tr func(string) string, x, y float64, title string, lines []string) {
	pdf.SetXY(x, y)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.CellFormat(80, 6, title, "", 2, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	for _, line := range lines {
		pdf.CellFormat(80, 5, tr(line), "", 2, "L", false, 0, "")
	}
}

// drawLineItems draws the table of the purchase's single line and its
// total.
func drawLineItems(pdf *fpdf.Fpdf, tr func(string) string, p purchaseItem) {
	widths := []float64{90, 20, 30, 30}
	pdf.SetFont("Helvetica", "B", 10)
	pdf.SetFillColor(235, 235, 235)
	for i, head := range []string{"Description", "Quantity", "Unit price", "Amount"} {
		align := "R"
		if i == 0 {
			align = "L"
		}
		pdf.CellFormat(widths[i], 8, head, "1", 0, align, true, 0, "")
	}
	pdf.Ln(-1)

	amount := formatMoney(p.Amount, p.Currency)
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(widths[0], 8, tr(lineItemDescription(p.PackName, p.Credits)), "1", 0, "L", false, 0, "")
	pdf.CellFormat(widths[1], 8, "1", "1", 0, "R", false, 0, "")
	pdf.CellFormat(widths[2], 8, amount, "1", 0, "R", false, 0, "")
	pdf.CellFormat(widths[3], 8, amount, "1", 1, "R", false, 0, "")

	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(widths[0]+widths[1]+widths[2], 8, "Total", "1", 0, "R", false, 0, "")
	pdf.CellFormat(widths[3], 8, amount, "1", 1, "R", false, 0, "")
}

// zeroDecimalCurrencies are the currencies whose amounts Stripe's API
// takes in whole units: 500 JPY is 500 yen.
var zeroDecimalCurrencies = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// threeDecimalCurrencies have a minor unit of a thousandth in ISO 4217.
var threeDecimalCurrencies = map[string]bool{
	"BHD": true, "IQD": true, "JOD": true, "KWD": true, "LYD": true, "OMR": true, "TND": true,
}

// formatMoney formats an amount in minor units, such as 2500 USD as
// "25.00 USD". Currencies that are neither zero- nor three-decimal are
// taken to have two decimals.
func formatMoney(minor int64, currency string) string {
	currency = strings.ToUpper(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	switch {
	case zeroDecimalCurrencies[currency]:
		return fmt.Sprintf("%s%d %s", sign, minor, currency)
	case threeDecimalCurrencies[currency]:
		return fmt.Sprintf("%s%d.%03d %s", sign, minor/1000, minor%1000, currency)
	default:
		return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency)
	}
}
