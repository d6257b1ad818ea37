package orgs

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestInviteAcceptFlowWritesEvents(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")

	res := f.do(t, ada.ID, http.MethodPost, "/v1/organizations/"+org.ID+"/invitations", `{"email":"bob@example.com","role":"admin"}`)
	if res.status != http.StatusCreated {
		t.Fatalf("invite status = %d; want 201: %s", res.status, res.raw)
	}
	invID, _ := res.body["id"].(string)
	if !ids.Valid(ids.Invitation, invID) {
		t.Fatalf("invitation id = %q; want an inv_ id", invID)
	}
	if res.body["status"] != StatusPending || res.body["role"] != authn.RoleAdmin {
		t.Errorf("invitation = %v; want a pending admin invitation", res.body)
	}
	wantExpiry := f.clock.Now().Add(DefaultInvitationTTL).Format(time.RFC3339)
	if res.body["expires_at"] != wantExpiry {
		t.Errorf("expires_at = %v; want %s", res.body["expires_at"], wantExpiry)
	}

	received := f.oneEvent(t, events.InvitationReceived, org.ID)
	wantField(t, received, "invitation_id", invID)
	wantField(t, received, "organization_id", org.ID)
	wantField(t, received, "organization_name", "Acme")
	wantField(t, received, "email", "bob@example.com")
	wantField(t, received, "user_id", bob.ID)
	wantField(t, received, "role", authn.RoleAdmin)
	wantField(t, received, "invited_by", ada.ID)
	wantField(t, received, "expires_at", wantExpiry)

	list := f.do(t, bob.ID, http.MethodGet, "/v1/me/invitations", "")
	data, _ := list.body["data"].([]any)
	if list.status != http.StatusOK || len(data) != 1 {
		t.Fatalf("bob's invitations = %d %s; want one", list.status, list.raw)
	}
	if got := data[0].(map[string]any); got["id"] != invID || got["organization_name"] != "Acme" {
		t.Errorf("bob's invitation = %v; want %s to Acme", got, invID)
	}

	acc := f.do(t, bob.ID, http.MethodPost, "/v1/me/invitations/"+invID+"/accept", "")
	if acc.status != http.StatusOK {
		t.Fatalf("accept status = %d; want 200: %s", acc.status, acc.raw)
	}
	if acc.body["id"] != org.ID || acc.body["role"] != authn.RoleAdmin {
		t.Errorf("accept response = %v; want %s as admin", acc.body, org.ID)
	}
	if role := f.roleOf(t, org.ID, bob.ID); role != authn.RoleAdmin {
		t.Errorf("bob's role = %q; want admin", role)
	}

	joined := f.oneEvent(t, events.MemberJoined, org.ID)
	wantField(t, joined, "user_id", bob.ID)
	wantField(t, joined, "role", authn.RoleAdmin)
	wantField(t, joined, "invitation_id", invID)
	wantField(t, joined, "invited_by", ada.ID)
	wantField(t, joined, "organization_name", "Acme")

	var inv invitationItem
	if err := f.store.Get(context.Background(), store.InvitationKey(org.ID, invID), &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Status != StatusAccepted || inv.RespondedBy != bob.ID {
		t.Errorf("stored invitation status %q by %q; want accepted by bob", inv.Status, inv.RespondedBy)
	}
	if want := inv.ValidUntil + int64(invitationRetention/time.Second); inv.ExpiresAt != want {
		t.Errorf("TTL expires_at = %d; want %d, after the invitation's expiry", inv.ExpiresAt, want)
	}
	if after := f.do(t, bob.ID, http.MethodGet, "/v1/me/invitations", ""); len(after.body["data"].([]any)) != 0 {
		t.Errorf("bob's invitations after accepting = %s; want none", after.raw)
	}
}

func TestInviteUnknownAddressHasNoUserID(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")

	if _, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "new@example.com"}); err != nil {
		t.Fatal(err)
	}
	e := f.oneEvent(t, events.InvitationReceived, org.ID)
	if _, ok := e.Fields["user_id"]; ok {
		t.Errorf("user_id = %v; want none for an address nobody holds", e.Fields["user_id"])
	}
	wantField(t, e, "role", authn.RoleMember)
}

