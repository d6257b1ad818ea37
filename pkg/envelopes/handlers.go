package envelopes

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the envelope and signing routes.
type Handlers struct {
	Service *Service
}

// Routes returns the envelope routes. session wraps a handler with session
// authentication and workspace resolution (X-Workspace-Id); any wraps it
// with session-or-API-key authentication. The sender routes take any; the
// signing routes take no authentication, because the signing token in the
// path is the credential.
//
// NOTE: the signing routes carry the token in the URL path, and the request
// log of httpapi.Wrap records r.URL.Path, so tokens reach the request logs
// until that log records the route pattern instead.
func Routes(h Handlers, session, any func(http.Handler) http.Handler) []httpapi.Route {
	sender := func(name, method, path string, f httpapi.HandlerFunc) httpapi.Route {
		return httpapi.Route{Name: name, Method: method, Path: path, Handler: any(f)}
	}
	signer := func(name, method, path string, f httpapi.HandlerFunc) httpapi.Route {
		return httpapi.Route{Name: name, Method: method, Path: path, Handler: signingHeaders(f)}
	}

	linksRoute := sender("envelopes-signing-links", http.MethodGet, "/v1/envelopes/{id}/signing-links", h.SigningLinks)
	linksRoute.WritesTable = true // each read is recorded in the audit trail
	viewRoute := signer("signing-get", http.MethodGet, "/v1/signing/{token}", h.View)
	viewRoute.WritesTable = true // the first view is recorded in the audit trail

	return []httpapi.Route{
		sender("envelopes-create", http.MethodPost, "/v1/envelopes", h.Create),
		sender("envelopes-list", http.MethodGet, "/v1/envelopes", h.List),
		sender("envelopes-get", http.MethodGet, "/v1/envelopes/{id}", h.Get),
		sender("envelopes-update", http.MethodPatch, "/v1/envelopes/{id}", h.Update),
		sender("envelopes-delete", http.MethodDelete, "/v1/envelopes/{id}", h.Delete),
		sender("envelopes-send", http.MethodPost, "/v1/envelopes/{id}/send", h.Send),
		sender("envelopes-void", http.MethodPost, "/v1/envelopes/{id}/void", h.Void),
		sender("envelopes-audit-list", http.MethodGet, "/v1/envelopes/{id}/audit", h.ListAudit),
		linksRoute,
		sender("envelopes-documents-create", http.MethodPost, "/v1/envelopes/{id}/documents", h.AddDocument),
		sender("envelopes-documents-list", http.MethodGet, "/v1/envelopes/{id}/documents", h.ListDocuments),
		sender("envelopes-documents-get", http.MethodGet, "/v1/envelopes/{id}/documents/{document_id}", h.GetDocument),
		sender("envelopes-documents-delete", http.MethodDelete, "/v1/envelopes/{id}/documents/{document_id}", h.DeleteDocument),
		viewRoute,
		signer("signing-documents-get", http.MethodGet, "/v1/signing/{token}/documents/{document_id}", h.GetSigningDocument),
		signer("signing-sign", http.MethodPost, "/v1/signing/{token}/sign", h.Sign),
		signer("signing-reject", http.MethodPost, "/v1/signing/{token}/reject", h.Reject),
	}
}

// signingHeaders keeps the browser from sending the signing page's URL,
// which holds the token, to other sites in the Referer header, and keeps
// search engines from indexing it.
func signingHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Robots-Tag", "noindex, nofollow")
		next.ServeHTTP(w, r)
	})
}

func clientOf(r *http.Request) Client {
	return Client{IP: httpapi.ClientIP(r), UserAgent: r.UserAgent()}
}

// Create serves POST /v1/envelopes.
func (h Handlers) Create(w http.ResponseWriter, r *http.Request) error {
	var in CreateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := h.Service.Create(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/envelopes/"+e.ID)
	httpapi.WriteJSON(w, http.StatusCreated, e)
	return nil
}

// List serves GET /v1/envelopes, newest first, with an optional status
// filter.
func (h Handlers) List(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	list, next, err := h.Service.List(r.Context(), authn.MustFromContext(r.Context()), r.URL.Query().Get("status"), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Envelope]{Data: list, NextCursor: next})
	return nil
}

// Get serves GET /v1/envelopes/{id}.
func (h Handlers) Get(w http.ResponseWriter, r *http.Request) error {
	e, err := h.Service.Get(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, e)
	return nil
}

// Update serves PATCH /v1/envelopes/{id}.
func (h Handlers) Update(w http.ResponseWriter, r *http.Request) error {
	var in UpdateInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := h.Service.Update(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, e)
	return nil
}

