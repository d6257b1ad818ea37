package billing

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// withTestCaller replaces the authentication middleware in tests. It reads
// the caller from X-Test-* headers.
func withTestCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &authn.Caller{
			Kind:        r.Header.Get("X-Test-Kind"),
			UserID:      r.Header.Get("X-Test-User"),
			WorkspaceID: r.Header.Get("X-Test-Workspace"),
			Role:        r.Header.Get("X-Test-Role"),
		}
		if c.Kind == "" {
			c.Kind = authn.KindSession
		}
		next.ServeHTTP(w, r.WithContext(authn.WithCaller(r.Context(), c)))
	})
}

type apiClient struct {
	t   *testing.T
	url string
}

func newAPI(t *testing.T, f *fixture) *apiClient {
	t.Helper()
	mux, err := httpapi.NewMux(Routes(Handlers{Service: f.svc}, withTestCaller, withTestCaller))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil))
	t.Cleanup(srv.Close)
	return &apiClient{t: t, url: srv.URL}
}

// caller is who a test request comes from.
type caller struct {
	kind, user, workspace, role string
}

type apiResponse struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (a *apiClient) do(c caller, method, path, body string, headers ...string) apiResponse {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}

	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Test-Kind", c.kind)
	req.Header.Set("X-Test-User", c.user)
	req.Header.Set("X-Test-Workspace", c.workspace)
	req.Header.Set("X-Test-Role", c.role)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}

	out := apiResponse{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			a.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return out
}

func wantProblem(t *testing.T, resp apiResponse, status int, code string) {
	t.Helper()
	if resp.status != status || resp.body["code"] != code {
		t.Fatalf("response = %d %v; want %d with code %q", resp.status, resp.body, status, code)
	}
	if ct := resp.header.Get("Content-Type"); ct != httpapi.ProblemContentType {
		t.Errorf("Content-Type = %q; want %q", ct, httpapi.ProblemContentType)
	}
	if detail, _ := resp.body["detail"].(string); detail == "" {
		t.Errorf("problem has no detail: %v", resp.body)
	}
}

func TestRoutesTable(t *testing.T) {
	routes := Routes(Handlers{}, withTestCaller, withTestCaller)
	kebab := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	names := map[string]bool{}
	patterns := map[string]bool{}
	for _, rt := range routes {
		if !kebab.MatchString(rt.Name) {
			t.Errorf("route name %q is not kebab case", rt.Name)
		}
		if names[rt.Name] || patterns[rt.Pattern()] {
			t.Errorf("route %s %s appears twice", rt.Name, rt.Pattern())
		}
		names[rt.Name], patterns[rt.Pattern()] = true, true
		if rt.WritesTable {
			t.Errorf("route %s sets WritesTable; no billing GET writes the table", rt.Name)
		}
	}
	for _, want := range []string{
		"GET /v1/billing/wallet", "GET /v1/billing/ledger", "PATCH /v1/billing/settings", "GET /v1/billing/packs",
		"POST /v1/billing/purchases", "GET /v1/billing/purchases", "GET /v1/billing/purchases/{id}",
		"GET /v1/billing/invoices/{id}", "POST /v1/billing/stripe/webhook",
	} {
		if !patterns[want] {
			t.Errorf("route %s is missing", want)
		}
	}
	if len(routes) != 9 {
		t.Errorf("%d routes; want 9", len(routes))
	}
}