func TestInvitationEmailMatchIgnoresCase(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")

	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "Grace.Hopper@Example.COM"})
	if err != nil {
		t.Fatal(err)
	}
	grace := f.user(t, "Grace", "grace.hopper@example.com")

	mine, _, err := f.svc.ListMyInvitations(context.Background(), grace.ID, 10, "")
	if err != nil || len(mine) != 1 || mine[0].ID != inv.ID {
		t.Fatalf("grace's invitations = %+v, %v; want %s", mine, err, inv.ID)
	}
	if _, err := f.svc.AcceptInvitation(context.Background(), grace.ID, inv.ID, ""); err != nil {
		t.Fatalf("accept: %v", err)
	}

	_, err = f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "GRACE.HOPPER@example.com"})
	wantCode(t, err, apperr.Conflict, "already_member")
}

func TestInviteExistingMemberConflicts(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	f.join(t, org.ID, ada.ID, bob, authn.RoleMember)
	before := f.countItems(t)

	for _, email := range []string{"bob@example.com", "BOB@example.com", "ada@example.com"} {
		res := f.do(t, ada.ID, http.MethodPost, "/v1/organizations/"+org.ID+"/invitations", `{"email":"`+email+`"}`)
		if res.status != http.StatusConflict || res.body["code"] != "already_member" {
			t.Errorf("invite %s = %d %v; want 409 already_member", email, res.status, res.body["code"])
		}
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
}

func TestSecondPendingInvitationConflicts(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")
	other := f.org(t, ada.ID, "Other")

	first, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	before := f.countItems(t)
	_, err = f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "NEW@example.com", Role: authn.RoleAdmin})
	wantCode(t, err, apperr.Conflict, "invitation_pending")
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}

	if _, err := f.svc.Invite(context.Background(), ada.ID, other.ID, InviteInput{Email: "new@example.com"}); err != nil {
		t.Errorf("same address in another organization: %v", err)
	}

	if err := f.svc.RevokeInvitation(context.Background(), ada.ID, org.ID, first.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "new@example.com"}); err != nil {
		t.Errorf("invite after revoking the first: %v", err)
	}
}

func TestConcurrentInvitesToOneAddress(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")

	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "race@example.com"
			if i%2 == 1 {
				email = "RACE@example.com"
			}
			_, errs[i] = f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: email})
		}()
	}
	wg.Wait()

	created := 0
	for _, err := range errs {
		if err == nil {
			created++
		} else if apperr.As(err) == nil || apperr.As(err).ReasonCode() != "invitation_pending" {
			t.Errorf("invite: %v; want invitation_pending", err)
		}
	}
	if created != 1 {
		t.Errorf("invitations created = %d; want 1", created)
	}
	if got := len(f.events(t, events.InvitationReceived, org.ID)); got != 1 {
		t.Errorf("invitation_received events = %d; want 1", got)
	}
}

func TestExpiredInvitationCannotBeAccepted(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(DefaultInvitationTTL)
	before := f.countItems(t)

	_, err = f.svc.AcceptInvitation(context.Background(), bob.ID, inv.ID, "")
	wantCode(t, err, apperr.Conflict, "invitation_expired")
	err = f.svc.DeclineInvitation(context.Background(), bob.ID, inv.ID)
	wantCode(t, err, apperr.Conflict, "invitation_expired")
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if role := f.roleOf(t, org.ID, bob.ID); role != "" {
		t.Errorf("bob's role = %q; want none", role)
	}
	if mine, _, _ := f.svc.ListMyInvitations(context.Background(), bob.ID, 10, ""); len(mine) != 0 {
		t.Errorf("bob's invitations = %+v; want the expired one hidden", mine)
	}
	if pending, _, _ := f.svc.ListInvitations(context.Background(), ada.ID, org.ID, 10, ""); len(pending) != 0 {
		t.Errorf("organization's invitations = %+v; want the expired one hidden", pending)
	}

	again, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatalf("invite again after expiry: %v", err)
	}
	if _, err := f.svc.AcceptInvitation(context.Background(), bob.ID, again.ID, ""); err != nil {
		t.Errorf("accept the new invitation: %v", err)
	}
}

func TestInvitationTTLIsConfigurable(t *testing.T) {
	f := newFixture(t, WithInvitationTTL(time.Hour))
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")

	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(time.Hour); !inv.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %s; want %s", inv.ExpiresAt, want)
	}
	f.clock.Advance(time.Hour - time.Second)
	if _, err := f.svc.AcceptInvitation(context.Background(), bob.ID, inv.ID, ""); err != nil {
		t.Errorf("accept one second before expiry: %v", err)
	}
}

