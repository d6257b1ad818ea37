package lambdahttp

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// defaultStage is the stage API Gateway serves at the root of the API, with
// no stage segment in the path.
const defaultStage = "$default"

// newRequest converts an HTTP API payload 2.0 event into a server request
// whose context carries the event's request context and the Lambda context.
func newRequest(ctx context.Context, event events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	body, err := decodeBody(event)
	if err != nil {
		return nil, err
	}

	method := strings.ToUpper(event.RequestContext.HTTP.Method)
	if !isToken(method) {
		return nil, fmt.Errorf("invalid HTTP method %q", method)
	}

	// The proxy gets only the method, the body and the request context. The
	// path, query, headers and cookies are set below because it converts
	// them wrongly, and because it logs the request URL when it fails.
	proxyEvent := event
	proxyEvent.RequestContext.HTTP.Method = method
	proxyEvent.RawPath = "/"
	proxyEvent.RawQueryString = ""
	proxyEvent.QueryStringParameters = nil
	proxyEvent.Headers = nil
	proxyEvent.Cookies = nil
	proxyEvent.Body = string(body)
	proxyEvent.IsBase64Encoded = false

	var accessor core.RequestAccessorV2
	r, err := accessor.EventToRequestWithContext(ctx, proxyEvent)
	if err != nil {
		return nil, fmt.Errorf("convert event to request: %w", err)
	}

	r.URL = &url.URL{Path: requestPath(event), RawQuery: event.RawQueryString}
	r.RequestURI = r.URL.RequestURI()
	r.Header = requestHeader(event)
	r.Host = requestHost(event, r.Header)
	r.Header.Del("Host")
	r.RemoteAddr = remoteAddr(event.RequestContext.HTTP.SourceIP)

	if major, minor, ok := http.ParseHTTPVersion(event.RequestContext.HTTP.Protocol); ok {
		r.Proto = event.RequestContext.HTTP.Protocol
		r.ProtoMajor = major
		r.ProtoMinor = minor
	}

	return r, nil
}

func decodeBody(event events.APIGatewayV2HTTPRequest) ([]byte, error) {
	if !event.IsBase64Encoded {
		return []byte(event.Body), nil
	}

	body, err := base64.StdEncoding.DecodeString(event.Body)
	if err != nil {
		return nil, fmt.Errorf("decode base64 request body: %w", err)
	}
	return body, nil
}

// requestPath returns the decoded request path without the stage segment.
// API Gateway HTTP APIs send rawPath percent-decoded: a request to
// /v1/things/a%20b arrives as "/v1/things/a b", so the path is used as
// url.URL.Path and never parsed as an escaped URL. The events captured from
// a live HTTP API in github.com/hotsock/voker (vokerhttp/testdata) show this.
// Lambda function URLs use the same payload but keep the encoding.
//
// NOTE: API Gateway also decodes %2F, so a path parameter that contains an
// encoded "/" arrives as two path segments and cannot be recovered.
func requestPath(event events.APIGatewayV2HTTPRequest) string {
	path := event.RawPath
	if path == "" {
		path = event.RequestContext.HTTP.Path
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}

	return stripStage(path, event.RequestContext.Stage)
}

// stripStage removes the first path segment when it is the named stage.
// Requests through the API's execute-api address carry a named stage as
// the first segment ("/prod/v1/me"), and the $default stage adds none.
//
// NOTE: A request through a custom domain carries no stage segment, so a
// stage named like the first segment of a route (for example "v1") would
// wrongly strip that segment there.
func stripStage(path, stage string) string {
	if stage == "" || stage == defaultStage {
		return path
	}

	prefix := "/" + stage
	if path == prefix {
		return "/"
	}
	if strings.HasPrefix(path, prefix+"/") {
		return path[len(prefix):]
	}
	return path
}

// requestHeader copies the event headers without splitting their values.
// API Gateway has already joined repeated headers with commas, and a comma
// inside a single value (a User-Agent, a Date, an ETag list) cannot be
// distinguished from that join, so every header keeps the one value it
// arrived with.
func requestHeader(event events.APIGatewayV2HTTPRequest) http.Header {
	header := make(http.Header, len(event.Headers)+1)
	for name, value := range event.Headers {
		header.Add(name, value)
	}

	// Payload 2.0 moves the Cookie header into the cookies array. One
	// Cookie header with "; " between the pairs is the HTTP/1.1 form.
	if len(event.Cookies) > 0 {
		header.Set("Cookie", strings.Join(event.Cookies, "; "))
	}
	return header
}

func requestHost(event events.APIGatewayV2HTTPRequest, header http.Header) string {
	if host := header.Get("Host"); host != "" {
		return host
	}
	return event.RequestContext.DomainName
}

// remoteAddr returns the client address in the host:port form that
// net/http servers use. API Gateway does not send the client port, so the
// port is 0.
func remoteAddr(sourceIP string) string {
	if sourceIP == "" {
		return ""
	}
	return net.JoinHostPort(sourceIP, "0")
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of an
// HTTP method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