func TestWalletAndLedgerHTTP(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	api := newAPI(t, f)
	org := f.newOrg(t, "Analytical Engines Ltd")
	user := f.newUser(t, "Ada Lovelace", "ada@example.com")
	for _, cost := range []int64{1, 2, 3} {
		f.clock.Advance(time.Second)
		if _, err := f.svc.DebitWith(t.Context(), org, cost, "envelope_send", "env_test"); err != nil {
			t.Fatal(err)
		}
	}

	// API keys and members read the wallet and the ledger.
	for _, c := range []caller{
		{kind: authn.KindAPIKey, user: user, workspace: org},
		{kind: authn.KindSession, user: user, workspace: org, role: authn.RoleMember},
	} {
		resp := api.do(c, http.MethodGet, "/v1/billing/wallet", "")
		if resp.status != http.StatusOK || resp.body["balance"] != float64(4) || resp.body["low_balance_threshold"] != float64(5) || resp.body["below_threshold"] != true {
			t.Errorf("%s wallet = %d %v; want balance 4 below threshold 5", c.kind, resp.status, resp.body)
		}
	}

	member := caller{kind: authn.KindSession, user: user, workspace: org, role: authn.RoleMember}
	var amounts []float64
	cursor := ""
	for page := 0; page < 10; page++ {
		resp := api.do(member, http.MethodGet, "/v1/billing/ledger?limit=2&cursor="+cursor, "")
		if resp.status != http.StatusOK {
			t.Fatalf("ledger page = %d %s", resp.status, resp.raw)
		}
		for _, e := range resp.body["data"].([]any) {
			amounts = append(amounts, e.(map[string]any)["amount"].(float64))
		}
		next, _ := resp.body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if got, want := amounts, []float64{-3, -2, -1, 10}; !equalFloats(got, want) {
		t.Errorf("ledger amounts = %v; want newest first %v", got, want)
	}

	wantProblem(t, api.do(member, http.MethodGet, "/v1/billing/ledger?cursor=bogus", ""), http.StatusBadRequest, "invalid_cursor")
	wantProblem(t, api.do(member, http.MethodGet, "/v1/billing/ledger?limit=0", ""), http.StatusBadRequest, "invalid_limit")
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUpdateSettingsHTTP(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	api := newAPI(t, f)
	org := f.newOrg(t, "Analytical Engines Ltd")
	user := f.newUser(t, "Ada Lovelace", "ada@example.com")
	admin := caller{kind: authn.KindSession, user: user, workspace: org, role: authn.RoleAdmin}
	member := caller{kind: authn.KindSession, user: user, workspace: org, role: authn.RoleMember}

	rejected := []struct {
		name   string
		caller caller
		body   string
		status int
		code   string
	}{
		{"negative threshold", admin, `{"low_balance_threshold": -1}`, http.StatusBadRequest, "invalid_threshold"},
		{"fractional threshold", admin, `{"low_balance_threshold": 1.5}`, http.StatusBadRequest, "wrong_type"},
		{"string threshold", admin, `{"low_balance_threshold": "5"}`, http.StatusBadRequest, "wrong_type"},
		{"missing threshold", admin, `{}`, http.StatusBadRequest, "missing_field"},
		{"unknown field", admin, `{"low_balance_threshold": 3, "currency": "USD"}`, http.StatusBadRequest, "unknown_field"},
		{"member", member, `{"low_balance_threshold": 3}`, http.StatusForbidden, "billing_forbidden"},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			before := f.countItems(t)
			wantProblem(t, api.do(tt.caller, http.MethodPatch, "/v1/billing/settings", tt.body), tt.status, tt.code)
			if got := f.rawWallet(t, org); numberAttr(t, got, "low_balance_threshold") != 5 || numberAttr(t, got, "version") != 1 {
				t.Errorf("wallet changed: %v", got)
			}
			if got := f.countItems(t); got != before {
				t.Errorf("table has %d items; want %d", got, before)
			}
		})
	}

	resp := api.do(admin, http.MethodPatch, "/v1/billing/settings", `{"low_balance_threshold": 20}`)
	if resp.status != http.StatusOK || resp.body["low_balance_threshold"] != float64(20) || resp.body["below_threshold"] != true {
		t.Fatalf("update = %d %v; want threshold 20, below", resp.status, resp.body)
	}
	checkLowBalance(t, f, org, true)
}