func TestOtherUserCannotAnswerInvitation(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	eve := f.user(t, "Eve", "eve@example.com")
	org := f.org(t, ada.ID, "Acme")
	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatal(err)
	}
	before := f.countItems(t)

	for _, action := range []string{"accept", "decline"} {
		for _, user := range []string{eve.ID, ada.ID} {
			res := f.do(t, user, http.MethodPost, "/v1/me/invitations/"+inv.ID+"/"+action, "")
			if res.status != http.StatusNotFound || res.body["code"] != "invitation_not_found" {
				t.Errorf("%s by %s = %d %v; want 404 invitation_not_found", action, user, res.status, res.body["code"])
			}
		}
	}
	for _, id := range []string{"inv_nope", ids.New(ids.Invitation), org.ID} {
		res := f.do(t, bob.ID, http.MethodPost, "/v1/me/invitations/"+id+"/accept", "")
		if res.status != http.StatusNotFound {
			t.Errorf("accept %s = %d; want 404", id, res.status)
		}
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
	if mine, _, _ := f.svc.ListMyInvitations(context.Background(), eve.ID, 10, ""); len(mine) != 0 {
		t.Errorf("eve's invitations = %+v; want none", mine)
	}
}

func TestConcurrentAcceptMakesOneMembership(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: bob.Email, Role: authn.RoleOwner})
	if err != nil {
		t.Fatal(err)
	}

	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f.svc.AcceptInvitation(context.Background(), bob.ID, inv.ID, "")
		}()
	}
	close(start)
	wg.Wait()

	accepted := 0
	for _, err := range errs {
		if err == nil {
			accepted++
		} else if apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("accept: %v; want a conflict", err)
		}
	}
	if accepted != 1 {
		t.Errorf("accepts that succeeded = %d; want 1", accepted)
	}
	if got := len(f.events(t, events.MemberJoined, org.ID)); got != 1 {
		t.Errorf("member_joined events = %d; want 1", got)
	}
	if got := f.getOrg(t, org.ID).OwnerCount; got != 2 {
		t.Errorf("owner_count = %d; want 2", got)
	}
	if got := f.ownerMemberships(t, org.ID); got != 2 {
		t.Errorf("owner memberships = %d; want 2", got)
	}
}

func TestDeclineAndRevoke(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	bob := f.user(t, "Bob", "bob@example.com")
	org := f.org(t, ada.ID, "Acme")
	ctx := context.Background()

	declined, err := f.svc.Invite(ctx, ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatal(err)
	}
	if res := f.do(t, bob.ID, http.MethodPost, "/v1/me/invitations/"+declined.ID+"/decline", ""); res.status != http.StatusNoContent {
		t.Fatalf("decline status = %d; want 204: %s", res.status, res.raw)
	}
	_, err = f.svc.AcceptInvitation(ctx, bob.ID, declined.ID, "")
	wantCode(t, err, apperr.Conflict, "invitation_not_pending")

	revoked, err := f.svc.Invite(ctx, ada.ID, org.ID, InviteInput{Email: bob.Email})
	if err != nil {
		t.Fatalf("invite after a decline: %v", err)
	}
	res := f.do(t, ada.ID, http.MethodDelete, "/v1/organizations/"+org.ID+"/invitations/"+revoked.ID, "")
	if res.status != http.StatusNoContent {
		t.Fatalf("revoke status = %d; want 204: %s", res.status, res.raw)
	}
	_, err = f.svc.AcceptInvitation(ctx, bob.ID, revoked.ID, "")
	wantCode(t, err, apperr.Conflict, "invitation_not_pending")
	err = f.svc.RevokeInvitation(ctx, ada.ID, org.ID, revoked.ID)
	wantCode(t, err, apperr.Conflict, "invitation_not_pending")

	res = f.do(t, ada.ID, http.MethodDelete, "/v1/organizations/"+org.ID+"/invitations/"+ids.New(ids.Invitation), "")
	if res.status != http.StatusNotFound || res.body["code"] != "invitation_not_found" {
		t.Errorf("revoke unknown = %d %v; want 404 invitation_not_found", res.status, res.body["code"])
	}

	if role := f.roleOf(t, org.ID, bob.ID); role != "" {
		t.Errorf("bob's role = %q; want none", role)
	}
	if got := len(f.events(t, events.MemberJoined, org.ID)); got != 0 {
		t.Errorf("member_joined events = %d; want 0", got)
	}
}

