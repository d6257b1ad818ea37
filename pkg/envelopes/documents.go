package envelopes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// PDFContentType is the media type of every document.
const PDFContentType = "application/pdf"

// AddDocument stores a PDF in a draft. The content goes to S3 first, and
// the document item is written after it in a transaction conditioned on
// the draft, so an item never points at a missing object. When the
// transaction fails, the object is deleted again.
//
// Errors: Invalid (invalid_filename, empty_document, invalid_pdf);
// TooLarge (document_too_large); NotFound; Forbidden
// (not_envelope_sender); Conflict when the envelope is no longer a draft
// or has MaxDocuments documents (too_many_documents).
func (s *Service) AddDocument(ctx context.Context, caller *authn.Caller, client Client, envelopeID, filename string, content []byte) (Document, error) {
	if err := checkFilename(filename); err != nil {
		return Document{}, err
	}
	if len(content) > MaxDocumentBytes {
		return Document{}, documentTooLarge()
	}
	if err := checkPDF(content); err != nil {
		return Document{}, err
	}

	sum := sha256.Sum256(content)
	now := s.now().UTC()
	doc := documentItem{
		ID:          ids.NewAt(ids.Document, now),
		EnvelopeID:  envelopeID,
		Filename:    filename,
		ContentType: PDFContentType,
		Size:        int64(len(content)),
		SHA256:      hex.EncodeToString(sum[:]),
		CreatedAt:   store.FormatTime(now),
	}
	doc.Item = itemAt(store.DocumentKey(envelopeID, doc.ID), entityDocument)
	doc.ObjectKey = fmt.Sprintf("envelopes/%s/documents/%s.pdf", envelopeID, doc.ID)

	uploaded := false
	err := s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		if st.envelope.Status != StatusDraft {
			return stateConflict(st.envelope, "changed")
		}
		if st.envelope.DocumentCount >= MaxDocuments {
			return &apperr.Error{Code: apperr.Conflict, Reason: "too_many_documents",
				Message: fmt.Sprintf("Envelope %s already has %d documents, the most an envelope can have; delete one first.", envelopeID, st.envelope.DocumentCount)}
		}

		if !uploaded {
			if err := s.putDocumentObject(ctx, doc, content, sum[:]); err != nil {
				return err
			}
			uploaded = true
		}

		update := s.envelopeUpdate(st.envelope, "SET document_count = document_count + :one, updated_at = :now", nil,
			map[string]types.AttributeValue{":now": str(store.FormatTime(now))})
		put, err := s.store.PutNew(doc)
		if err != nil {
			return fmt.Errorf("add document to envelope %s: %w", envelopeID, err)
		}
		audit, err := s.auditPut(envelopeID, ActionDocumentAdded, callerActor(caller, client),
			map[string]string{"document_id": doc.ID, "filename": filename, "sha256": doc.SHA256}, now)
		if err != nil {
			return err
		}

		err = s.store.Transact(ctx, update, put, audit)
		if store.FailedAt(err, 0) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("add document %s to envelope %s: %w", doc.ID, envelopeID, err)
		}
		return nil
	})
	if err != nil {
		if uploaded {
			s.deleteObject(ctx, doc.ObjectKey)
		}
		return Document{}, err
	}
	return doc.document(), nil
}

func (s *Service) putDocumentObject(ctx context.Context, doc documentItem, content, sum []byte) error {
	_, err := s.objects.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            &doc.ObjectKey,
		Body:           bytes.NewReader(content),
		ContentLength:  new(int64(len(content))),
		ContentType:    new(PDFContentType),
		ChecksumSHA256: new(base64.StdEncoding.EncodeToString(sum)),
		Metadata:       map[string]string{"sha256": doc.SHA256, "envelope-id": doc.EnvelopeID},
	})
	if err != nil {
		return fmt.Errorf("store document %s of envelope %s: %w", doc.ID, doc.EnvelopeID, err)
	}
	return nil
}

// ListDocuments returns the documents of an envelope of the caller's
// workspace, in upload order.
//
// Errors: Invalid (invalid_id); NotFound.
func (s *Service) ListDocuments(ctx context.Context, caller *authn.Caller, envelopeID string) ([]Document, error) {
	st, err := s.loadFor(ctx, caller, envelopeID)
	if err != nil {
		return nil, err
	}
	return st.full().Documents, nil
}

// OpenDocument returns a document of an envelope of the caller's workspace
// and its content, which the caller must close.
//
// Errors: Invalid (invalid_id); NotFound (envelope_not_found,
// document_not_found).
func (s *Service) OpenDocument(ctx context.Context, caller *authn.Caller, envelopeID, documentID string) (Document, io.ReadCloser, error) {
	st, err := s.loadFor(ctx, caller, envelopeID)
	if err != nil {
		return Document{}, nil, err
	}
	return s.openDocument(ctx, st, documentID)
}