func TestPurchasesHTTP(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	api := newAPI(t, f)
	org := f.newOrg(t, "Analytical Engines Ltd")
	ada := f.newUser(t, "Ada Lovelace", "ada@example.com")
	bob := f.newUser(t, "Bob Babbage", "bob@example.com")
	owner := caller{kind: authn.KindSession, user: ada, workspace: org, role: authn.RoleOwner}
	member := caller{kind: authn.KindSession, user: bob, workspace: org, role: authn.RoleMember}
	bobPersonal := caller{kind: authn.KindSession, user: bob, workspace: bob}

	packs := api.do(member, http.MethodGet, "/v1/billing/packs", "")
	if packs.status != http.StatusOK || len(packs.body["data"].([]any)) != 3 {
		t.Fatalf("packs = %d %s; want the 3 configured packs", packs.status, packs.raw)
	}
	first := packs.body["data"].([]any)[0].(map[string]any)
	if first["id"] != "starter" || first["credits"] != float64(50) || first["price"] != float64(2500) || first["currency"] != "USD" {
		t.Errorf("first pack = %v; want starter, 50 credits, 2500 USD", first)
	}

	before := f.countItems(t)
	wantProblem(t, api.do(owner, http.MethodPost, "/v1/billing/purchases", `{"pack_id": "platinum"}`), http.StatusBadRequest, "unknown_pack")
	wantProblem(t, api.do(owner, http.MethodPost, "/v1/billing/purchases", `{"pack": "starter"}`), http.StatusBadRequest, "unknown_field")
	wantProblem(t, api.do(member, http.MethodPost, "/v1/billing/purchases", `{"pack_id": "starter"}`), http.StatusForbidden, "billing_forbidden")
	if got := f.countItems(t); got != before {
		t.Errorf("table has %d items after rejected purchases; want %d", got, before)
	}

	created := api.do(owner, http.MethodPost, "/v1/billing/purchases", `{"pack_id": "starter"}`)
	if created.status != http.StatusCreated || created.body["status"] != StatusCompleted || created.body["test"] != true {
		t.Fatalf("create = %d %s; want 201 completed test purchase", created.status, created.raw)
	}
	id := created.body["id"].(string)
	if loc := created.header.Get("Location"); loc != "/v1/billing/purchases/"+id {
		t.Errorf("Location = %q; want /v1/billing/purchases/%s", loc, id)
	}

	list := api.do(owner, http.MethodGet, "/v1/billing/purchases", "")
	if list.status != http.StatusOK || len(list.body["data"].([]any)) != 1 {
		t.Errorf("list = %d %s; want the one purchase", list.status, list.raw)
	}
	got := api.do(owner, http.MethodGet, "/v1/billing/purchases/"+id, "")
	if got.status != http.StatusOK || got.body["invoice_number"] != "INV-000001" {
		t.Errorf("get = %d %s; want the purchase with INV-000001", got.status, got.raw)
	}

	inv := api.do(owner, http.MethodGet, "/v1/billing/invoices/"+id, "")
	if inv.status != http.StatusOK || inv.header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(inv.raw, []byte("%PDF-")) {
		t.Fatalf("invoice = %d %s; want a PDF", inv.status, inv.header.Get("Content-Type"))
	}
	if cd := inv.header.Get("Content-Disposition"); cd != `attachment; filename="invoice-INV-000001.pdf"` {
		t.Errorf("Content-Disposition = %q", cd)
	}

	wantProblem(t, api.do(member, http.MethodGet, "/v1/billing/purchases", ""), http.StatusForbidden, "billing_forbidden")
	wantProblem(t, api.do(member, http.MethodGet, "/v1/billing/invoices/"+id, ""), http.StatusForbidden, "billing_forbidden")
	// Bob's personal workspace does not hold the organization's purchase.
	wantProblem(t, api.do(bobPersonal, http.MethodGet, "/v1/billing/purchases/"+id, ""), http.StatusNotFound, "purchase_not_found")
	wantProblem(t, api.do(bobPersonal, http.MethodGet, "/v1/billing/invoices/"+id, ""), http.StatusNotFound, "purchase_not_found")
	wantProblem(t, api.do(owner, http.MethodGet, "/v1/billing/invoices/inv_nothing", ""), http.StatusNotFound, "purchase_not_found")
}

func TestStripeWebhookHTTP(t *testing.T) {
	f, fs := newStripeFixture(t)
	api := newAPI(t, f)
	ws := f.newUser(t, "Ada Lovelace", "ada@example.com")
	created := api.do(caller{kind: authn.KindSession, user: ws, workspace: ws}, http.MethodPost, "/v1/billing/purchases", `{"pack_id": "starter"}`)
	if created.status != http.StatusCreated || created.body["status"] != StatusPending || created.body["checkout_url"] == nil {
		t.Fatalf("create = %d %s; want a pending purchase with checkout_url", created.status, created.raw)
	}
	id := created.body["id"].(string)
	payload := fs.paidEvent(t, "checkout.session.completed", id, nil)

	forged := api.do(caller{}, http.MethodPost, "/v1/billing/stripe/webhook", string(payload), "Stripe-Signature", signStripe(payload, "whsec_attacker", time.Now()))
	wantProblem(t, forged, http.StatusBadRequest, "invalid_signature")

	ok := api.do(caller{}, http.MethodPost, "/v1/billing/stripe/webhook", string(payload), "Stripe-Signature", signStripe(payload, testWebhookSecret, time.Now()))
	if ok.status != http.StatusOK || ok.body["action"] != "completed" || ok.body["purchase_id"] != id {
		t.Fatalf("webhook = %d %s; want 200 completed", ok.status, ok.raw)
	}
	if got := f.balance(t, ws); got != 60 {
		t.Errorf("balance = %d; want 60", got)
	}
}
