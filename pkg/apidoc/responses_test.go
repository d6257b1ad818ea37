package apidoc_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/orgs"
)

// flow is the state that the steps of TestResponsesMatchDocument share.
type flow struct {
	api *testApp
	c   *apiClient

	ada, bob, carol, dan string // session tokens
	adaID, bobID, danID  string
	orgID                string
	keyID, key           string
}

func (f *flow) send(t *testing.T, method, path, token string, body any, headers ...string) reply {
	t.Helper()
	in := request{method: method, path: path, token: token, body: body, headers: map[string]string{}}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Content-Type" {
			in.contentType = headers[i+1]
			continue
		}
		in.headers[headers[i]] = headers[i+1]
	}
	return f.c.send(t, in)
}

// accept accepts an invitation to the email address with the code its
// email carries.
func (f *flow) accept(t *testing.T, token string, invitation reply, email string) reply {
	t.Helper()
	id := field(invitation.body, "id")
	code := orgs.InvitationCode(testSigningKey, id, email)
	return f.send(t, "POST", "/v1/me/invitations/"+id+"/accept", token, fmt.Sprintf(`{"code":%q}`, code))
}

func (f *flow) signup(t *testing.T, name, email string) (id, token string) {
	t.Helper()
	r := f.send(t, "POST", "/v1/auth/signup", "", fmt.Sprintf(`{"name":%q,"email":%q,"password":"a long enough password"}`, name, email))
	wantStatus(t, r, http.StatusCreated)
	return field(r.body, "user", "id"), field(r.body, "session", "token")
}

// TestResponsesMatchDocument drives every route over DynamoDB Local, with
// successes and the errors each kind of handler returns, and validates
// every response against the document. It ends by checking that every
// route responded at least once with a 2xx status.
func TestResponsesMatchDocument(t *testing.T) {
	api := newTestApp(t, func(cfg *app.Config) {
		// One credit, so a second send is refused for lack of credits.
		cfg.Billing.StartingCredits = 1
	})
	f := &flow{api: api, c: api.client}

	t.Run("accounts", f.accounts)
	t.Run("organizations", f.organizations)
	t.Run("api keys", f.apiKeys)
	t.Run("billing", f.billing)
	t.Run("stripe", f.stripe)
	t.Run("envelopes", f.envelopes)
	t.Run("events and notifications", f.notifications)
	t.Run("webhooks", f.webhooks)
	t.Run("plumbing", f.plumbing)

	for _, line := range f.c.coverage() {
		t.Log(line)
	}
	for pattern, rt := range routeTable(t) {
		if !f.c.succeeded(pattern) {
			t.Errorf("route %s (%s) never responded with a 2xx status, so its success response was not validated", rt.Name, pattern)
		}
	}
}

