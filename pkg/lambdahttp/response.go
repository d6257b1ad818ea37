package lambdahttp

import (
	"encoding/base64"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// responseWriter is the [http.ResponseWriter] given to the handler. It wraps
// the proxy's writer and adds the net/http rules that writer lacks: the
// first WriteHeader wins, the header is fixed when the status is written,
// and a handler that writes nothing sends a 200.
type responseWriter struct {
	proxy       *core.ProxyResponseWriterV2
	header      http.Header
	wroteHeader bool
}

func newResponseWriter() *responseWriter {
	return &responseWriter{
		proxy:  core.NewProxyResponseWriterV2(),
		header: make(http.Header),
	}
}

// Header returns the header map that WriteHeader sends. Changes made after
// WriteHeader or Write have no effect.
func (w *responseWriter) Header() http.Header {
	return w.header
}

// WriteHeader sets the response status. Calls after the first are ignored,
// and so are informational (1xx) codes, which a Lambda response cannot
// carry. Like net/http, it panics on a code outside 100-999.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return
	}

	w.wroteHeader = true
	maps.Copy(w.proxy.Header(), w.header.Clone())
	w.proxy.WriteHeader(code)
}

// Write appends p to the response body, first writing a 200 status if
// WriteHeader was not called. When no Content-Type is set, the proxy's
// writer sets one from [http.DetectContentType].
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.proxy.Write(p)
}

// response converts what the handler wrote into the payload 2.0 response.
// Set-Cookie headers go to the cookies field, and the body is base64-encoded
// when it is binary or not valid UTF-8.
func (w *responseWriter) response() (events.APIGatewayV2HTTPResponse, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}

	resp, err := w.proxy.GetProxyResponse()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("build proxy response: %w", err)
	}

	if !resp.IsBase64Encoded && resp.Body != "" && isBinary(w.proxy.Header()) {
		resp.Body = base64.StdEncoding.EncodeToString([]byte(resp.Body))
		resp.IsBase64Encoded = true
	}
	return resp, nil
}

// isBinary reports whether a body with this header must go back
// base64-encoded: it has a Content-Encoding such as gzip, or a media type
// that is not text. A Content-Type that does not parse counts as binary,
// because base64 never alters the bytes.
func isBinary(header http.Header) bool {
	if encoding := header.Get("Content-Encoding"); encoding != "" && !strings.EqualFold(encoding, "identity") {
		return true
	}

	mediaType, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return true
	}
	return !isTextMediaType(mediaType)
}

// isTextMediaType reports whether mediaType, lowercased by
// [mime.ParseMediaType], is a text format.
func isTextMediaType(mediaType string) bool {
	if strings.HasPrefix(mediaType, "text/") ||
		strings.HasSuffix(mediaType, "+json") ||
		strings.HasSuffix(mediaType, "+xml") {
		return true
	}

	switch mediaType {
	case "application/json",
		"application/xml",
		"application/javascript",
		"application/x-www-form-urlencoded":
		return true
	}
	return false
}
