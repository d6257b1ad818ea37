package orgs

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
)

// matrixOrg is an organization with one user of each role, two more
// members to act on, and a pending invitation.
type matrixOrg struct {
	id           string
	invitationID string
}

type matrixUsers struct {
	owner, admin, member, outsider, targetMember, targetAdmin accounts.User
}

func (f *fixture) matrixUsers(t *testing.T) matrixUsers {
	return matrixUsers{
		owner:        f.user(t, "Owner", "owner@example.com"),
		admin:        f.user(t, "Admin", "admin@example.com"),
		member:       f.user(t, "Member", "member@example.com"),
		outsider:     f.user(t, "Outsider", "outsider@example.com"),
		targetMember: f.user(t, "Target Member", "target.member@example.com"),
		targetAdmin:  f.user(t, "Target Admin", "target.admin@example.com"),
	}
}

func (f *fixture) matrixOrg(t *testing.T, u matrixUsers) matrixOrg {
	t.Helper()
	org := f.org(t, u.owner.ID, "Matrix")
	f.join(t, org.ID, u.owner.ID, u.admin, authn.RoleAdmin)
	f.join(t, org.ID, u.owner.ID, u.member, authn.RoleMember)
	f.join(t, org.ID, u.owner.ID, u.targetMember, authn.RoleMember)
	f.join(t, org.ID, u.owner.ID, u.targetAdmin, authn.RoleAdmin)
	inv, err := f.svc.Invite(context.Background(), u.owner.ID, org.ID, InviteInput{Email: "pending@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return matrixOrg{id: org.ID, invitationID: inv.ID}
}

// TestRoleMatrix runs every organization action as an owner, an admin, a
// member and a non-member, each on a fresh organization, in parallel. A
// rejected request must change nothing.
func TestRoleMatrix(t *testing.T) {
	f := newFixture(t)
	u := f.matrixUsers(t)

	type request struct{ method, path, body string }
	actions := []struct {
		name string
		req  func(o matrixOrg, self string) request
		// want holds the statuses for owner, admin, member and non-member.
		want [4]int
	}{
		{"get organization", func(o matrixOrg, _ string) request {
			return request{http.MethodGet, "/v1/organizations/" + o.id, ""}
		}, [4]int{200, 200, 200, 404}},
		{"rename organization", func(o matrixOrg, _ string) request {
			return request{http.MethodPatch, "/v1/organizations/" + o.id, `{"name":"Renamed"}`}
		}, [4]int{200, 200, 403, 404}},
		{"list members", func(o matrixOrg, _ string) request {
			return request{http.MethodGet, "/v1/organizations/" + o.id + "/members", ""}
		}, [4]int{200, 200, 200, 404}},
		{"change a member's role", func(o matrixOrg, _ string) request {
			return request{http.MethodPatch, "/v1/organizations/" + o.id + "/members/" + u.targetMember.ID, `{"role":"admin"}`}
		}, [4]int{200, 403, 403, 404}},
		{"remove a member", func(o matrixOrg, _ string) request {
			return request{http.MethodDelete, "/v1/organizations/" + o.id + "/members/" + u.targetMember.ID, ""}
		}, [4]int{204, 204, 403, 404}},
		{"remove an admin", func(o matrixOrg, _ string) request {
			return request{http.MethodDelete, "/v1/organizations/" + o.id + "/members/" + u.targetAdmin.ID, ""}
		}, [4]int{204, 403, 403, 404}},
		{"leave", func(o matrixOrg, self string) request {
			return request{http.MethodDelete, "/v1/organizations/" + o.id + "/members/" + self, ""}
		}, [4]int{409, 204, 204, 404}},
		{"invite a member", func(o matrixOrg, _ string) request {
			return request{http.MethodPost, "/v1/organizations/" + o.id + "/invitations", `{"email":"new@example.com"}`}
		}, [4]int{201, 201, 403, 404}},
		{"invite an owner", func(o matrixOrg, _ string) request {
			return request{http.MethodPost, "/v1/organizations/" + o.id + "/invitations", `{"email":"new@example.com","role":"owner"}`}
		}, [4]int{201, 403, 403, 404}},
		{"list invitations", func(o matrixOrg, _ string) request {
			return request{http.MethodGet, "/v1/organizations/" + o.id + "/invitations", ""}
		}, [4]int{200, 200, 403, 404}},
		{"revoke an invitation", func(o matrixOrg, _ string) request {
			return request{http.MethodDelete, "/v1/organizations/" + o.id + "/invitations/" + o.invitationID, ""}
		}, [4]int{204, 204, 403, 404}},
	}
	callers := []struct {
		role string
		user accounts.User
	}{
		{authn.RoleOwner, u.owner},
		{authn.RoleAdmin, u.admin},
		{authn.RoleMember, u.member},
		{"non-member", u.outsider},
	}

	for _, a := range actions {
		for i, c := range callers {
			t.Run(a.name+" as "+c.role, func(t *testing.T) {
				t.Parallel()
				o := f.matrixOrg(t, u)
				req := a.req(o, c.user.ID)
				before := f.countOrgItems(t, o.id)

				res := f.do(t, c.user.ID, req.method, req.path, req.body)
				if res.status != a.want[i] {
					t.Fatalf("%s %s = %d; want %d: %s", req.method, req.path, res.status, a.want[i], res.raw)
				}
				if res.status >= 400 {
					if after := f.countOrgItems(t, o.id); after != before {
						t.Errorf("items after a rejected request = %d; want %d", after, before)
					}
				}
				switch res.status {
				case http.StatusForbidden:
					if res.body["code"] != "insufficient_role" || res.body["role"] != c.role {
						t.Errorf("problem = %v; want insufficient_role naming role %s", res.body, c.role)
					}
				case http.StatusNotFound:
					if res.body["code"] != "organization_not_found" {
						t.Errorf("problem code = %v; want organization_not_found", res.body["code"])
					}
				}
			})
		}
	}
}

// TestNonMemberGetsNotFoundEverywhere sends every organization route, as a
// user who is not a member, for a foreign organization, an unknown one and
// a malformed id, and expects the same 404 for each.
func TestNonMemberGetsNotFoundEverywhere(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	eve := f.user(t, "Eve", "eve@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)
	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.org(t, eve.ID, "Eve's own")
	before := f.countItems(t)

	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/organizations/{id}", ""},
		{http.MethodPatch, "/v1/organizations/{id}", `{"name":"Taken"}`},
		{http.MethodGet, "/v1/organizations/{id}/members", ""},
		{http.MethodPatch, "/v1/organizations/{id}/members/" + bob.ID, `{"role":"owner"}`},
		{http.MethodDelete, "/v1/organizations/{id}/members/" + bob.ID, ""},
		{http.MethodDelete, "/v1/organizations/{id}/members/" + eve.ID, ""},
		{http.MethodPost, "/v1/organizations/{id}/invitations", `{"email":"eve2@example.com","role":"owner"}`},
		{http.MethodGet, "/v1/organizations/{id}/invitations", ""},
		{http.MethodDelete, "/v1/organizations/{id}/invitations/" + inv.ID, ""},
	}
	for _, orgID := range []string{org.ID, ids.New(ids.Organization), "org_malformed", eve.ID} {
		for _, rt := range routes {
			path := strings.ReplaceAll(rt.path, "{id}", orgID)
			res := f.do(t, eve.ID, rt.method, path, rt.body)
			if res.status != http.StatusNotFound || res.body["code"] != "organization_not_found" {
				t.Errorf("%s %s = %d %v; want 404 organization_not_found", rt.method, path, res.status, res.body["code"])
			}
		}
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
}

func TestRoutesAllUseSession(t *testing.T) {
	type wrapped struct{ http.Handler }
	session := func(h http.Handler) http.Handler { return wrapped{h} }
	other := func(h http.Handler) http.Handler {
		t.Error("an organization route uses session-or-API-key authentication")
		return h
	}

	routes := Routes(Handlers{}, session, other)
	names := map[string]bool{}
	for _, rt := range routes {
		if _, ok := rt.Handler.(wrapped); !ok {
			t.Errorf("route %s is not behind session authentication", rt.Name)
		}
		if names[rt.Name] {
			t.Errorf("route name %s is used twice", rt.Name)
		}
		names[rt.Name] = true
		if rt.Method == http.MethodGet && rt.WritesTable {
			t.Errorf("GET route %s is marked as writing the table", rt.Name)
		}
	}
	if len(routes) != 13 {
		t.Errorf("routes = %d; want 13", len(routes))
	}
}

func TestAPIKeyCallerRejected(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")

	h := Handlers{Service: f.svc}
	req, _ := http.NewRequest(http.MethodGet, "/v1/organizations/"+org.ID, nil)
	req.SetPathValue("id", org.ID)
	req = req.WithContext(authn.WithCaller(req.Context(), &authn.Caller{Kind: authn.KindAPIKey, UserID: ada.ID, WorkspaceID: org.ID, Role: authn.RoleOwner}))
	err := h.GetOrganization(nil, req)
	if err == nil || !strings.Contains(err.Error(), "session_required") {
		t.Errorf("GetOrganization with an API key: %v; want session_required", err)
	}
}