func (s *Service) openDocument(ctx context.Context, st state, documentID string) (Document, io.ReadCloser, error) {
	doc, ok := st.document(documentID)
	if !ok {
		return Document{}, nil, documentNotFound(st.envelope.ID, documentID)
	}
	body, err := s.openObject(ctx, doc.ObjectKey)
	if err != nil {
		return Document{}, nil, fmt.Errorf("open document %s of envelope %s: %w", documentID, st.envelope.ID, err)
	}
	return doc.document(), body, nil
}

// DeleteDocument removes a document from a draft.
//
// Errors: Invalid (invalid_id); NotFound (envelope_not_found,
// document_not_found); Forbidden (not_envelope_sender); Conflict when the
// envelope is no longer a draft.
func (s *Service) DeleteDocument(ctx context.Context, caller *authn.Caller, client Client, envelopeID, documentID string) error {
	var removed documentItem
	err := s.retry(ctx, envelopeID, func() error {
		st, err := s.loadToChange(ctx, caller, envelopeID)
		if err != nil {
			return err
		}
		doc, ok := st.document(documentID)
		if !ok {
			return documentNotFound(envelopeID, documentID)
		}
		if st.envelope.Status != StatusDraft {
			return stateConflict(st.envelope, "changed")
		}

		now := s.now().UTC()
		update := s.envelopeUpdate(st.envelope, "SET document_count = document_count - :one, updated_at = :now", nil,
			map[string]types.AttributeValue{":now": str(store.FormatTime(now))})
		del := s.store.DeleteIf(store.DocumentKey(envelopeID, documentID), "", nil)
		audit, err := s.auditPut(envelopeID, ActionDocumentDeleted, callerActor(caller, client),
			map[string]string{"document_id": doc.ID, "filename": doc.Filename, "sha256": doc.SHA256}, now)
		if err != nil {
			return err
		}

		err = s.store.Transact(ctx, update, del, audit)
		if store.FailedAt(err, 0) {
			return errChanged
		}
		if err != nil {
			return fmt.Errorf("delete document %s of envelope %s: %w", documentID, envelopeID, err)
		}
		removed = doc
		return nil
	})
	if err != nil {
		return err
	}
	s.deleteObject(ctx, removed.ObjectKey)
	return nil
}

func documentNotFound(envelopeID, documentID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "document_not_found",
		Message: fmt.Sprintf("Document %q was not found in envelope %s.", truncate(documentID, 40), envelopeID)}
}

func documentTooLarge() error {
	return &apperr.Error{Code: apperr.TooLarge, Reason: "document_too_large",
		Message: fmt.Sprintf("The document is larger than the limit of %d bytes (%d MiB).", MaxDocumentBytes, MaxDocumentBytes>>20)}
}

// pdfTailBytes is how far from the end of a file the %%EOF marker and its
// startxref are looked for. ISO 32000 puts them on the last lines, and
// readers commonly accept up to 1024 bytes of trailing garbage.
const pdfTailBytes = 1024

var (
	pdfHeader = regexp.MustCompile(`^%PDF-[12]\.[0-9]`)
	// pdfStartXRef matches the last "startxref <offset> %%EOF" of a file.
	pdfStartXRef = regexp.MustCompile(`startxref\s+([0-9]{1,10})\s+%%EOF`)
	// pdfXRefStart matches what a startxref offset points at: a
	// cross-reference table ("xref") or a cross-reference stream object
	// ("12 0 obj").
	pdfXRefStart = regexp.MustCompile(`^\s*(xref|[0-9]+\s+[0-9]+\s+obj)`)
)

// checkPDF checks that content looks like a complete PDF: a %PDF-x.y header,
// and near the end a startxref whose offset points at a cross-reference
// table or stream, followed by %%EOF. It catches files of another type and
// truncated uploads; it does not parse the document.
//
// Errors: Invalid (empty_document, invalid_pdf).
func checkPDF(content []byte) error {
	if len(content) == 0 {
		return apperr.New(apperr.Invalid, "The request body is empty; send the PDF document as the body.").WithReason("empty_document")
	}
	if !pdfHeader.Match(content) {
		return invalidPDF("it does not start with a %PDF-x.y header")
	}

	tail := content[max(0, len(content)-pdfTailBytes):]
	matches := pdfStartXRef.FindAllSubmatchIndex(tail, -1)
	if len(matches) == 0 {
		return invalidPDF("its end has no startxref offset followed by %%EOF, so it is probably truncated")
	}
	last := matches[len(matches)-1]
	offset, err := strconv.ParseInt(string(tail[last[2]:last[3]]), 10, 64)
	if err != nil || offset <= 0 || offset >= int64(len(content)) {
		return invalidPDF("its startxref offset is outside the file")
	}
	if !pdfXRefStart.Match(content[offset:min(int64(len(content)), offset+64)]) {
		return invalidPDF("its startxref offset does not point at a cross-reference table or stream")
	}
	return nil
}

func invalidPDF(problem string) error {
	return apperr.InvalidField("body", "invalid_pdf", "The document is not a valid PDF: %s.", problem)
}
