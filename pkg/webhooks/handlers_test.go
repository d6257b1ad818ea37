package webhooks

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
)

func TestRoutesAllUseSession(t *testing.T) {
	wrapped := 0
	session := func(next http.Handler) http.Handler { wrapped++; return next }
	anyCredential := func(next http.Handler) http.Handler {
		t.Error("a webhook route accepts API keys")
		return next
	}
	routes := Routes(Handlers{}, session, anyCredential)
	want := map[string]string{
		"webhooks-create":          "POST /v1/webhooks",
		"webhooks-list":            "GET /v1/webhooks",
		"webhooks-get":             "GET /v1/webhooks/{id}",
		"webhooks-update":          "PATCH /v1/webhooks/{id}",
		"webhooks-delete":          "DELETE /v1/webhooks/{id}",
		"webhooks-secret-get":      "GET /v1/webhooks/{id}/secret",
		"webhooks-rotate-secret":   "POST /v1/webhooks/{id}/rotate-secret",
		"webhooks-deliveries-list": "GET /v1/webhooks/{id}/deliveries",
		"webhooks-deliveries-get":  "GET /v1/webhooks/{id}/deliveries/{delivery_id}",
		"webhooks-redeliver":       "POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
		"webhooks-test":            "POST /v1/webhooks/{id}/test",
	}
	if len(routes) != len(want) {
		t.Errorf("routes = %d; want %d", len(routes), len(want))
	}
	for _, rt := range routes {
		if want[rt.Name] != rt.Pattern() {
			t.Errorf("route %s = %q; want %q", rt.Name, rt.Pattern(), want[rt.Name])
		}
		if rt.Method == http.MethodGet && !rt.ReadOnly() {
			t.Errorf("route %s writes the table; want read-only", rt.Name)
		}
	}
	if wrapped != len(routes) {
		t.Errorf("routes behind session = %d; want all %d", wrapped, len(routes))
	}
}

func TestHTTPCreateShowsSecretOnlyWhereAllowed(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))

	res := f.serve(t, caller, "POST", "/v1/webhooks", `{"url":"`+rc.url()+`","description":"Orders","events":["envelope.completed","envelope.sent"]}`)
	wantStatus(t, res, http.StatusCreated)
	secret, _ := res.body["secret"].(string)
	encoded, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		t.Fatalf("secret = %q; want whsec_ prefix", secret)
	}
	if key, err := base64.StdEncoding.DecodeString(encoded); err != nil || len(key) < 24 {
		t.Errorf("secret key: %d bytes, error %v; want at least 24 bytes of base64", len(key), err)
	}
	id, _ := res.body["id"].(string)
	if !ids.Valid(ids.Webhook, id) {
		t.Fatalf("id = %q; want a whk_ id", id)
	}
	if res.header.Get("Location") != "/v1/webhooks/"+id {
		t.Errorf("Location = %q", res.header.Get("Location"))
	}
	events, _ := res.body["events"].([]any)
	if fmt.Sprint(events) != "[envelope.sent envelope.completed]" {
		t.Errorf("events = %v; want catalogue order [envelope.sent envelope.completed]", events)
	}
	if res.body["enabled"] != true {
		t.Errorf("enabled = %v; want true", res.body["enabled"])
	}

	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/" + id} {
		got := f.serve(t, caller, "GET", path, "")
		wantStatus(t, got, http.StatusOK)
		if strings.Contains(got.raw, secret) || strings.Contains(got.raw, `"secret"`) {
			t.Errorf("GET %s shows the secret: %s", path, got.raw)
		}
	}
	got := f.serve(t, caller, "GET", "/v1/webhooks/"+id+"/secret", "")
	wantStatus(t, got, http.StatusOK)
	if got.body["secret"] != secret {
		t.Errorf("secret route = %v; want the created secret", got.body["secret"])
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Error("the logs contain the secret")
	}
}

