package orgs

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
)

func TestListMembersShowsNamesAndPaginates(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")
	want := map[string]Member{ada.ID: {UserID: ada.ID, Name: "Ada", Email: "ada@example.com", Role: authn.RoleOwner}}
	for i := range 4 {
		u := f.user(t, fmt.Sprintf("User %d", i), fmt.Sprintf("User%d@Example.com", i))
		f.join(t, org.ID, ada.ID, u, authn.RoleMember)
		want[u.ID] = Member{UserID: u.ID, Name: u.Name, Email: u.Email, Role: authn.RoleMember}
	}

	got := map[string]Member{}
	cursor := ""
	pages := 0
	for {
		res := f.do(t, ada.ID, http.MethodGet, "/v1/organizations/"+org.ID+"/members?limit=2&cursor="+cursor, "")
		if res.status != http.StatusOK {
			t.Fatalf("list status = %d: %s", res.status, res.raw)
		}
		pages++
		for _, d := range res.body["data"].([]any) {
			m := d.(map[string]any)
			if m["joined_at"] == "" || m["joined_at"] == nil {
				t.Errorf("member %v has no joined_at", m["user_id"])
			}
			got[m["user_id"].(string)] = Member{UserID: m["user_id"].(string), Name: m["name"].(string), Email: m["email"].(string), Role: m["role"].(string)}
		}
		next, _ := res.body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("listing does not end")
		}
	}
	if pages != 3 {
		t.Errorf("pages = %d; want 3 for 5 members at limit 2", pages)
	}
	if len(got) != len(want) {
		t.Fatalf("members = %d; want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("member %s = %+v; want %+v", id, got[id], w)
		}
	}
}

func TestChangeRoleWritesEvent(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)

	res := f.do(t, ada.ID, http.MethodPatch, "/v1/organizations/"+org.ID+"/members/"+bob.ID, `{"role":"owner"}`)
	if res.status != http.StatusOK {
		t.Fatalf("status = %d; want 200: %s", res.status, res.raw)
	}
	if res.body["role"] != authn.RoleOwner || res.body["email"] != "bob@example.com" {
		t.Errorf("response = %v; want bob as owner", res.body)
	}
	if n := f.getOrg(t, org.ID).OwnerCount; n != 2 {
		t.Errorf("owner_count = %d; want 2", n)
	}

	e := f.oneEvent(t, events.MemberRoleChanged, org.ID)
	wantField(t, e, "organization_id", org.ID)
	wantField(t, e, "organization_name", "Acme")
	wantField(t, e, "user_id", bob.ID)
	wantField(t, e, "old_role", authn.RoleMember)
	wantField(t, e, "new_role", authn.RoleOwner)
	wantField(t, e, "changed_by", ada.ID)
}

func TestChangeRoleToSameRoleWritesNothing(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleAdmin)
	before := f.countItems(t)

	m, err := f.svc.ChangeRole(context.Background(), ada.ID, org.ID, bob.ID, authn.RoleAdmin)
	if err != nil || m.Role != authn.RoleAdmin {
		t.Fatalf("ChangeRole = %+v, %v; want admin", m, err)
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if n := len(f.events(t, events.MemberRoleChanged, org.ID)); n != 0 {
		t.Errorf("role change events = %d; want 0", n)
	}
}

func TestChangeRoleInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)
	before := f.countItems(t)

	cases := []struct {
		name   string
		target string
		body   string
		status int
		code   string
	}{
		{"unknown role", bob.ID, `{"role":"superuser"}`, http.StatusBadRequest, "invalid_role"},
		{"empty role", bob.ID, `{"role":""}`, http.StatusBadRequest, "invalid_role"},
		{"role in capitals", bob.ID, `{"role":"OWNER"}`, http.StatusBadRequest, "invalid_role"},
		{"unknown field", bob.ID, `{"role":"admin","until":"2027-01-01"}`, http.StatusBadRequest, "unknown_field"},
		{"unknown user", "usr_01jf3k8x2q7m9v4n5b6c7d8e9f", `{"role":"admin"}`, http.StatusNotFound, "member_not_found"},
		{"malformed user id", "bob", `{"role":"admin"}`, http.StatusNotFound, "member_not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(t, ada.ID, http.MethodPatch, "/v1/organizations/"+org.ID+"/members/"+tc.target, tc.body)
			if res.status != tc.status || res.body["code"] != tc.code {
				t.Errorf("response = %d %v; want %d %s", res.status, res.body["code"], tc.status, tc.code)
			}
		})
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if role := f.roleOf(t, org.ID, bob.ID); role != authn.RoleMember {
		t.Errorf("bob's role = %q; want member", role)
	}
}

