// Package lambdahttp serves a net/http handler on AWS Lambda behind an
// Amazon API Gateway HTTP API with payload format 2.0.
//
// The handler built by [NewHandler] converts each
// [events.APIGatewayV2HTTPRequest] into an [*http.Request], runs the
// handler and converts what it wrote into an
// [events.APIGatewayV2HTTPResponse]. It uses
// github.com/awslabs/aws-lambda-go-api-proxy v0.16.2 for the request
// context (so [RequestID] and the proxy's core.GetAPIGatewayV2ContextFromContext
// work) and for the response writer, and converts the rest itself. Each
// case below is a trap of payload 2.0 or of the proxy, and each has a test
// on an event fixture in testdata:
//
//   - Base64 bodies. A request with isBase64Encoded reaches the handler as
//     the decoded bytes. The proxy base64-encodes a response only when its
//     body is not valid UTF-8, so a binary type such as application/pdf can
//     go back as text. The adapter also base64-encodes every non-empty body
//     whose media type is not text (text/*, JSON, XML, JavaScript, form
//     data, or a +json or +xml suffix) or that has a Content-Encoding.
//   - Repeated query keys. queryStringParameters joins repeated keys with
//     commas ("status": "a,b"), so the query always comes from
//     rawQueryString and r.URL.Query() returns each value in order.
//   - Header values with commas. API Gateway joins repeated headers with
//     commas, and the proxy splits every header outside a short list at
//     each comma, which cuts values such as If-None-Match, Idempotency-Key
//     or Date. The adapter passes each header as the one value API Gateway
//     sent, so r.Header.Get returns it whole.
//   - Path parameters. An HTTP API sends rawPath already percent-decoded
//     ("/v1/things/a b" for a request to /v1/things/a%20b). The proxy parses
//     it as an encoded URL, so a "%" fails the request and a "#" cuts the
//     path and drops the query. The adapter sets it as the decoded
//     r.URL.Path, so a ServeMux pattern such as "GET /v1/things/{id}" gives
//     r.PathValue("id") == "a b".
//   - Cookies. Payload 2.0 moves the Cookie header into a cookies array, and
//     a response header map can hold only one Set-Cookie value. The array
//     becomes one Cookie header, so r.Cookies returns every cookie, and each
//     Set-Cookie header the handler sets comes back as one entry of the
//     response's cookies field. The proxy already does both.
//   - Stage prefix. With a named stage ("prod") the path starts with the
//     stage ("/prod/v1/me") and the adapter removes that first segment.
//     With the $default stage nothing is removed.
//   - No status written. When the handler calls neither WriteHeader nor
//     Write, the proxy returns a 504 response together with an error, and
//     API Gateway turns the function error into a 502. The adapter sends
//     a 200 with an empty body, as net/http does. As in net/http, the first
//     WriteHeader wins and header changes after it are ignored.
//   - Client address. The proxy sets r.RemoteAddr to the bare source IP,
//     which net.SplitHostPort rejects. The adapter sets it to
//     requestContext.http.sourceIp with port 0, for example
//     "203.0.113.7:0" or "[2001:db8::1]:0".
//
// A Lambda function that returns an error makes API Gateway send a bare
// 502, so the adapter never returns one. A request it cannot convert, or a
// handler that panics, gets a 500 application/problem+json response and
// one log line through [log/slog].
package lambdahttp