func TestHTTPCreateRejectsBadInput(t *testing.T) {
	f := newFixture(t)
	f.resolver.set("internal.example", "10.0.0.8")
	f.resolver.set("metadata.example", "169.254.169.254")
	caller := personal(ids.New(ids.User))
	tests := []struct {
		name, body, field, code string
	}{
		{"missing url", `{"description":"x"}`, "url", "invalid_url"},
		{"plain http to a public host", `{"url":"http://example.com/hook"}`, "url", "invalid_url"},
		{"private address", `{"url":"https://192.168.1.20/hook"}`, "url", "invalid_url"},
		{"decimal loopback", `{"url":"https://2130706433/hook"}`, "url", "invalid_url"},
		{"name resolving to private", `{"url":"https://internal.example/hook"}`, "url", "invalid_url"},
		{"name resolving to metadata", `{"url":"https://metadata.example/hook"}`, "url", "invalid_url"},
		{"unresolvable name", `{"url":"https://nowhere.example/hook"}`, "url", "invalid_url"},
		{"user info", `{"url":"https://u:p@example.com/hook"}`, "url", "invalid_url"},
		{"security event", `{"url":"http://127.0.0.1:9/hook","events":["security.new_login"]}`, "events", "invalid_events"},
		{"unknown event", `{"url":"http://127.0.0.1:9/hook","events":["envelope.lost"]}`, "events", "invalid_events"},
		{"star with others", `{"url":"http://127.0.0.1:9/hook","events":["*","envelope.sent"]}`, "events", "invalid_events"},
		{"empty events", `{"url":"http://127.0.0.1:9/hook","events":[]}`, "events", "invalid_events"},
		{"long description", `{"url":"http://127.0.0.1:9/hook","description":"` + strings.Repeat("d", 501) + `"}`, "description", "invalid_description"},
		{"unknown field", `{"url":"http://127.0.0.1:9/hook","secret":"whsec_AAAA"}`, "secret", "unknown_field"},
		{"wrong type", `{"url":"http://127.0.0.1:9/hook","enabled":"yes"}`, "enabled", "wrong_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.serve(t, caller, "POST", "/v1/webhooks", tt.body)
			wantProblem(t, res, http.StatusBadRequest, tt.code, tt.field)
		})
	}
	if n := f.countEndpoints(t, caller.WorkspaceID); n != 0 {
		t.Errorf("endpoints after rejected requests = %d; want 0", n)
	}
	if n := f.resolver.lookupCount("internal.example"); n != 1 {
		t.Errorf("lookups of internal.example = %d; want 1", n)
	}
}