func TestLastOwnerProtected(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleAdmin)
	before := f.countItems(t)

	t.Run("demote self", func(t *testing.T) {
		_, err := f.svc.ChangeRole(context.Background(), ada.ID, org.ID, ada.ID, authn.RoleAdmin)
		wantCode(t, err, apperr.Conflict, "last_owner")
	})
	t.Run("leave", func(t *testing.T) {
		err := f.svc.RemoveMember(context.Background(), ada.ID, org.ID, ada.ID)
		wantCode(t, err, apperr.Conflict, "last_owner")
	})
	t.Run("removed by admin", func(t *testing.T) {
		err := f.svc.RemoveMember(context.Background(), bob.ID, org.ID, ada.ID)
		wantCode(t, err, apperr.Forbidden, "insufficient_role")
	})

	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if role := f.roleOf(t, org.ID, ada.ID); role != authn.RoleOwner {
		t.Errorf("ada's role = %q; want owner", role)
	}
	if n := f.getOrg(t, org.ID).OwnerCount; n != 1 {
		t.Errorf("owner_count = %d; want 1", n)
	}
}

func TestLastOwnerCanLeaveAfterPromotingAnother(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)

	if _, err := f.svc.ChangeRole(context.Background(), ada.ID, org.ID, bob.ID, authn.RoleOwner); err != nil {
		t.Fatalf("promote bob: %v", err)
	}
	res := f.do(t, ada.ID, http.MethodDelete, "/v1/organizations/"+org.ID+"/members/"+ada.ID, "")
	if res.status != http.StatusNoContent {
		t.Fatalf("leave status = %d; want 204: %s", res.status, res.raw)
	}
	if role := f.roleOf(t, org.ID, ada.ID); role != "" {
		t.Errorf("ada's role after leaving = %q; want none", role)
	}
	if n := f.getOrg(t, org.ID).OwnerCount; n != 1 {
		t.Errorf("owner_count = %d; want 1", n)
	}

	e := f.oneEvent(t, events.MemberLeft, org.ID)
	wantField(t, e, "user_id", ada.ID)
	wantField(t, e, "role", authn.RoleOwner)
	wantField(t, e, "reason", LeftByLeaving)
	wantField(t, e, "organization_name", "Acme")
	if _, ok := e.Fields["removed_by"]; ok {
		t.Errorf("leave event has removed_by = %v; want none", e.Fields["removed_by"])
	}

	err := f.svc.RemoveMember(context.Background(), bob.ID, org.ID, bob.ID)
	wantCode(t, err, apperr.Conflict, "last_owner")
}

func TestRemoveMemberByOwnerWritesEvent(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleAdmin)

	if err := f.svc.RemoveMember(context.Background(), ada.ID, org.ID, bob.ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if role := f.roleOf(t, org.ID, bob.ID); role != "" {
		t.Errorf("bob's role = %q; want none", role)
	}
	e := f.oneEvent(t, events.MemberLeft, org.ID)
	wantField(t, e, "user_id", bob.ID)
	wantField(t, e, "role", authn.RoleAdmin)
	wantField(t, e, "reason", LeftByRemoval)
	wantField(t, e, "removed_by", ada.ID)

	err := f.svc.RemoveMember(context.Background(), ada.ID, org.ID, bob.ID)
	wantCode(t, err, apperr.NotFound, "member_not_found")
}

func TestForbiddenProblemNamesRoles(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleAdmin)

	res := f.do(t, bob.ID, http.MethodPatch, "/v1/organizations/"+org.ID+"/members/"+ada.ID, `{"role":"member"}`)
	if res.status != http.StatusForbidden {
		t.Fatalf("status = %d; want 403: %s", res.status, res.raw)
	}
	if res.body["role"] != authn.RoleAdmin {
		t.Errorf("problem role = %v; want admin", res.body["role"])
	}
	roles, _ := res.body["required_roles"].([]any)
	if len(roles) != 1 || roles[0] != authn.RoleOwner {
		t.Errorf("problem required_roles = %v; want [owner]", res.body["required_roles"])
	}
	if res.body["code"] != "insufficient_role" {
		t.Errorf("problem code = %v; want insufficient_role", res.body["code"])
	}
}

// TestOwnersDemotingEachOtherConcurrently runs two owners demoting each
// other at the same moment, several times: exactly one demotion may win,
// so one owner always remains.
func TestOwnersDemotingEachOtherConcurrently(t *testing.T) {
	f := newFixture(t)
	for round := range 5 {
		a := f.user(t, "A", fmt.Sprintf("a%d@example.com", round))
		b := f.user(t, "B", fmt.Sprintf("b%d@example.com", round))
		org := f.org(t, a.ID, "Race")
		f.join(t, org.ID, a.ID, b, authn.RoleOwner)

		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, pair := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = f.svc.ChangeRole(context.Background(), pair[0], org.ID, pair[1], authn.RoleAdmin)
			}()
		}
		close(start)
		wg.Wait()

		succeeded := 0
		for _, err := range errs {
			switch {
			case err == nil:
				succeeded++
			case apperr.CodeOf(err) != apperr.Conflict && apperr.CodeOf(err) != apperr.Forbidden:
				t.Errorf("round %d: demotion failed with %v; want a conflict or forbidden", round, err)
			}
		}
		if succeeded != 1 {
			t.Errorf("round %d: %d demotions succeeded (%v); want 1", round, succeeded, errs)
		}
		if n := f.getOrg(t, org.ID).OwnerCount; n != 1 {
			t.Errorf("round %d: owner_count = %d; want 1", round, n)
		}
		if n := f.ownerMemberships(t, org.ID); n != 1 {
			t.Errorf("round %d: owner memberships = %d; want 1", round, n)
		}
		if n := len(f.events(t, events.MemberRoleChanged, org.ID)); n != 1 {
			t.Errorf("round %d: member_role_changed events = %d; want 1, for the demotion that won", round, n)
		}
	}
}

