package apidoc_test

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// docRoute is "METHOD PATH", the ServeMux pattern of a route.
type docRoute = string

// operations returns the document's operations by "METHOD PATH".
func operations(doc *openapi3.T) map[docRoute]*openapi3.Operation {
	ops := map[docRoute]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// routeTable returns the app's routes by pattern.
func routeTable(t *testing.T) map[docRoute]httpapi.Route {
	t.Helper()
	routes, err := app.RouteTable()
	if err != nil {
		t.Fatalf("route table: %v", err)
	}
	out := map[docRoute]httpapi.Route{}
	for _, rt := range routes {
		out[rt.Pattern()] = rt
	}
	return out
}

// openAPIRoute is the route that serves the document. Until the app wires
// it, the document lists it without a route.
const openAPIRoute = "GET /v1/openapi.json"

func TestEveryRouteDocumented(t *testing.T) {
	ops := operations(loadDocument(t))
	for pattern, rt := range routeTable(t) {
		op, ok := ops[pattern]
		if !ok {
			t.Errorf("route %s (%s) is not in the document", rt.Name, pattern)
			continue
		}
		if op.OperationID != rt.Name {
			t.Errorf("%s: operationId = %q; want the route name %q", pattern, op.OperationID, rt.Name)
		}
	}
}

func TestEveryOperationRouted(t *testing.T) {
	routes := routeTable(t)
	for pattern := range operations(loadDocument(t)) {
		if _, ok := routes[pattern]; ok {
			continue
		}
		if pattern == openAPIRoute {
			t.Logf("%s is documented but not in the app's route table yet", pattern)
			continue
		}
		t.Errorf("operation %s is not a route of the route table", pattern)
	}
}

// securityOf returns the names of the schemes of each alternative of an
// operation's security requirements, such as [[sessionToken] [apiKey]].
func securityOf(op *openapi3.Operation) [][]string {
	if op.Security == nil {
		return nil
	}
	out := [][]string{}
	for _, req := range *op.Security {
		var names []string
		for name := range req {
			names = append(names, name)
		}
		sort.Strings(names)
		out = append(out, names)
	}
	return out
}

func hasParameter(op *openapi3.Operation, in, name string) bool {
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == in && strings.EqualFold(p.Value.Name, name) {
			return true
		}
	}
	return false
}

func hasResponse(op *openapi3.Operation, status string) bool {
	return op.Responses.Value(status) != nil
}

func TestOperationsFollowRouteAuth(t *testing.T) {
	ops := operations(loadDocument(t))
	wantSecurity := map[string][][]string{
		httpapi.AuthSession: {{"sessionToken"}},
		httpapi.AuthAny:     {{"sessionToken"}, {"apiKey"}},
		httpapi.AuthNone:    {},
	}
	for pattern, rt := range routeTable(t) {
		op, ok := ops[pattern]
		if !ok {
			continue // TestEveryRouteDocumented reports it
		}
		t.Run(rt.Name, func(t *testing.T) {
			want, known := wantSecurity[rt.Auth]
			if !known {
				t.Fatalf("route auth %q is not one of the kinds this test knows", rt.Auth)
			}
			if got := securityOf(op); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("security = %v; want %v for auth %q", got, want, rt.Auth)
			}
			authenticated := rt.Auth != httpapi.AuthNone
			if got := hasParameter(op, "header", "X-Workspace-Id"); got != authenticated {
				t.Errorf("X-Workspace-Id parameter present = %v; want %v", got, authenticated)
			}
			if authenticated && !hasResponse(op, "401") {
				t.Error("no 401 response for an authenticated route")
			}
			if authenticated && !hasResponse(op, "404") {
				t.Error("no 404 response, which X-Workspace-Id can cause")
			}
			if rt.Auth == httpapi.AuthAny && !hasResponse(op, "429") {
				t.Error("no 429 response for a route that takes API keys")
			}
			if rt.Auth == httpapi.AuthAny && !hasResponse(op, "400") {
				t.Error("no 400 response, which workspace_mismatch causes for an API key")
			}
			if !hasResponse(op, "500") {
				t.Error("no 500 response")
			}
		})
	}
}

// secretResponseRoutes are the POST routes that reject Idempotency-Key,
// because their responses carry a secret shown once.
var secretResponseRoutes = []string{"auth-signup", "auth-login", "api-keys-create", "webhooks-create", "webhooks-rotate-secret"}

func TestPostIdempotencyDocumented(t *testing.T) {
	ops := operations(loadDocument(t))
	for pattern, op := range ops {
		if !strings.HasPrefix(pattern, http.MethodPost+" ") {
			if hasParameter(op, "header", "Idempotency-Key") {
				t.Errorf("%s lists Idempotency-Key, which only POST honours", pattern)
			}
			continue
		}
		rejected := op.Extensions["x-idempotency-key-rejected"] == true
		if want := slices.Contains(secretResponseRoutes, op.OperationID); rejected != want {
			t.Errorf("%s: x-idempotency-key-rejected = %v; want %v", pattern, rejected, want)
		}
		if got := hasParameter(op, "header", "Idempotency-Key"); got == rejected {
			t.Errorf("%s: Idempotency-Key parameter present = %v with x-idempotency-key-rejected = %v", pattern, got, rejected)
		}
		if !hasResponse(op, "400") {
			t.Errorf("%s: no 400 response, which a malformed or rejected Idempotency-Key causes", pattern)
		}
		if !rejected {
			for _, status := range []string{"409", "413", "422"} {
				if !hasResponse(op, status) {
					t.Errorf("%s: no %s response, which Idempotency-Key handling can cause", pattern, status)
				}
			}
		}
	}
}

func TestListsArePaginated(t *testing.T) {
	for pattern, op := range operations(loadDocument(t)) {
		limit := hasParameter(op, "query", "limit")
		if cursor := hasParameter(op, "query", "cursor"); limit != cursor {
			t.Errorf("%s: limit parameter %v but cursor parameter %v", pattern, limit, cursor)
		}
		if !limit {
			continue
		}
		if !hasResponse(op, "400") {
			t.Errorf("%s: no 400 response for invalid_limit and invalid_cursor", pattern)
		}
		ok := op.Responses.Value("200")
		if ok == nil || ok.Value.Content.Get("application/json") == nil {
			t.Errorf("%s: no application/json 200 response", pattern)
			continue
		}
		page := ok.Value.Content.Get("application/json").Schema.Value
		if _, has := page.Properties["data"]; !has || !page.Type.Is("object") {
			t.Errorf("%s: the 200 body is not an object with data", pattern)
		}
		if _, has := page.Properties["next_cursor"]; !has {
			t.Errorf("%s: the 200 body has no next_cursor", pattern)
		}
		if !slices.Contains(page.Required, "data") || slices.Contains(page.Required, "next_cursor") {
			t.Errorf("%s: required = %v; want data required and next_cursor optional", pattern, page.Required)
		}
	}
}

func TestWebhooksCoverEventTypes(t *testing.T) {
	doc := loadDocument(t)
	for _, typ := range events.Types {
		_, documented := doc.Webhooks[typ]
		security := strings.HasPrefix(typ, "security.")
		if documented == security {
			t.Errorf("webhooks entry for %s present = %v; want %v", typ, documented, !security)
		}
	}
	for name := range doc.Webhooks {
		if !events.Known(name) && name != "webhook.test" {
			t.Errorf("webhooks entry %q is not an event type", name)
		}
	}
}