// Delete serves DELETE /v1/envelopes/{id}.
func (h Handlers) Delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.Service.Delete(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// Send serves POST /v1/envelopes/{id}/send. The request body is ignored.
func (h Handlers) Send(w http.ResponseWriter, r *http.Request) error {
	e, err := h.Service.Send(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, e)
	return nil
}

// Void serves POST /v1/envelopes/{id}/void.
func (h Handlers) Void(w http.ResponseWriter, r *http.Request) error {
	var in VoidInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	e, err := h.Service.Void(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, e)
	return nil
}

// ListAudit serves GET /v1/envelopes/{id}/audit, oldest first.
func (h Handlers) ListAudit(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	entries, next, err := h.Service.ListAudit(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[AuditEntry]{Data: entries, NextCursor: next})
	return nil
}

// SigningLinks serves GET /v1/envelopes/{id}/signing-links, the only
// response that carries signing tokens.
func (h Handlers) SigningLinks(w http.ResponseWriter, r *http.Request) error {
	links, err := h.Service.SigningLinks(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[SigningLinkInfo]{Data: links})
	return nil
}

// AddDocument serves POST /v1/envelopes/{id}/documents?filename=NAME. The
// body is the PDF itself, sent with Content-Type application/pdf, of at
// most MaxDocumentBytes.
func (h Handlers) AddDocument(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if media, _, err := mime.ParseMediaType(ct); err != nil || media != PDFContentType {
		return &apperr.Error{Code: apperr.Invalid, Reason: "unsupported_content_type", Field: "Content-Type",
			Message: fmt.Sprintf("Content-Type %q is not supported; send the PDF as the body with Content-Type %s.", truncate(ct, 80), PDFContentType)}
	}
	filename := r.URL.Query().Get("filename")
	if err := checkFilename(filename); err != nil {
		return err
	}

	content, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDocumentBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return documentTooLarge()
	}
	if err != nil {
		return apperr.New(apperr.Invalid, "The request body could not be read: %v.", err).WithReason("unreadable_body")
	}

	doc, err := h.Service.AddDocument(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"), filename, content)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/envelopes/"+r.PathValue("id")+"/documents/"+doc.ID)
	httpapi.WriteJSON(w, http.StatusCreated, doc)
	return nil
}

// ListDocuments serves GET /v1/envelopes/{id}/documents.
func (h Handlers) ListDocuments(w http.ResponseWriter, r *http.Request) error {
	docs, err := h.Service.ListDocuments(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Document]{Data: docs})
	return nil
}

// GetDocument serves GET /v1/envelopes/{id}/documents/{document_id}: the
// PDF itself.
func (h Handlers) GetDocument(w http.ResponseWriter, r *http.Request) error {
	doc, body, err := h.Service.OpenDocument(r.Context(), authn.MustFromContext(r.Context()), r.PathValue("id"), r.PathValue("document_id"))
	if err != nil {
		return err
	}
	writeDocument(w, r, doc, body)
	return nil
}

// DeleteDocument serves DELETE /v1/envelopes/{id}/documents/{document_id}.
func (h Handlers) DeleteDocument(w http.ResponseWriter, r *http.Request) error {
	err := h.Service.DeleteDocument(r.Context(), authn.MustFromContext(r.Context()), clientOf(r), r.PathValue("id"), r.PathValue("document_id"))
	if err != nil {
		return err
	}
	httpapi.NoContent(w)
	return nil
}

// writeDocument sends a PDF as an attachment and closes body. Once the
// status is sent an error can only be logged.
func writeDocument(w http.ResponseWriter, r *http.Request, doc Document, body io.ReadCloser) {
	defer body.Close()
	h := w.Header()
	h.Set("Content-Type", PDFContentType)
	h.Set("Content-Length", strconv.FormatInt(doc.Size, 10))
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": doc.Filename})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Content-SHA256", doc.SHA256)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, body); err != nil {
		httpapi.Logger(r.Context()).Error("send document", "document_id", doc.ID, "error", err.Error())
	}
}

// View serves GET /v1/signing/{token}.
func (h Handlers) View(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Service.View(r.Context(), r.PathValue("token"), clientOf(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

// GetSigningDocument serves GET /v1/signing/{token}/documents/{document_id}.
func (h Handlers) GetSigningDocument(w http.ResponseWriter, r *http.Request) error {
	doc, body, err := h.Service.OpenSigningDocument(r.Context(), r.PathValue("token"), r.PathValue("document_id"))
	if err != nil {
		return err
	}
	writeDocument(w, r, doc, body)
	return nil
}

// Sign serves POST /v1/signing/{token}/sign.
func (h Handlers) Sign(w http.ResponseWriter, r *http.Request) error {
	var in SignInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	v, err := h.Service.Sign(r.Context(), r.PathValue("token"), clientOf(r), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

// Reject serves POST /v1/signing/{token}/reject.
func (h Handlers) Reject(w http.ResponseWriter, r *http.Request) error {
	var in RejectInput
	if err := httpapi.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	v, err := h.Service.Reject(r.Context(), r.PathValue("token"), clientOf(r), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}