// TestOwnersLeavingConcurrently has two owners leave at the same moment:
// one of them must stay.
func TestOwnersLeavingConcurrently(t *testing.T) {
	f := newFixture(t)
	for round := range 5 {
		a := f.user(t, "A", fmt.Sprintf("a%d@example.com", round))
		b := f.user(t, "B", fmt.Sprintf("b%d@example.com", round))
		org := f.org(t, a.ID, "Race")
		f.join(t, org.ID, a.ID, b, authn.RoleOwner)

		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, id := range []string{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = f.svc.RemoveMember(context.Background(), id, org.ID, id)
			}()
		}
		close(start)
		wg.Wait()

		left := 0
		for _, err := range errs {
			if err == nil {
				left++
			} else if apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("round %d: leave failed with %v; want a conflict", round, err)
			}
		}
		if left != 1 {
			t.Errorf("round %d: %d owners left (%v); want 1", round, left, errs)
		}
		if n := f.ownerMemberships(t, org.ID); n != 1 {
			t.Errorf("round %d: owner memberships = %d; want 1", round, n)
		}
		if n := f.getOrg(t, org.ID).OwnerCount; n != 1 {
			t.Errorf("round %d: owner_count = %d; want 1", round, n)
		}
		if n := len(f.events(t, events.MemberLeft, org.ID)); n != 1 {
			t.Errorf("round %d: member_left events = %d; want 1", round, n)
		}
	}
}

// TestStaleOwnerChecksFailAtCommit checks the owner-count condition on its
// own: each change was checked against items read while two owners
// existed, and commits after the other owner is gone. The pre-check cannot
// catch that, so only the transaction's condition can.
func TestStaleOwnerChecksFailAtCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.user(t, "A", "a@example.com")
	b := f.user(t, "B", "b@example.com")
	org := f.org(t, a.ID, "Race")
	f.join(t, org.ID, a.ID, b, authn.RoleOwner)

	staleOrg, staleA, err := f.svc.access(ctx, org.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if staleOrg.OwnerCount != 2 {
		t.Fatalf("owner_count = %d; want 2 before the race", staleOrg.OwnerCount)
	}
	if _, err := f.svc.ChangeRole(ctx, a.ID, org.ID, b.ID, authn.RoleAdmin); err != nil {
		t.Fatalf("demote b: %v", err)
	}
	before := f.countItems(t)

	t.Run("demote", func(t *testing.T) {
		_, err := f.svc.commitRoleChange(ctx, staleOrg, a.ID, staleA, authn.RoleMember)
		wantCode(t, err, apperr.Conflict, "last_owner")
	})
	t.Run("leave", func(t *testing.T) {
		err := f.svc.commitRemoval(ctx, staleOrg, a.ID, staleA, []string{authn.RoleOwner})
		wantCode(t, err, apperr.Conflict, "last_owner")
	})
	t.Run("removed by a demoted owner", func(t *testing.T) {
		// b was an owner when the removal was checked, and is an admin now.
		err := f.svc.commitRemoval(ctx, staleOrg, b.ID, staleA, []string{authn.RoleOwner})
		wantCode(t, err, apperr.Conflict, "last_owner")
	})

	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if role := f.roleOf(t, org.ID, a.ID); role != authn.RoleOwner {
		t.Errorf("a's role = %q; want owner", role)
	}
	if n := f.getOrg(t, org.ID).OwnerCount; n != 1 {
		t.Errorf("owner_count = %d; want 1", n)
	}
}

// TestStaleCallerRoleFailsAtCommit checks that an admin demoted after the
// role check cannot finish removing a member.
func TestStaleCallerRoleFailsAtCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	cy := f.user(t, "Cy", "cy@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleAdmin)
	f.join(t, org.ID, ada.ID, cy, authn.RoleMember)

	staleOrg, _, err := f.svc.access(ctx, org.ID, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	target, err := f.svc.membership(ctx, org.ID, cy.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ChangeRole(ctx, ada.ID, org.ID, bob.ID, authn.RoleMember); err != nil {
		t.Fatalf("demote bob: %v", err)
	}

	err = f.svc.commitRemoval(ctx, staleOrg, bob.ID, target, []string{authn.RoleOwner, authn.RoleAdmin})
	wantCode(t, err, apperr.Conflict, "concurrent_update")
	if role := f.roleOf(t, org.ID, cy.ID); role != authn.RoleMember {
		t.Errorf("cy's role = %q; want member", role)
	}
}
