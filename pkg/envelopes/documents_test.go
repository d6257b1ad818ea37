package envelopes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signsecure/signsecure/pkg/apperr"
)

func TestCheckPDF(t *testing.T) {
	good := testPDF("hello")
	xref := bytes.Index(good, []byte("xref\n"))
	cases := []struct {
		name    string
		content []byte
		reason  string
	}{
		{"valid", good, ""},
		{"valid with trailing newlines", append(append([]byte(nil), good...), "\r\n\r\n"...), ""},
		{"empty", nil, "empty_document"},
		{"PNG", pngMagic, "invalid_pdf"},
		{"text", []byte("hello, world"), "invalid_pdf"},
		{"header only", []byte("%PDF-1.7\n"), "invalid_pdf"},
		{"truncated", good[:len(good)-20], "invalid_pdf"},
		{"offset past end", bytes.Replace(good, []byte("startxref\n"), []byte("startxref\n9"), 1), "invalid_pdf"},
		{"offset into an object", bytes.Replace(good, []byte("startxref\n"+strconv.Itoa(xref)), []byte("startxref\n"+strconv.Itoa(xref-3)), 1), "invalid_pdf"},
		{"lowercase header", append([]byte("%pdf-1.7"), good[8:]...), "invalid_pdf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPDF(tc.content)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("checkPDF: %v; want nil", err)
				}
				return
			}
			wantCode(t, err, apperr.Invalid, tc.reason)
		})
	}
}

func TestAddDocumentStoresContentAndHash(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e, err := f.svc.Create(context.Background(), ada, desktop, CreateInput{Title: "T"})
	if err != nil {
		t.Fatal(err)
	}
	content := testPDF("contract")
	sum := sha256.Sum256(content)

	doc, err := f.svc.AddDocument(context.Background(), ada, desktop, e.ID, "Contract (final).pdf", content)
	if err != nil {
		t.Fatal(err)
	}
	if doc.SHA256 != hex.EncodeToString(sum[:]) || doc.Size != int64(len(content)) || doc.Filename != "Contract (final).pdf" || doc.ContentType != PDFContentType {
		t.Errorf("document = %+v", doc)
	}

	stored, err := f.env.Clients.S3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: &f.env.BucketName,
		Key:    new("envelopes/" + e.ID + "/documents/" + doc.ID + ".pdf"),
	})
	if err != nil {
		t.Fatalf("stored object: %v", err)
	}
	body, _ := io.ReadAll(stored.Body)
	stored.Body.Close()
	if !bytes.Equal(body, content) {
		t.Error("stored object differs from the upload")
	}

	got, rc, err := f.svc.OpenDocument(context.Background(), ada, e.ID, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	downloaded, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(downloaded, content) || got.ID != doc.ID {
		t.Error("download differs from the upload")
	}
	if env := f.get(t, ada, e.ID); env.DocumentCount != 1 || len(env.Documents) != 1 {
		t.Errorf("envelope has document_count %d and %d documents; want 1 and 1", env.DocumentCount, len(env.Documents))
	}

	_, _, err = f.svc.OpenDocument(context.Background(), ada, e.ID, "doc_missing")
	wantCode(t, err, apperr.NotFound, "document_not_found")
}

func TestAddDocumentRejectsBadInput(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e, err := f.svc.Create(context.Background(), ada, desktop, CreateInput{Title: "T"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, filename string
		content        []byte
		code           apperr.Code
		reason         string
	}{
		{"not a PDF", "a.pdf", testPNG(t, 4, 4), apperr.Invalid, "invalid_pdf"},
		{"empty", "a.pdf", nil, apperr.Invalid, "empty_document"},
		{"too large", "a.pdf", append(testPDF("x"), make([]byte, MaxDocumentBytes)...), apperr.TooLarge, "document_too_large"},
		{"no filename", "", testPDF("x"), apperr.Invalid, "invalid_filename"},
		{"path in filename", "../etc/passwd.pdf", testPDF("x"), apperr.Invalid, "invalid_filename"},
		{"newline in filename", "a\n.pdf", testPDF("x"), apperr.Invalid, "invalid_filename"},
	}
	items, objects := f.countItems(t), f.countObjects(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.AddDocument(context.Background(), ada, desktop, e.ID, tc.filename, tc.content)
			wantCode(t, err, tc.code, tc.reason)
		})
	}
	if got := f.countItems(t); got != items {
		t.Errorf("items = %d; want %d", got, items)
	}
	if got := f.countObjects(t); got != objects {
		t.Errorf("objects = %d; want %d", got, objects)
	}
}

func TestAddDocumentLimitAndDraftOnly(t *testing.T) {
	f := newFixture(t, 10)
	ada := f.personal(t)
	e, err := f.svc.Create(context.Background(), ada, desktop, CreateInput{Title: "T", Recipients: []RecipientInput{signer("alice", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxDocuments {
		if _, err := f.svc.AddDocument(context.Background(), ada, desktop, e.ID, "d.pdf", testPDF(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	objects := f.countObjects(t)
	_, err = f.svc.AddDocument(context.Background(), ada, desktop, e.ID, "d.pdf", testPDF("over"))
	wantCode(t, err, apperr.Conflict, "too_many_documents")
	if got := f.countObjects(t); got != objects {
		t.Errorf("objects after refused upload = %d; want %d", got, objects)
	}

	docs, err := f.svc.ListDocuments(context.Background(), ada, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteDocument(context.Background(), ada, desktop, e.ID, docs[0].ID); err != nil {
		t.Fatalf("delete document: %v", err)
	}
	if got := f.countObjects(t); got != objects-1 {
		t.Errorf("objects after delete = %d; want %d", got, objects-1)
	}
	if env := f.get(t, ada, e.ID); env.DocumentCount != MaxDocuments-1 || len(env.Documents) != MaxDocuments-1 {
		t.Errorf("after delete: document_count %d, %d documents; want %d", env.DocumentCount, len(env.Documents), MaxDocuments-1)
	}

	if _, err := f.svc.Send(context.Background(), ada, desktop, e.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddDocument(context.Background(), ada, desktop, e.ID, "late.pdf", testPDF("late"))
	wantCode(t, err, apperr.Conflict, "envelope_not_draft")
	if got := f.countObjects(t); got != objects-1 {
		t.Errorf("objects after upload to a sent envelope = %d; want %d", got, objects-1)
	}
}