func (f *flow) accounts(t *testing.T) {
	f.adaID, f.ada = f.signup(t, "Ada", "ada@example.com")

	wantProblem(t, f.send(t, "POST", "/v1/auth/signup", "", `{"name":"Ada","email":"ADA@example.com","password":"a long enough password"}`), 409, "email_taken")
	wantProblem(t, f.send(t, "POST", "/v1/auth/signup", "", `{"name":`), 400, "malformed_json")
	wantProblem(t, f.send(t, "POST", "/v1/auth/signup", "", `{"name":"A","email":"a@example.com","password":"a long enough password","admin":true}`), 400, "unknown_field")
	wantProblem(t, f.send(t, "POST", "/v1/auth/signup", "", `{"name":"A","email":"a@example.com","password":"a long enough password"}`, "Idempotency-Key", "k1"), 400, "idempotency_unsupported")
	wantProblem(t, f.send(t, "POST", "/v1/auth/signup", "", `{"name":"`+strings.Repeat("a", 2<<20)+`"}`), 413, "body_too_large")

	wantProblem(t, f.send(t, "POST", "/v1/auth/login", "", `{"email":"ada@example.com","password":"wrong password!"}`), 401, "invalid_credentials")
	wantProblem(t, f.send(t, "POST", "/v1/auth/login", "", `{"email":"ada@example.com"}`), 400, "missing_field")
	wantProblem(t, f.send(t, "POST", "/v1/auth/login", "", `{"email":"ada@example.com","password":"a long enough password"}`, "Idempotency-Key", "login-1"), 400, "idempotency_unsupported")
	// Another user agent is a new device, which raises security.new_login.
	login := f.send(t, "POST", "/v1/auth/login", "", `{"email":"ada@example.com","password":"a long enough password"}`, "User-Agent", "apidoc-test/2.0")
	wantStatus(t, login, http.StatusOK)
	second := field(login.body, "session", "token")

	wantStatus(t, f.send(t, "GET", "/v1/me", f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/me", "", nil), 401, "missing_credentials")
	wantProblem(t, f.send(t, "GET", "/v1/me", "", nil, "Authorization", "Basic abc"), 401, "malformed_credentials")
	wantProblem(t, f.send(t, "GET", "/v1/me", "sess_0000000000000000000000000000000000000000000", nil), 401, "invalid_session")
	wantProblem(t, f.send(t, "GET", "/v1/me", "signsecure_abc", nil), 401, "session_required")

	wantStatus(t, f.send(t, "PATCH", "/v1/me", f.ada, `{"name":"Ada Lovelace"}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", "/v1/me", f.ada, `{}`), 400, "empty_update")
	wantProblem(t, f.send(t, "PATCH", "/v1/me", f.ada, `{"email":"countess@example.com"}`), 401, "invalid_credentials")

	page := f.send(t, "GET", "/v1/me/sessions?limit=1", f.ada, nil)
	wantStatus(t, page, http.StatusOK)
	next, _ := page.body["next_cursor"].(string)
	if next == "" {
		t.Fatalf("first page of two sessions has no next_cursor: %s", page.raw)
	}
	rest := f.send(t, "GET", "/v1/me/sessions?limit=1&cursor="+url.QueryEscape(next), f.ada, nil)
	wantStatus(t, rest, http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/me/sessions?limit=0", f.ada, nil), 400, "invalid_limit")
	wantProblem(t, f.send(t, "GET", "/v1/me/sessions?cursor=abc", f.ada, nil), 400, "invalid_cursor")

	var secondID string
	for _, s := range append(items(page), items(rest)...) {
		if s["current"] == false {
			secondID = s["id"].(string)
		}
	}
	wantProblem(t, f.send(t, "DELETE", "/v1/me/sessions/nope", f.ada, nil), 400, "invalid_id")
	wantProblem(t, f.send(t, "DELETE", "/v1/me/sessions/"+ids.New(ids.Session), f.ada, nil), 404, "session_not_found")
	wantStatus(t, f.send(t, "DELETE", "/v1/me/sessions/"+secondID, f.ada, nil), http.StatusNoContent)
	wantProblem(t, f.send(t, "GET", "/v1/me", second, nil), 401, "invalid_session")

	wantProblem(t, f.send(t, "POST", "/v1/me/password", f.ada, `{"current_password":"wrong password!","new_password":"another long password"}`), 401, "invalid_credentials")
	wantProblem(t, f.send(t, "POST", "/v1/me/password", f.ada, `{"current_password":"a long enough password","new_password":"short"}`), 400, "invalid_password")
	change := `{"current_password":"a long enough password","new_password":"another long password"}`
	wantStatus(t, f.send(t, "POST", "/v1/me/password", f.ada, change, "Idempotency-Key", "password-1"), http.StatusNoContent)
	replay := f.send(t, "POST", "/v1/me/password", f.ada, change, "Idempotency-Key", "password-1")
	wantStatus(t, replay, http.StatusNoContent)
	if replay.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed response has Idempotent-Replayed %q; want true", replay.header.Get("Idempotent-Replayed"))
	}
	wantProblem(t, f.send(t, "POST", "/v1/me/password", f.ada, `{"current_password":"x","new_password":"y"}`, "Idempotency-Key", "password-1"), 422, "idempotency_key_reused")
	wantProblem(t, f.send(t, "POST", "/v1/me/password", f.ada, change, "Idempotency-Key", "has space"), 400, "invalid_idempotency_key")

	logout := f.send(t, "POST", "/v1/auth/login", "", `{"email":"ada@example.com","password":"another long password"}`)
	wantStatus(t, logout, http.StatusOK)
	wantStatus(t, f.send(t, "POST", "/v1/auth/logout", field(logout.body, "session", "token"), nil), http.StatusNoContent)

	f.bobID, f.bob = f.signup(t, "Bob", "bob@example.com")
	_, f.carol = f.signup(t, "Carol", "carol@example.com")
	f.danID, f.dan = f.signup(t, "Dan", "dan@example.com")
}

func (f *flow) organizations(t *testing.T) {
	created := f.send(t, "POST", "/v1/organizations", f.ada, `{"name":"Analytical Engines"}`, "Idempotency-Key", "org-1")
	wantStatus(t, created, http.StatusCreated)
	f.orgID = field(created.body, "id")
	replay := f.send(t, "POST", "/v1/organizations", f.ada, `{"name":"Analytical Engines"}`, "Idempotency-Key", "org-1")
	if replay.status != http.StatusCreated || field(replay.body, "id") != f.orgID {
		t.Errorf("replay = %d %s; want the first response", replay.status, replay.raw)
	}
	wantProblem(t, f.send(t, "POST", "/v1/organizations", f.ada, `{"name":"  "}`), 400, "invalid_name")
	org := "/v1/organizations/" + f.orgID

	wantStatus(t, f.send(t, "GET", org, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", org, f.bob, nil), 404, "organization_not_found")
	wantStatus(t, f.send(t, "PATCH", org, f.ada, `{"name":"Analytical Engines Ltd"}`), http.StatusOK)

	wantStatus(t, f.send(t, "GET", "/v1/workspaces", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/workspace", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/workspace", f.ada, nil, "X-Workspace-Id", f.orgID), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/workspace", f.bob, nil, "X-Workspace-Id", f.orgID), 404, "workspace_not_found")

	invite := f.send(t, "POST", org+"/invitations", f.ada, `{"email":"bob@example.com"}`)
	wantStatus(t, invite, http.StatusCreated)
	wantProblem(t, f.send(t, "POST", org+"/invitations", f.ada, `{"email":"bob@example.com"}`), 409, "invitation_pending")
	wantProblem(t, f.send(t, "POST", org+"/invitations", f.ada, `{"email":"x@example.com","role":"boss"}`), 400, "invalid_role")
	wantStatus(t, f.send(t, "GET", org+"/invitations", f.ada, nil), http.StatusOK)

	mine := f.send(t, "GET", "/v1/me/invitations", f.bob, nil)
	wantStatus(t, mine, http.StatusOK)
	if n := len(items(mine)); n != 1 {
		t.Fatalf("bob's invitations = %d; want 1", n)
	}
	wantProblem(t, f.send(t, "POST", "/v1/me/invitations/"+field(invite.body, "id")+"/accept", f.bob, nil), 403, "invalid_invitation_code")
	wantProblem(t, f.send(t, "POST", "/v1/me/invitations/"+field(invite.body, "id")+"/accept", f.bob, `{"code":"sic_wrong"}`), 403, "invalid_invitation_code")
	wantStatus(t, f.accept(t, f.bob, invite, "bob@example.com"), http.StatusOK)
	wantProblem(t, f.accept(t, f.bob, invite, "bob@example.com"), 409, "invitation_not_pending")
	wantStatus(t, f.send(t, "GET", org+"/members", f.bob, nil), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", org, f.bob, `{"name":"Bob's"}`), 403, "insufficient_role")

	wantStatus(t, f.send(t, "PATCH", org+"/members/"+f.bobID, f.ada, `{"role":"admin"}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", org+"/members/"+f.adaID, f.ada, `{"role":"member"}`), 409, "last_owner")
	wantProblem(t, f.send(t, "PATCH", org+"/members/"+ids.New(ids.User), f.ada, `{"role":"member"}`), 404, "member_not_found")

	carolInvite := f.send(t, "POST", org+"/invitations", f.bob, `{"email":"carol@example.com"}`)
	wantStatus(t, carolInvite, http.StatusCreated)
	wantStatus(t, f.send(t, "DELETE", org+"/invitations/"+field(carolInvite.body, "id"), f.ada, nil), http.StatusNoContent)
	wantProblem(t, f.send(t, "POST", "/v1/me/invitations/"+field(carolInvite.body, "id")+"/decline", f.carol, nil), 409, "invitation_not_pending")
	again := f.send(t, "POST", org+"/invitations", f.ada, `{"email":"carol@example.com","role":"member"}`)
	wantStatus(t, again, http.StatusCreated)
	wantStatus(t, f.send(t, "POST", "/v1/me/invitations/"+field(again.body, "id")+"/decline", f.carol, nil), http.StatusNoContent)

	danInvite := f.send(t, "POST", org+"/invitations", f.ada, `{"email":"dan@example.com"}`)
	wantStatus(t, danInvite, http.StatusCreated)
	wantStatus(t, f.accept(t, f.dan, danInvite, "dan@example.com"), http.StatusOK)
	wantStatus(t, f.send(t, "DELETE", org+"/members/"+f.danID, f.bob, nil), http.StatusNoContent)
	wantProblem(t, f.send(t, "DELETE", org+"/members/"+f.adaID, f.ada, nil), 409, "last_owner")
}

func (f *flow) apiKeys(t *testing.T) {
	wantProblem(t, f.send(t, "POST", "/v1/api-keys", f.ada, `{"name":"CI"}`, "Idempotency-Key", "key-1"), 400, "idempotency_unsupported")
	wantProblem(t, f.send(t, "POST", "/v1/api-keys", f.ada, `{"name":"CI","rate_limit_per_minute":0}`), 400, "invalid_rate_limit")
	wantProblem(t, f.send(t, "POST", "/v1/api-keys", f.ada, `{"name":"CI","expires_at":"2001-01-01T00:00:00Z"}`), 400, "invalid_expires_at")
	created := f.send(t, "POST", "/v1/api-keys", f.ada, `{"name":"CI","expires_at":"2099-01-01T00:00:00Z"}`)
	wantStatus(t, created, http.StatusCreated)
	f.keyID, f.key = field(created.body, "id"), field(created.body, "key")

	wantStatus(t, f.send(t, "GET", "/v1/api-keys", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/api-keys/"+f.keyID, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/api-keys/"+f.keyID, f.bob, nil), 404, "api_key_not_found")
	wantProblem(t, f.send(t, "GET", "/v1/api-keys/nope", f.ada, nil), 400, "invalid_id")
	wantStatus(t, f.send(t, "PATCH", "/v1/api-keys/"+f.keyID, f.ada, `{"name":"CI runner"}`), http.StatusOK)

	used := f.send(t, "GET", "/v1/workspace", f.key, nil)
	wantStatus(t, used, http.StatusOK)
	if used.header.Get("RateLimit-Limit") == "" {
		t.Error("API-key response has no RateLimit-Limit header")
	}
	wantProblem(t, f.send(t, "GET", "/v1/workspace", f.key, nil, "X-Workspace-Id", f.orgID), 400, "workspace_mismatch")
	wantProblem(t, f.send(t, "GET", "/v1/me", f.key, nil), 401, "session_required")
	wantProblem(t, f.send(t, "GET", "/v1/workspace", "signsecure_abc", nil), 401, "malformed_api_key")
	wantProblem(t, f.send(t, "GET", "/v1/workspace", "signsecure_"+strings.Repeat("A", 38), nil), 401, "malformed_api_key")

	limited := f.send(t, "POST", "/v1/api-keys", f.ada, `{"name":"slow","rate_limit_per_minute":1}`)
	wantStatus(t, limited, http.StatusCreated)
	wantStatus(t, f.send(t, "GET", "/v1/billing/wallet", field(limited.body, "key"), nil), http.StatusOK)
	over := f.send(t, "GET", "/v1/billing/wallet", field(limited.body, "key"), nil)
	wantProblem(t, over, 429, "rate_limit_exceeded")
	if over.header.Get("Retry-After") == "" {
		t.Error("429 has no Retry-After header")
	}

	wantProblem(t, f.send(t, "POST", "/v1/api-keys", f.dan, `{"name":"member key"}`, "X-Workspace-Id", f.orgID), 404, "workspace_not_found")
	orgKey := f.send(t, "POST", "/v1/api-keys", f.bob, `{"name":"org key"}`, "X-Workspace-Id", f.orgID)
	wantStatus(t, orgKey, http.StatusCreated)
	wantStatus(t, f.send(t, "DELETE", "/v1/api-keys/"+field(orgKey.body, "id"), f.bob, nil, "X-Workspace-Id", f.orgID), http.StatusNoContent)
	wantProblem(t, f.send(t, "GET", "/v1/workspace", field(orgKey.body, "key"), nil), 401, "invalid_api_key")
	wantProblem(t, f.send(t, "PATCH", "/v1/api-keys/"+field(orgKey.body, "id"), f.bob, `{"name":"again"}`, "X-Workspace-Id", f.orgID), 409, "api_key_revoked")
}

func (f *flow) billing(t *testing.T) {
	wantStatus(t, f.send(t, "GET", "/v1/billing/wallet", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/billing/wallet", f.key, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/billing/ledger", f.key, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/billing/ledger?limit=500", f.ada, nil), 400, "invalid_limit")

	wantStatus(t, f.send(t, "PATCH", "/v1/billing/settings", f.ada, `{"low_balance_threshold":3}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", "/v1/billing/settings", f.ada, `{"low_balance_threshold":-1}`), 400, "invalid_threshold")
	wantProblem(t, f.send(t, "PATCH", "/v1/billing/settings", f.ada, `{}`), 400, "missing_field")
	wantProblem(t, f.send(t, "PATCH", "/v1/billing/settings", f.ada, `{"low_balance_threshold":"3"}`), 400, "wrong_type")

	wantStatus(t, f.send(t, "GET", "/v1/billing/packs", f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "POST", "/v1/billing/purchases", f.ada, `{"pack_id":"gold"}`), 400, "unknown_pack")
	bought := f.send(t, "POST", "/v1/billing/purchases", f.ada, `{"pack_id":"starter"}`, "Idempotency-Key", "buy-1")
	wantStatus(t, bought, http.StatusCreated)
	purchase := field(bought.body, "id")
	wantStatus(t, f.send(t, "GET", "/v1/billing/purchases", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/billing/purchases/"+purchase, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/billing/purchases/"+purchase, f.bob, nil), 404, "purchase_not_found")
	wantStatus(t, f.send(t, "GET", "/v1/billing/invoices/"+purchase, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/billing/invoices/"+ids.New(ids.Purchase), f.ada, nil), 404, "purchase_not_found")

	orgWide := "X-Workspace-Id"
	wantStatus(t, f.send(t, "POST", "/v1/billing/purchases", f.bob, `{"pack_id":"team"}`, orgWide, f.orgID), http.StatusCreated)
	wantProblem(t, f.send(t, "PATCH", "/v1/billing/settings", f.key, `{"low_balance_threshold":3}`), 401, "session_required")

	wantProblem(t, f.send(t, "POST", "/v1/billing/stripe/webhook", "", `{"id":"evt_1"}`, "Stripe-Signature", "t=1,v1=abc"), 404, "stripe_not_enabled")
}

// envelopeBody returns a draft with two signers in turn and a cc.
func envelopeBody(title, emails string) string {
	return fmt.Sprintf(`{"title":%q,"message":"Please sign.","email_notifications":%q,"recipients":[
		{"name":"Signer One","email":"one@example.com","role":"signer","routing_order":1},
		{"name":"Signer Two","email":"two@example.com","role":"signer","routing_order":2},
		{"name":"Watcher","email":"cc@example.com","role":"cc"}]}`, title, emails)
}

// addDocument uploads a PDF to the envelope.
func (f *flow) addDocument(t *testing.T, token, envelopeID, name string, headers ...string) string {
	t.Helper()
	headers = append(headers, "Content-Type", "application/pdf")
	r := f.send(t, "POST", "/v1/envelopes/"+envelopeID+"/documents?filename="+url.QueryEscape(name), token, testPDF(name), headers...)
	wantStatus(t, r, http.StatusCreated)
	return field(r.body, "id")
}

// signingTokens returns the tokens of the active signers' links.
func (f *flow) signingTokens(t *testing.T, token, envelopeID string, headers ...string) []string {
	t.Helper()
	r := f.send(t, "GET", "/v1/envelopes/"+envelopeID+"/signing-links", token, nil, headers...)
	wantStatus(t, r, http.StatusOK)
	var out []string
	for _, link := range items(r) {
		u, err := url.Parse(field(link, "url"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, path.Base(u.Path))
	}
	return out
}

func (f *flow) envelopes(t *testing.T) {
	wantProblem(t, f.send(t, "POST", "/v1/envelopes", f.ada, `{"title":"x","recipients":[{"name":"A","email":"a@example.com","role":"signer"},{"name":"B","email":"A@example.com","role":"signer"}]}`), 400, "duplicate_recipient")
	created := f.send(t, "POST", "/v1/envelopes", f.key, envelopeBody("Lease", "none"), "Idempotency-Key", "env-1")
	wantStatus(t, created, http.StatusCreated)
	envID := field(created.body, "id")
	env := "/v1/envelopes/" + envID

	wantStatus(t, f.send(t, "GET", "/v1/envelopes", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", "/v1/envelopes?status=draft&limit=5", f.key, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/envelopes?status=lost", f.ada, nil), 400, "invalid_status")
	wantStatus(t, f.send(t, "GET", env, f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", env, f.bob, nil), 404, "envelope_not_found")
	wantProblem(t, f.send(t, "GET", "/v1/envelopes/env_nope", f.ada, nil), 400, "invalid_id")
	wantStatus(t, f.send(t, "PATCH", env, f.ada, `{"message":"Please sign the lease."}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", env, f.ada, `{}`), 400, "empty_update")
	wantProblem(t, f.send(t, "POST", env+"/send", f.ada, nil), 409, "no_documents")

	wantProblem(t, f.send(t, "POST", env+"/documents?filename=a.pdf", f.ada, []byte("%PDF-1.7 but cut"), "Content-Type", "application/pdf"), 400, "invalid_pdf")
	wantProblem(t, f.send(t, "POST", env+"/documents?filename=a.pdf", f.ada, `{}`), 400, "unsupported_content_type")
	docID := f.addDocument(t, f.ada, envID, "lease.pdf")
	extra := f.addDocument(t, f.key, envID, "annex.pdf")
	wantStatus(t, f.send(t, "GET", env+"/documents", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "GET", env+"/documents/"+docID, f.key, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", env+"/documents/"+ids.New(ids.Document), f.ada, nil), 404, "document_not_found")
	wantStatus(t, f.send(t, "DELETE", env+"/documents/"+extra, f.ada, nil), http.StatusNoContent)
	wantProblem(t, f.send(t, "GET", env+"/signing-links", f.ada, nil), 409, "envelope_not_sent")

	sent := f.send(t, "POST", env+"/send", f.ada, nil, "Idempotency-Key", "send-1")
	wantStatus(t, sent, http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", env, f.ada, `{"title":"Too late"}`), 409, "envelope_not_draft")
	wantProblem(t, f.send(t, "DELETE", env, f.ada, nil), 409, "envelope_not_draft")
	wantStatus(t, f.send(t, "GET", env+"/audit", f.ada, nil), http.StatusOK)

	first := f.signingTokens(t, f.ada, envID)
	if len(first) != 1 {
		t.Fatalf("active signers after send = %d; want 1", len(first))
	}
	sign := "/v1/signing/" + first[0]
	view := f.send(t, "GET", sign, "", nil)
	wantStatus(t, view, http.StatusOK)
	wantStatus(t, f.send(t, "GET", sign+"/documents/"+docID, "", nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/signing/sst_unknown", "", nil), 404, "signing_link_invalid")
	wantProblem(t, f.send(t, "POST", sign+"/sign", "", `{"typed_name":""}`), 400, "invalid_typed_name")
	wantProblem(t, f.send(t, "POST", sign+"/sign", "", `{"typed_name":"Signer One","signature_png":"not base64!"}`), 400, "invalid_signature_png")
	wantStatus(t, f.send(t, "POST", sign+"/sign", "", `{"typed_name":"Signer One"}`, "Idempotency-Key", "sign-1"), http.StatusOK)
	wantProblem(t, f.send(t, "POST", sign+"/sign", "", `{"typed_name":"Signer One"}`), 409, "already_signed")

	secondSigner := f.signingTokens(t, f.key, envID)
	if len(secondSigner) != 1 {
		t.Fatalf("active signers after the first signature = %d; want 1", len(secondSigner))
	}
	done := f.send(t, "POST", "/v1/signing/"+secondSigner[0]+"/sign", "", `{"typed_name":"Signer Two"}`)
	wantStatus(t, done, http.StatusOK)
	if field(done.body, "envelope", "status") != "completed" {
		t.Errorf("envelope after the last signature = %q; want completed", field(done.body, "envelope", "status"))
	}
	wantProblem(t, f.send(t, "POST", env+"/void", f.ada, `{"reason":"late"}`), 409, "envelope_completed")

	// Rejection, in the organization, by a member who did not create it.
	orgWide := "X-Workspace-Id"
	rejected := f.send(t, "POST", "/v1/envelopes", f.ada, envelopeBody("NDA", "none"), orgWide, f.orgID)
	wantStatus(t, rejected, http.StatusCreated)
	rejID := field(rejected.body, "id")
	f.addDocument(t, f.ada, rejID, "nda.pdf", orgWide, f.orgID)
	wantStatus(t, f.send(t, "POST", "/v1/envelopes/"+rejID+"/send", f.ada, nil, orgWide, f.orgID), http.StatusOK)
	rejecter := f.signingTokens(t, f.ada, rejID, orgWide, f.orgID)
	wantProblem(t, f.send(t, "POST", "/v1/signing/"+rejecter[0]+"/reject", "", `{"reason":""}`), 400, "invalid_reason")
	wantStatus(t, f.send(t, "POST", "/v1/signing/"+rejecter[0]+"/reject", "", `{"reason":"Wrong terms."}`), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/signing/"+rejecter[0], "", nil), 409, "envelope_rejected")

	member := f.send(t, "POST", "/v1/organizations/"+f.orgID+"/invitations", f.ada, `{"email":"carol@example.com"}`)
	wantStatus(t, member, http.StatusCreated)
	wantStatus(t, f.accept(t, f.carol, member, "carol@example.com"), http.StatusOK)
	draft := f.send(t, "POST", "/v1/envelopes", f.ada, `{"title":"Org draft"}`, orgWide, f.orgID)
	wantStatus(t, draft, http.StatusCreated)
	wantProblem(t, f.send(t, "PATCH", "/v1/envelopes/"+field(draft.body, "id"), f.carol, `{"title":"Mine now"}`, orgWide, f.orgID), 403, "not_envelope_sender")
	wantStatus(t, f.send(t, "DELETE", "/v1/envelopes/"+field(draft.body, "id"), f.ada, nil, orgWide, f.orgID), http.StatusNoContent)

	// Voiding, and then a send that Dan's single credit cannot pay for.
	voided := f.send(t, "POST", "/v1/envelopes", f.dan, envelopeBody("Loan", "all"))
	wantStatus(t, voided, http.StatusCreated)
	voidID := field(voided.body, "id")
	f.addDocument(t, f.dan, voidID, "loan.pdf")
	wantStatus(t, f.send(t, "POST", "/v1/envelopes/"+voidID+"/send", f.dan, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/envelopes/"+voidID+"/signing-links", f.dan, nil), 409, "signing_links_emailed")
	wantProblem(t, f.send(t, "POST", "/v1/envelopes/"+voidID+"/void", f.dan, `{}`), 400, "invalid_reason")
	wantStatus(t, f.send(t, "POST", "/v1/envelopes/"+voidID+"/void", f.dan, `{"reason":"Terms changed."}`, "Idempotency-Key", "void-1"), http.StatusOK)
	wantProblem(t, f.send(t, "POST", "/v1/envelopes/"+voidID+"/void", f.dan, `{"reason":"Again."}`), 409, "envelope_voided")

	unpaid := f.send(t, "POST", "/v1/envelopes", f.dan, envelopeBody("Second loan", "none"))
	wantStatus(t, unpaid, http.StatusCreated)
	f.addDocument(t, f.dan, field(unpaid.body, "id"), "loan2.pdf")
	wantProblem(t, f.send(t, "POST", "/v1/envelopes/"+field(unpaid.body, "id")+"/send", f.dan, nil), 402, "insufficient_credits")
}

func (f *flow) notifications(t *testing.T) {
	delivered := f.deliverOutbox(t)
	if delivered == 0 {
		t.Fatal("the outbox holds no events after the flow")
	}

	list := f.send(t, "GET", "/v1/notifications", f.ada, nil)
	wantStatus(t, list, http.StatusOK)
	if len(items(list)) == 0 {
		t.Fatalf("ada has no notifications after the flow: %s", list.raw)
	}
	wantStatus(t, f.send(t, "GET", "/v1/notifications?unread=true&limit=2", f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "GET", "/v1/notifications?unread=maybe", f.ada, nil), 400, "invalid_unread")
	wantStatus(t, f.send(t, "GET", "/v1/notifications/unread-count", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "POST", "/v1/notifications/"+field(items(list)[0], "id")+"/read", f.ada, nil), http.StatusOK)
	wantProblem(t, f.send(t, "POST", "/v1/notifications/"+ids.New(ids.Notification)+"/read", f.ada, nil), 404, "notification_not_found")
	wantStatus(t, f.send(t, "POST", "/v1/notifications/read-all", f.ada, nil), http.StatusOK)

	wantStatus(t, f.send(t, "GET", "/v1/notification-preferences", f.ada, nil), http.StatusOK)
	wantStatus(t, f.send(t, "PATCH", "/v1/notification-preferences", f.ada, `{"envelope.signed":false}`), http.StatusOK)
	wantProblem(t, f.send(t, "PATCH", "/v1/notification-preferences", f.ada, `{"envelope.sent":false}`), 400, "unknown_notification_type")
	wantProblem(t, f.send(t, "PATCH", "/v1/notification-preferences", f.ada, `{}`), 400, "empty_preferences")
}

func (f *flow) plumbing(t *testing.T) {
	wantProblem(t, f.send(t, "GET", "/v1/nothing-here", "", nil), 404, "route_not_found")
	wantProblem(t, f.send(t, "DELETE", "/v1/me", f.ada, nil), 405, "method_not_allowed")
	wantProblem(t, f.send(t, "PUT", "/v1/envelopes", f.ada, `{}`), 405, "method_not_allowed")
	doc := f.send(t, "GET", "/v1/openapi.json", "", nil)
	wantStatus(t, doc, http.StatusOK)
	if !bytes.Contains(doc.raw, []byte(`"openapi":"3.1.0"`)) {
		t.Errorf("GET /v1/openapi.json does not serve the document: %.200s", doc.raw)
	}
}