func TestRevokeOtherOrganizationsInvitationNotFound(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	eve := f.user(t, "Eve", "eve@example.com")
	org := f.org(t, ada.ID, "Acme")
	evil := f.org(t, eve.ID, "Evil")
	inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	err = f.svc.RevokeInvitation(context.Background(), eve.ID, evil.ID, inv.ID)
	wantCode(t, err, apperr.NotFound, "invitation_not_found")
	pending, _, err := f.svc.ListInvitations(context.Background(), ada.ID, org.ID, 10, "")
	if err != nil || len(pending) != 1 {
		t.Errorf("pending invitations = %+v, %v; want the one", pending, err)
	}
}

func TestInviteInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")
	before := f.countItems(t)

	cases := []struct {
		name string
		body string
		code string
	}{
		{"empty email", `{"email":""}`, "invalid_email"},
		{"no at sign", `{"email":"example.com"}`, "invalid_email"},
		{"display name", `{"email":"Bob <bob@example.com>"}`, "invalid_email"},
		{"undotted domain", `{"email":"bob@localhost"}`, "invalid_email"},
		{"too long", `{"email":"` + strings.Repeat("b", 250) + `@example.com"}`, "invalid_email"},
		{"unknown role", `{"email":"bob@example.com","role":"superuser"}`, "invalid_role"},
		{"unknown field", `{"email":"bob@example.com","message":"hi"}`, "unknown_field"},
		{"role of wrong type", `{"email":"bob@example.com","role":1}`, "wrong_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(t, ada.ID, http.MethodPost, "/v1/organizations/"+org.ID+"/invitations", tc.body)
			if res.status != http.StatusBadRequest || res.body["code"] != tc.code {
				t.Errorf("response = %d %v; want 400 %s", res.status, res.body["code"], tc.code)
			}
		})
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items = %d; want %d", after, before)
	}
}

func TestListInvitationsPaginates(t *testing.T) {
	f := newFixture(t)
	ada := f.user(t, "Ada", "ada@example.com")
	org := f.org(t, ada.ID, "Acme")
	want := map[string]bool{}
	for i := range 5 {
		inv, err := f.svc.Invite(context.Background(), ada.ID, org.ID, InviteInput{Email: fmt.Sprintf("p%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		want[inv.ID] = true
	}

	got := map[string]bool{}
	cursor := ""
	for page := 0; page < 10; page++ {
		list, next, err := f.svc.ListInvitations(context.Background(), ada.ID, org.ID, 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 2 {
			t.Errorf("page %d has %d invitations; want at most 2", page, len(list))
		}
		for _, inv := range list {
			got[inv.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != len(want) {
		t.Errorf("listed %d invitations; want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("invitation %s missing from the listing", id)
		}
	}
}

func TestAcceptNeedsInvitationCode(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	f := newFixture(t, WithInvitationCodeKey(key))
	owner := f.user(t, "Olive", "olive@example.com")
	org := f.org(t, owner.ID, "Acme")
	grace := f.user(t, "Grace", "grace@example.com")
	inv, err := f.svc.Invite(context.Background(), owner.ID, org.ID, InviteInput{Email: "GRACE@example.com", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}

	for _, code := range []string{"", "sic_wrong", InvitationCode(key, inv.ID, "other@example.com"), InvitationCode([]byte("another key of thirty-two bytes!"), inv.ID, "grace@example.com")} {
		_, err := f.svc.AcceptInvitation(context.Background(), grace.ID, inv.ID, code)
		if ae := apperr.As(err); ae == nil || ae.Code != apperr.Forbidden || ae.Reason != "invalid_invitation_code" {
			t.Errorf("accept with code %q: err = %v; want forbidden invalid_invitation_code", code, err)
		}
	}
	if role := f.roleOf(t, org.ID, grace.ID); role != "" {
		t.Fatalf("grace has role %q after rejected accepts", role)
	}

	code := InvitationCode(key, inv.ID, "grace@example.com")
	if !strings.HasPrefix(code, InvitationCodePrefix) || len(code) != len(InvitationCodePrefix)+24 {
		t.Errorf("code %q has the wrong form", code)
	}
	if _, err := f.svc.AcceptInvitation(context.Background(), grace.ID, inv.ID, code); err != nil {
		t.Fatalf("accept with the emailed code: %v", err)
	}
	if role := f.roleOf(t, org.ID, grace.ID); role != "admin" {
		t.Errorf("role after accept = %q; want admin", role)
	}
}