func TestHTTPRoleMatrix(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	orgID := ids.New(ids.Organization)
	owner := member(orgID, ids.New(ids.User), authn.RoleOwner)
	ep := f.create(t, owner, rc.url())
	d, err := f.svc.SendTest(context.Background(), owner, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.startPoller(t)
	f.waitDelivery(t, ep.ID, d.ID, 10*time.Second, statusIs(StatusSucceeded))

	base := "/v1/webhooks/" + ep.ID
	routes := []struct {
		method, path, body string
		manage             bool
		okStatus           int
	}{
		{"GET", "/v1/webhooks", "", false, http.StatusOK},
		{"GET", base, "", false, http.StatusOK},
		{"GET", base + "/deliveries", "", false, http.StatusOK},
		{"GET", base + "/deliveries/" + d.ID, "", false, http.StatusOK},
		{"POST", "/v1/webhooks", `{"url":"` + rc.url() + `"}`, true, http.StatusCreated},
		{"PATCH", base, `{"description":"changed"}`, true, http.StatusOK},
		{"GET", base + "/secret", "", true, http.StatusOK},
		{"POST", base + "/rotate-secret", "", true, http.StatusOK},
		{"POST", base + "/test", "", true, http.StatusAccepted},
		{"POST", base + "/deliveries/" + d.ID + "/redeliver", "", true, 0},
	}
	for _, role := range []string{authn.RoleOwner, authn.RoleAdmin, authn.RoleMember} {
		caller := member(orgID, ids.New(ids.User), role)
		for _, rt := range routes {
			t.Run(role+" "+rt.method+" "+rt.path, func(t *testing.T) {
				res := f.serve(t, caller, rt.method, rt.path, rt.body)
				switch {
				case role == authn.RoleMember && rt.manage:
					wantProblem(t, res, http.StatusForbidden, "insufficient_role", "")
				case rt.okStatus == 0:
					// A redelivery may find the previous one still pending.
					if res.status != http.StatusAccepted && res.status != http.StatusConflict {
						t.Errorf("status = %d; want 202 or 409 (body %s)", res.status, res.raw)
					}
				default:
					wantStatus(t, res, rt.okStatus)
				}
			})
		}
	}

	// DELETE last, so the other routes find the endpoint.
	res := f.serve(t, member(orgID, ids.New(ids.User), authn.RoleMember), "DELETE", base, "")
	wantProblem(t, res, http.StatusForbidden, "insufficient_role", "")
	res = f.serve(t, member(orgID, ids.New(ids.User), authn.RoleAdmin), "DELETE", base, "")
	wantStatus(t, res, http.StatusNoContent)
}

func TestHTTPIsolatesWorkspaces(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	userID := ids.New(ids.User)
	orgID := ids.New(ids.Organization)
	inOrg := member(orgID, userID, authn.RoleOwner)
	inPersonal := personal(userID)
	stranger := member(ids.New(ids.Organization), ids.New(ids.User), authn.RoleOwner)

	orgEndpoint := f.create(t, inOrg, rc.url())
	personalEndpoint := f.create(t, inPersonal, rc.url())
	d, err := f.svc.SendTest(context.Background(), inOrg, orgEndpoint.ID)
	if err != nil {
		t.Fatal(err)
	}

	list := f.serve(t, inPersonal, "GET", "/v1/webhooks", "")
	wantStatus(t, list, http.StatusOK)
	if strings.Contains(list.raw, orgEndpoint.ID) {
		t.Error("the personal list shows the organization's endpoint")
	}
	if !strings.Contains(list.raw, personalEndpoint.ID) {
		t.Error("the personal list lacks the personal endpoint")
	}
	list = f.serve(t, inOrg, "GET", "/v1/webhooks", "")
	if strings.Contains(list.raw, personalEndpoint.ID) {
		t.Error("the organization list shows the personal endpoint")
	}

	base := "/v1/webhooks/" + orgEndpoint.ID
	for _, caller := range []*authn.Caller{stranger, inPersonal} {
		for _, rt := range []struct{ method, path, body, code string }{
			{"GET", base, "", "webhook_not_found"},
			{"PATCH", base, `{"enabled":false}`, "webhook_not_found"},
			{"DELETE", base, "", "webhook_not_found"},
			{"GET", base + "/secret", "", "webhook_not_found"},
			{"POST", base + "/rotate-secret", "", "webhook_not_found"},
			{"POST", base + "/test", "", "webhook_not_found"},
			{"GET", base + "/deliveries", "", "webhook_not_found"},
			{"GET", base + "/deliveries/" + d.ID, "", "webhook_not_found"},
			{"POST", base + "/deliveries/" + d.ID + "/redeliver", "", "webhook_not_found"},
			{"GET", "/v1/webhooks/" + personalEndpoint.ID + "/deliveries/" + d.ID, "", "delivery_not_found"},
			{"GET", "/v1/webhooks/whk_nonsense", "", "webhook_not_found"},
		} {
			res := f.serve(t, caller, rt.method, rt.path, rt.body)
			if caller == stranger && strings.Contains(rt.path, personalEndpoint.ID) {
				rt.code = "webhook_not_found"
			}
			if res.status != http.StatusNotFound || res.body["code"] != rt.code {
				t.Errorf("%s %s as %s = %d %v; want 404 %s", rt.method, rt.path, caller.WorkspaceID, res.status, res.body["code"], rt.code)
			}
		}
	}
	if it := f.endpointItem(t, orgID, orgEndpoint.ID); !it.Enabled || it.SecretVersion != 0 {
		t.Errorf("foreign requests changed the endpoint: enabled %v, secret version %d", it.Enabled, it.SecretVersion)
	}
}

func TestHTTPUpdateEndpoint(t *testing.T) {
	f := newFixture(t)
	rc := statusReceiver(t, http.StatusOK)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, rc.url())
	path := "/v1/webhooks/" + ep.ID

	res := f.serve(t, caller, "PATCH", path, `{"events":["billing.purchase_completed"],"description":" Billing "}`)
	wantStatus(t, res, http.StatusOK)
	if fmt.Sprint(res.body["events"]) != "[billing.purchase_completed]" || res.body["description"] != "Billing" {
		t.Errorf("after update: events %v, description %v", res.body["events"], res.body["description"])
	}

	res = f.serve(t, caller, "PATCH", path, `{"enabled":false}`)
	wantStatus(t, res, http.StatusOK)
	if res.body["enabled"] != false || res.body["disabled_reason"] != DisabledByUser || res.body["disabled_at"] == nil {
		t.Errorf("after disabling: enabled %v, reason %v, at %v", res.body["enabled"], res.body["disabled_reason"], res.body["disabled_at"])
	}
	res = f.serve(t, caller, "PATCH", path, `{"enabled":true}`)
	wantStatus(t, res, http.StatusOK)
	if res.body["enabled"] != true || res.body["disabled_reason"] != nil || res.body["disabled_at"] != nil {
		t.Errorf("after enabling: enabled %v, reason %v, at %v", res.body["enabled"], res.body["disabled_reason"], res.body["disabled_at"])
	}

	before := f.endpointItem(t, caller.WorkspaceID, ep.ID)
	for _, tt := range []struct{ body, code string }{
		{`{}`, "empty_update"},
		{`{"url":"https://10.0.0.1/hook"}`, "invalid_url"},
		{`{"events":["security.new_login"]}`, "invalid_events"},
		{`{"url":"http://127.0.0.1:9/new","events":["nope"]}`, "invalid_events"},
	} {
		res := f.serve(t, caller, "PATCH", path, tt.body)
		wantProblem(t, res, http.StatusBadRequest, tt.code, "")
	}
	after := f.endpointItem(t, caller.WorkspaceID, ep.ID)
	if after.URL != before.URL || fmt.Sprint(after.EventTypes) != fmt.Sprint(before.EventTypes) || after.UpdatedAt != before.UpdatedAt {
		t.Errorf("rejected updates changed the endpoint: %+v", after)
	}
}

