package app

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestIdempotencyKeyReplaysFirstResponse(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")

	create := func(body string) response {
		return api.do("POST", "/v1/organizations", token, strings.NewReader(body), "Idempotency-Key", "create-acme-1")
	}
	first := create(`{"name":"Acme"}`)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	again := create(`{"name":"Acme"}`)
	if again.status != http.StatusCreated || again.body["id"] != first.body["id"] {
		t.Errorf("replay = %d id %v; want 201 id %v", again.status, again.body["id"], first.body["id"])
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay lacks Idempotent-Replayed: true")
	}
	wantProblem(t, create(`{"name":"Other"}`), http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency-Key")

	workspaces := api.json("GET", "/v1/workspaces", token, "")
	if n := len(workspaces.body["data"].([]any)); n != 2 {
		t.Errorf("workspaces = %d; want personal plus one organization", n)
	}
}

func TestIdempotencyKeyConcurrentRequestsCreateOnce(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")

	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := api.do("POST", "/v1/organizations", token, strings.NewReader(`{"name":"Acme"}`), "Idempotency-Key", "burst")
			statuses[i] = res.status
		}()
	}
	wg.Wait()
	for _, s := range statuses {
		if s != http.StatusCreated && s != http.StatusConflict {
			t.Errorf("status %d; want 201 (first or replayed) or 409 (in progress)", s)
		}
	}
	workspaces := api.json("GET", "/v1/workspaces", token, "")
	if got := len(workspaces.body["data"].([]any)); got != 2 {
		t.Errorf("workspaces after %d concurrent creates with one key = %d; want 2", n, got)
	}
}

func TestIdempotencyKeyScopedToCredential(t *testing.T) {
	api := newTestAPI(t)
	_, ada := api.signup("ada@example.com", "a long enough password")
	_, grace := api.signup("grace@example.com", "a long enough password")

	a := api.do("POST", "/v1/organizations", ada, strings.NewReader(`{"name":"Acme"}`), "Idempotency-Key", "same")
	g := api.do("POST", "/v1/organizations", grace, strings.NewReader(`{"name":"Acme"}`), "Idempotency-Key", "same")
	if a.status != http.StatusCreated || g.status != http.StatusCreated || a.body["id"] == g.body["id"] {
		t.Errorf("two users with one key: %d %v and %d %v; want two organizations", a.status, a.body["id"], g.status, g.body["id"])
	}
}

func TestIdempotencyKeyRejectedWhereResponseHoldsSecret(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")
	res := api.do("POST", "/v1/api-keys", token, strings.NewReader(`{"name":"ci"}`), "Idempotency-Key", "k1")
	wantProblem(t, res, http.StatusBadRequest, "idempotency_unsupported", "Idempotency-Key")

	bad := api.do("POST", "/v1/organizations", token, strings.NewReader(`{"name":"Acme"}`), "Idempotency-Key", "has space")
	wantProblem(t, bad, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key")
}

func TestIdempotencyKeyScopedToWorkspace(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")
	org := api.json("POST", "/v1/organizations", token, `{"name":"Acme"}`)
	orgID := org.body["id"].(string)

	inOrg := api.do("POST", "/v1/billing/purchases", token, strings.NewReader(`{"pack_id":"starter"}`), "Idempotency-Key", "buy-1", "X-Workspace-Id", orgID)
	personal := api.do("POST", "/v1/billing/purchases", token, strings.NewReader(`{"pack_id":"starter"}`), "Idempotency-Key", "buy-1")
	if inOrg.status != http.StatusCreated || personal.status != http.StatusCreated {
		t.Fatalf("purchases: %d %s / %d %s", inOrg.status, inOrg.raw, personal.status, personal.raw)
	}
	if personal.body["id"] == inOrg.body["id"] || personal.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the personal purchase replayed the organization's %v", inOrg.body["id"])
	}
	if personal.body["workspace_id"] == orgID {
		t.Errorf("the personal purchase belongs to %v", personal.body["workspace_id"])
	}
}

func TestIdempotencyKeySameCallerAnyHeaderForm(t *testing.T) {
	api := newTestAPI(t)
	_, token := api.signup("ada@example.com", "a long enough password")
	var ids []any
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "BEARER " + token} {
		res := api.do("POST", "/v1/organizations", "", strings.NewReader(`{"name":"Scope"}`), "Idempotency-Key", "k-1", "Authorization", auth)
		if res.status != http.StatusCreated {
			t.Fatalf("%q: %d %s", auth[:6], res.status, res.raw)
		}
		ids = append(ids, res.body["id"])
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("one caller and key created %v; want one organization", ids)
	}

	empty := api.do("POST", "/v1/organizations", token, strings.NewReader(`{"name":"Empty"}`), "Idempotency-Key", "")
	wantProblem(t, empty, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key")
}
