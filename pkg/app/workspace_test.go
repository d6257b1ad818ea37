package app

import (
	"net/http"

	"github.com/signsecure/signsecure/pkg/orgs"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// keyFlow signs up an owner and a member of one organization.
type keyFlow struct {
	api                   *testAPI
	ownerID, ownerToken   string
	memberID, memberToken string
	orgID                 string
}

func newKeyFlow(t *testing.T) *keyFlow {
	t.Helper()
	api := newTestAPI(t)
	f := &keyFlow{api: api}
	f.ownerID, f.ownerToken = api.signup("owner@example.com", "a long enough password")
	f.memberID, f.memberToken = api.signup("member@example.com", "a long enough password")

	org := api.json("POST", "/v1/organizations", f.ownerToken, `{"name":"Acme"}`)
	if org.status != http.StatusCreated {
		t.Fatalf("create organization: %d %s", org.status, org.raw)
	}
	f.orgID = org.body["id"].(string)

	inv := api.json("POST", "/v1/organizations/"+f.orgID+"/invitations", f.ownerToken, `{"email":"MEMBER@example.com","role":"member"}`)
	if inv.status != http.StatusCreated {
		t.Fatalf("invite: %d %s", inv.status, inv.raw)
	}
	invID := inv.body["id"].(string)
	wantProblem(t, api.json("POST", "/v1/me/invitations/"+invID+"/accept", f.memberToken, ""), http.StatusForbidden, "invalid_invitation_code", "code")
	code := orgs.InvitationCode(testSigningKey, invID, "member@example.com")
	acc := api.json("POST", "/v1/me/invitations/"+invID+"/accept", f.memberToken, `{"code":"`+code+`"}`)
	if acc.status != http.StatusOK {
		t.Fatalf("accept: %d %s", acc.status, acc.raw)
	}
	return f
}

func (f *keyFlow) inOrg(method, path, token, body string) response {
	f.api.t.Helper()
	return f.api.do(method, path, token, stringsReader(body), "X-Workspace-Id", f.orgID)
}

func TestOrganizationKeyWalkthrough(t *testing.T) {
	f := newKeyFlow(t)

	// A member cannot create an organization key; an owner can.
	wantProblem(t, f.inOrg("POST", "/v1/api-keys", f.memberToken, `{"name":"ci"}`), http.StatusForbidden, "insufficient_role", "")
	created := f.inOrg("POST", "/v1/api-keys", f.ownerToken, `{"name":"ci","rate_limit_per_minute":3}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", created.status, created.raw)
	}
	key := created.body["key"].(string)
	keyID := created.body["id"].(string)
	if created.body["workspace_id"] != f.orgID {
		t.Errorf("key workspace = %v; want %s", created.body["workspace_id"], f.orgID)
	}

	// The key acts in the organization, whatever user created it.
	ws := f.api.json("GET", "/v1/workspace", key, "")
	if ws.status != http.StatusOK || ws.body["workspace_id"] != f.orgID || ws.body["credential"] != "api_key" {
		t.Fatalf("GET /v1/workspace with the key: %d %s", ws.status, ws.raw)
	}
	if ws.header.Get("RateLimit-Limit") != "3" || ws.header.Get("RateLimit-Remaining") != "2" || ws.header.Get("RateLimit-Reset") == "" {
		t.Errorf("RateLimit headers = %q %q %q; want 3, 2 and a reset", ws.header.Get("RateLimit-Limit"), ws.header.Get("RateLimit-Remaining"), ws.header.Get("RateLimit-Reset"))
	}

	// A key never obeys X-Workspace-Id for another workspace.
	mismatch := f.api.do("GET", "/v1/workspace", key, nil, "X-Workspace-Id", f.ownerID)
	wantProblem(t, mismatch, http.StatusBadRequest, "workspace_mismatch", "X-Workspace-Id")

	// Keys do not manage keys.
	wantProblem(t, f.api.json("GET", "/v1/api-keys", key, ""), http.StatusUnauthorized, "session_required", "")

	// Over the limit: 429 with Retry-After and the headers.
	var last response
	for range 3 {
		last = f.api.json("GET", "/v1/workspace", key, "")
	}
	wantProblem(t, last, http.StatusTooManyRequests, "rate_limit_exceeded", "")
	if last.header.Get("Retry-After") == "" || last.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("429 headers: Retry-After %q, RateLimit-Remaining %q", last.header.Get("Retry-After"), last.header.Get("RateLimit-Remaining"))
	}

	// The personal list never shows the organization key; the org list does.
	personal := f.api.json("GET", "/v1/api-keys", f.ownerToken, "")
	if n := len(personal.body["data"].([]any)); n != 0 {
		t.Errorf("personal key list has %d keys; want 0", n)
	}
	orgList := f.inOrg("GET", "/v1/api-keys", f.ownerToken, "")
	if n := len(orgList.body["data"].([]any)); n != 1 {
		t.Errorf("organization key list has %d keys; want 1", n)
	}

	// A member cannot revoke; the owner can, and the key stops at once.
	wantProblem(t, f.inOrg("DELETE", "/v1/api-keys/"+keyID, f.memberToken, ""), http.StatusForbidden, "insufficient_role", "")
	if res := f.inOrg("DELETE", "/v1/api-keys/"+keyID, f.ownerToken, ""); res.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.status, res.raw)
	}
	wantProblem(t, f.api.json("GET", "/v1/workspace", key, ""), http.StatusUnauthorized, "invalid_api_key", "")
}

func TestWorkspaceHeaderForeignOrganization(t *testing.T) {
	f := newKeyFlow(t)
	_, outsider := f.api.signup("outsider@example.com", "a long enough password")

	for _, path := range []string{"/v1/api-keys", "/v1/workspace", "/v1/me"} {
		res := f.api.do("GET", path, outsider, nil, "X-Workspace-Id", f.orgID)
		wantProblem(t, res, http.StatusNotFound, "workspace_not_found", "X-Workspace-Id")
	}
	res := f.api.do("GET", "/v1/workspace", outsider, nil, "X-Workspace-Id", f.ownerID)
	wantProblem(t, res, http.StatusNotFound, "workspace_not_found", "X-Workspace-Id")
}

func TestKeyRateLimitUnderParallelRequests(t *testing.T) {
	f := newKeyFlow(t)
	const limit, requests = 5, 20
	created := f.api.json("POST", "/v1/api-keys", f.ownerToken, `{"name":"burst","rate_limit_per_minute":`+strconv.Itoa(limit)+`}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", created.status, created.raw)
	}
	key := created.body["key"].(string)

	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := f.api.json("GET", "/v1/workspace", key, "")
			switch res.status {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				t.Errorf("unexpected status %d: %s", res.status, res.raw)
			}
		}()
	}
	wg.Wait()
	// The window may roll over during the burst, which allows up to
	// another limit's worth of successes.
	if got := int(ok.Load()); got < limit || got > 2*limit {
		t.Errorf("successes = %d of %d; want %d (or at most %d across a minute boundary)", got, requests, limit, 2*limit)
	}
	if int(ok.Load()+limited.Load()) != requests {
		t.Errorf("ok %d + limited %d != %d", ok.Load(), limited.Load(), requests)
	}
}