func TestHTTPDeleteEndpoint(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxEndpoints = 1 })
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "http://127.0.0.1:9/hook")

	res := f.serve(t, caller, "POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/other"}`)
	wantProblem(t, res, http.StatusConflict, "too_many_webhooks", "")

	res = f.serve(t, caller, "DELETE", "/v1/webhooks/"+ep.ID, "")
	wantStatus(t, res, http.StatusNoContent)
	res = f.serve(t, caller, "GET", "/v1/webhooks/"+ep.ID, "")
	wantProblem(t, res, http.StatusNotFound, "webhook_not_found", "")
	res = f.serve(t, caller, "DELETE", "/v1/webhooks/"+ep.ID, "")
	wantProblem(t, res, http.StatusNotFound, "webhook_not_found", "")

	res = f.serve(t, caller, "POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/other"}`)
	wantStatus(t, res, http.StatusCreated)
}

func TestConcurrentCreatesRespectMaximum(t *testing.T) {
	const maxEndpoints, requests = 5, 12
	f := newFixture(t, func(c *Config) { c.MaxEndpoints = maxEndpoints })
	caller := personal(ids.New(ids.User))

	var wg sync.WaitGroup
	errs := make([]error, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Create(context.Background(), caller, CreateInput{URL: fmt.Sprintf("http://127.0.0.1:9/hook/%d", i)})
		}()
	}
	wg.Wait()

	created, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case apperr.As(err) != nil && apperr.As(err).Reason == "too_many_webhooks":
			refused++
		default:
			t.Errorf("create: %v", err)
		}
	}
	if created != maxEndpoints || refused != requests-maxEndpoints {
		t.Errorf("created %d, refused %d; want %d and %d", created, refused, maxEndpoints, requests-maxEndpoints)
	}
	if n := f.countEndpoints(t, caller.WorkspaceID); n != maxEndpoints {
		t.Errorf("endpoint items = %d; want %d", n, maxEndpoints)
	}
}

func TestHTTPRotateSecret(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "http://127.0.0.1:9/hook")
	path := "/v1/webhooks/" + ep.ID

	res := f.serve(t, caller, "POST", path+"/rotate-secret", "")
	wantStatus(t, res, http.StatusOK)
	rotated, _ := res.body["secret"].(string)
	if !strings.HasPrefix(rotated, "whsec_") || rotated == ep.Secret {
		t.Errorf("rotated secret = %q; want a new whsec_ secret", rotated)
	}
	expires, err := time.Parse(time.RFC3339Nano, fmt.Sprint(res.body["previous_secret_expires_at"]))
	if err != nil {
		t.Fatalf("previous_secret_expires_at = %v: %v", res.body["previous_secret_expires_at"], err)
	}
	if d := time.Until(expires); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("previous secret expires in %s; want about 24h", d)
	}

	got := f.serve(t, caller, "GET", path+"/secret", "")
	if got.body["secret"] != rotated {
		t.Errorf("secret route = %v; want the rotated secret", got.body["secret"])
	}
	it := f.endpointItem(t, caller.WorkspaceID, ep.ID)
	if it.PreviousSecret != ep.Secret || it.SecretVersion != 1 {
		t.Errorf("previous secret kept = %v, version %d; want the first secret and version 1", it.PreviousSecret == ep.Secret, it.SecretVersion)
	}

	f.clock.Advance(25 * time.Hour)
	got = f.serve(t, caller, "GET", path+"/secret", "")
	if got.body["previous_secret_expires_at"] != nil {
		t.Errorf("after the window: previous_secret_expires_at = %v; want null", got.body["previous_secret_expires_at"])
	}
}

func TestConcurrentRotationsKeepAtMostTwoSecrets(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	ep := f.create(t, caller, "http://127.0.0.1:9/hook")

	const rotations = 4
	var wg sync.WaitGroup
	secrets := make([]Secret, rotations)
	errs := make([]error, rotations)
	for i := range rotations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secrets[i], errs[i] = f.svc.RotateSecret(context.Background(), caller, ep.ID)
		}()
	}
	wg.Wait()

	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
		} else if apperr.As(err) == nil || apperr.As(err).Reason != "concurrent_rotation" {
			t.Errorf("rotate: %v", err)
		}
	}
	it := f.endpointItem(t, caller.WorkspaceID, ep.ID)
	if it.SecretVersion != succeeded {
		t.Errorf("secret version = %d; want one per successful rotation, %d", it.SecretVersion, succeeded)
	}
	if n := len(it.signingSecrets(f.clock.Now())); n != 2 {
		t.Errorf("signing secrets = %d; want 2", n)
	}
}
