package orgs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestCreateWritesOrgOwnerAndWorkspaceItems(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")

	res := f.do(t, ada.ID, http.MethodPost, "/v1/organizations", `{"name":"  Analytical Engines  "}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create status = %d; want 201: %s", res.status, res.raw)
	}
	orgID, _ := res.body["id"].(string)
	if !ids.Valid(ids.Organization, orgID) {
		t.Fatalf("id = %q; want an org_ id", orgID)
	}
	if got := res.body["name"]; got != "Analytical Engines" {
		t.Errorf("name = %v; want the trimmed name", got)
	}
	if got := res.body["role"]; got != authn.RoleOwner {
		t.Errorf("role = %v; want owner", got)
	}
	if got := res.body["created_by"]; got != ada.ID {
		t.Errorf("created_by = %v; want %s", got, ada.ID)
	}

	org := f.getOrg(t, orgID)
	if org.OwnerCount != 1 {
		t.Errorf("owner_count = %d; want 1", org.OwnerCount)
	}
	if role := f.roleOf(t, orgID, ada.ID); role != authn.RoleOwner {
		t.Errorf("creator's role = %q; want owner", role)
	}
	var wallet walletItem
	if err := f.store.Get(context.Background(), store.Key{PK: store.OrgPK(orgID), SK: "WALLET"}, &wallet); err != nil {
		t.Errorf("workspace item from the hook: %v", err)
	}
}

func TestCreateInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	before := f.countItems(t)

	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"empty name", `{"name":""}`, http.StatusBadRequest, "invalid_name"},
		{"blank name", `{"name":"   "}`, http.StatusBadRequest, "invalid_name"},
		{"missing name", `{}`, http.StatusBadRequest, "invalid_name"},
		{"name too long", `{"name":"` + strings.Repeat("x", MaxNameLength+1) + `"}`, http.StatusBadRequest, "invalid_name"},
		{"name with newline", `{"name":"a\nb"}`, http.StatusBadRequest, "invalid_name"},
		{"unknown field", `{"name":"Acme","plan":"gold"}`, http.StatusBadRequest, "unknown_field"},
		{"wrong type", `{"name":42}`, http.StatusBadRequest, "wrong_type"},
		{"not json", `name=Acme`, http.StatusBadRequest, "malformed_json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(t, ada.ID, http.MethodPost, "/v1/organizations", tc.body)
			if res.status != tc.status {
				t.Errorf("status = %d; want %d: %s", res.status, tc.status, res.raw)
			}
			if got := res.body["code"]; got != tc.code {
				t.Errorf("code = %v; want %s", got, tc.code)
			}
		})
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items after rejected creates = %d; want %d", after, before)
	}
}

func TestCreateNameOfMaxLengthAccepted(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	name := strings.Repeat("é", MaxNameLength)

	org, err := f.svc.Create(context.Background(), ada.ID, name)
	if err != nil {
		t.Fatalf("create with %d characters: %v", MaxNameLength, err)
	}
	if org.Name != name {
		t.Errorf("name = %q; want it unchanged", org.Name)
	}
}

func TestRenameChangesNameAndKeepsOwners(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Old Name")
	f.clock.Advance(1000)

	res := f.do(t, ada.ID, http.MethodPatch, "/v1/organizations/"+org.ID, `{"name":"New Name"}`)
	if res.status != http.StatusOK {
		t.Fatalf("rename status = %d; want 200: %s", res.status, res.raw)
	}
	stored := f.getOrg(t, org.ID)
	if stored.Name != "New Name" {
		t.Errorf("stored name = %q; want New Name", stored.Name)
	}
	if stored.OwnerCount != 1 {
		t.Errorf("owner_count = %d; want 1", stored.OwnerCount)
	}
	if stored.UpdatedAt == stored.CreatedAt {
		t.Errorf("updated_at = created_at = %s; want it moved on", stored.UpdatedAt)
	}
}

func TestRenameInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")
	before := f.countItems(t)

	for _, body := range []string{`{"name":""}`, `{"name":"` + strings.Repeat("n", 101) + `"}`, `{"name":"Acme 2","owner":"x"}`} {
		res := f.do(t, ada.ID, http.MethodPatch, "/v1/organizations/"+org.ID, body)
		if res.status != http.StatusBadRequest {
			t.Errorf("PATCH %s status = %d; want 400", body, res.status)
		}
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if name := f.getOrg(t, org.ID).Name; name != "Acme" {
		t.Errorf("name = %q; want it unchanged", name)
	}
}

func TestListWorkspacesPersonalThenOrganizations(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	var orgIDs []string
	for i := range 3 {
		orgIDs = append(orgIDs, f.org(t, ada.ID, fmt.Sprintf("Org %d", i)).ID)
	}
	bobs := f.org(t, bob.ID, "Bob's")
	f.join(t, bobs.ID, bob.ID, ada, authn.RoleAdmin)

	var got []Workspace
	cursor := ""
	for page := 0; ; page++ {
		list, next, err := f.svc.ListWorkspaces(context.Background(), ada.ID, 2, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		got = append(got, list...)
		if next == "" {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("listing does not end")
		}
	}

	if len(got) != 5 {
		t.Fatalf("workspaces = %d (%+v); want personal + 4 organizations", len(got), got)
	}
	if got[0] != (Workspace{ID: ada.ID, Type: WorkspacePersonal, Name: "Ada"}) {
		t.Errorf("first workspace = %+v; want the personal one", got[0])
	}
	roles := map[string]string{}
	names := map[string]string{}
	for _, w := range got[1:] {
		if w.Type != WorkspaceOrganization {
			t.Errorf("workspace %s type = %q; want organization", w.ID, w.Type)
		}
		roles[w.ID] = w.Role
		names[w.ID] = w.Name
	}
	for i, id := range orgIDs {
		if roles[id] != authn.RoleOwner || names[id] != fmt.Sprintf("Org %d", i) {
			t.Errorf("workspace %s = %q %q; want Org %d as owner", id, names[id], roles[id], i)
		}
	}
	if roles[bobs.ID] != authn.RoleAdmin || names[bobs.ID] != "Bob's" {
		t.Errorf("workspace %s = %q %q; want Bob's as admin", bobs.ID, names[bobs.ID], roles[bobs.ID])
	}
}

func TestListWorkspacesRejectsForeignCursor(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	for range 2 {
		f.org(t, bob.ID, "Bob's")
	}
	_, next, err := f.svc.ListWorkspaces(context.Background(), bob.ID, 1, "")
	if err != nil || next == "" {
		t.Fatalf("bob's first page: next = %q, err = %v; want a cursor", next, err)
	}

	_, _, err = f.svc.ListWorkspaces(context.Background(), ada.ID, 1, next)
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("ada with bob's cursor: err = %v; want ErrInvalidCursor", err)
	}
	res := f.do(t, ada.ID, http.MethodGet, "/v1/workspaces?cursor="+next, "")
	if res.status != http.StatusBadRequest || res.body["code"] != "invalid_cursor" {
		t.Errorf("GET with bob's cursor = %d %v; want 400 invalid_cursor", res.status, res.body["code"])
	}
}

func TestRoleOfMember(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)

	cases := []struct {
		name   string
		orgID  string
		userID string
		want   string
	}{
		{"owner", org.ID, ada.ID, authn.RoleOwner},
		{"member", org.ID, bob.ID, authn.RoleMember},
		{"unknown organization", ids.New(ids.Organization), ada.ID, ""},
		{"malformed id", "org_nope", ada.ID, ""},
		{"user id as organization", ada.ID, ada.ID, ""},
		{"empty id", "", ada.ID, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role, err := f.svc.Role(context.Background(), tc.orgID, tc.userID)
			if tc.want == "" {
				wantCode(t, err, apperr.NotFound, "workspace_not_found")
				return
			}
			if err != nil || role != tc.want {
				t.Errorf("Role = %q, %v; want %q", role, err, tc.want)
			}
		})
	}

	outsider := f.user(t, "Eve", "eve@example.com")
	_, err := f.svc.Role(context.Background(), org.ID, outsider.ID)
	wantCode(t, err, apperr.NotFound, "workspace_not_found")
}
