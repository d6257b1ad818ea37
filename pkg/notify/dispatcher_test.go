package notify_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/notify"
)

func newLoginData(u user) map[string]any {
	return map[string]any{
		"user_id":      u.ID,
		"session_id":   "ses_test",
		"ip":           "203.0.113.9",
		"user_agent":   "Firefox",
		"logged_in_at": sampleTime,
	}
}

func TestDuplicateRecordOneNotificationOneEmail(t *testing.T) {
	f := newFixture(t)
	ada := f.signup(t, "Ada")
	rec := f.record(f.event(t, events.NewLogin, ada.ID, newLoginData(ada)))

	// The same record twice in one batch, then once more in a later batch,
	// as Lambda retries do.
	f.dispatch(t, rec, rec)
	f.dispatch(t, rec)

	if got := f.notifications(t, ada.ID); len(got) != 1 {
		t.Errorf("notifications = %d; want 1", len(got))
	}
	if n := f.unread(t, ada.ID); n != 1 {
		t.Errorf("unread count = %d; want 1", n)
	}
	jobs := f.drainEmails(t)
	if len(jobs) != 1 {
		t.Errorf("queued email jobs = %d; want 1", len(jobs))
	}
	if n := sentTo(t, f.env.Endpoints.SES, ada.Email); n != 1 {
		t.Errorf("emails to the user = %d; want 1", n)
	}
}

func TestPreferenceOffStillSendsEmail(t *testing.T) {
	f := newFixture(t)
	ada := f.signup(t, "Ada")
	if _, err := f.service.UpdatePreferences(context.Background(), ada.ID, map[string]bool{events.NewLogin: false}); err != nil {
		t.Fatal(err)
	}

	f.dispatch(t, f.record(f.event(t, events.NewLogin, ada.ID, newLoginData(ada))))

	if got := f.notifications(t, ada.ID); len(got) != 0 {
		t.Errorf("notifications = %v; want none, because the type is off", got)
	}
	if n := f.unread(t, ada.ID); n != 0 {
		t.Errorf("unread count = %d; want 0", n)
	}
	f.drainEmails(t)
	if n := sentTo(t, f.env.Endpoints.SES, ada.Email); n != 1 {
		t.Errorf("emails to the user = %d; want 1, because preferences do not govern emails", n)
	}
}

func TestPreferenceOffLeavesOtherTypes(t *testing.T) {
	f := newFixture(t)
	ada := f.signup(t, "Ada")
	if _, err := f.service.UpdatePreferences(context.Background(), ada.ID, map[string]bool{events.EnvelopeSigned: false}); err != nil {
		t.Fatal(err)
	}
	f.dispatch(t, f.record(f.event(t, events.NewLogin, ada.ID, newLoginData(ada))))
	if got := f.notifications(t, ada.ID); len(got) != 1 || got[0].Type != events.NewLogin {
		t.Errorf("notifications = %v; want the new-login notification", got)
	}
}

// envelopeEvent returns envelope event data with a sender, two signers
// and a cc recipient.
func envelopeEvent(sender user, setting string, extra map[string]any) map[string]any {
	data := map[string]any{
		"envelope_id":         "env_01jf3k8x2q7m9v4n5b6c7d8e9f",
		"title":               "Lease agreement",
		"sender_user_id":      sender.ID,
		"workspace_id":        sender.ID,
		"email_notifications": setting,
		"status":              "sent",
		"recipients": []map[string]any{
			{"id": "rcp_1", "name": "Signer One", "email": "one-" + sender.Email, "role": "signer", "routing_order": 1, "status": "signed"},
			{"id": "rcp_2", "name": "Signer Two", "email": "two-" + sender.Email, "role": "signer", "routing_order": 2, "status": "active"},
			{"id": "rcp_3", "name": "", "email": "cc-" + sender.Email, "role": "cc", "routing_order": 3, "status": "pending"},
		},
	}
	for k, v := range extra {
		data[k] = v
	}
	return data
}

func TestEnvelopeEventsThroughDispatcher(t *testing.T) {
	cases := []struct {
		name        string
		typ         string
		setting     string
		extra       map[string]any
		wantInApp   string // notification type the sender gets, or ""
		wantEmailTo []string
	}{
		{"sent with all", events.EnvelopeSent, "all", map[string]any{"activated_recipient_ids": []string{"rcp_1"}}, "", []string{"one-"}},
		{"sent with completion_only", events.EnvelopeSent, "completion_only", map[string]any{"activated_recipient_ids": []string{"rcp_1"}}, "", nil},
		{"signed with none", events.EnvelopeSigned, "none", map[string]any{"recipient_id": "rcp_1", "activated_recipient_ids": []string{"rcp_2"}}, events.EnvelopeSigned, nil},
		{"completed with completion_only", events.EnvelopeCompleted, "completion_only", nil, events.EnvelopeCompleted, []string{"cc-", "one-", "two-"}},
		{"completed with none", events.EnvelopeCompleted, "none", nil, events.EnvelopeCompleted, nil},
		{"rejected with all", events.EnvelopeRejected, "all", map[string]any{"recipient_id": "rcp_2", "reason": "wrong rent"}, events.EnvelopeRejected, []string{"one-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			sender := f.signup(t, "Sam Sender")
			f.dispatch(t, f.record(f.event(t, tc.typ, sender.ID, envelopeEvent(sender, tc.setting, tc.extra))))

			got := f.notifications(t, sender.ID)
			switch {
			case tc.wantInApp == "" && len(got) != 0:
				t.Errorf("sender notifications = %v; want none", got)
			case tc.wantInApp != "" && (len(got) != 1 || got[0].Type != tc.wantInApp):
				t.Errorf("sender notifications = %v; want one %s", got, tc.wantInApp)
			}

			var to []string
			for _, job := range f.drainEmails(t) {
				to = append(to, job.To[:len(job.To)-len(sender.Email)])
			}
			sort.Strings(to)
			if !slices.Equal(to, tc.wantEmailTo) {
				t.Errorf("emails to %v; want %v", to, tc.wantEmailTo)
			}
		})
	}
}

func TestWhoIsTold(t *testing.T) {
	f := newFixture(t)
	owner, admin, member, joiner := f.signup(t, "Olive Owner"), f.signup(t, "Adam Admin"), f.signup(t, "Mia Member"), f.signup(t, "Jo Joiner")
	invitee, outsider := f.signup(t, "Ivy Invitee"), f.signup(t, "Otto Outsider")
	orgID := f.newOrg(t, "Acme", map[string]string{owner.ID: "owner", admin.ID: "admin", member.ID: "member"})
	everyone := []user{owner, admin, member, joiner, invitee, outsider}

	cases := []struct {
		name      string
		typ       string
		workspace string
		data      map[string]any
		want      []user
		wantEmail []user
	}{
		{"member joined", events.MemberJoined, orgID,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "user_id": joiner.ID, "role": "member"},
			[]user{owner, admin, joiner}, nil},
		{"member left", events.MemberLeft, orgID,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "user_id": joiner.ID, "role": "member", "reason": "removed"},
			[]user{owner, admin, joiner}, nil},
		{"role changed", events.MemberRoleChanged, orgID,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "user_id": member.ID, "old_role": "member", "new_role": "admin"},
			[]user{owner, admin, member}, nil},
		{"invitation to an account, found by address", events.InvitationReceived, orgID,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "invitation_id": "inv_1", "email": invitee.Email, "role": "member", "invited_by": owner.ID},
			[]user{invitee}, []user{invitee}},
		{"invitation with invitee_user_id", events.InvitationReceived, orgID,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "invitation_id": "inv_2", "email": "someone@example.com", "invitee_user_id": invitee.ID, "role": "member", "invited_by": owner.ID},
			[]user{invitee}, nil},
		{"organization low balance", events.LowCreditBalance, orgID,
			map[string]any{"workspace_id": orgID, "balance": 2, "threshold": 5},
			[]user{owner, admin}, []user{owner, admin}},
		{"personal low balance", events.LowCreditBalance, outsider.ID,
			map[string]any{"workspace_id": outsider.ID, "balance": 0, "threshold": 5},
			[]user{outsider}, []user{outsider}},
		{"new login", events.NewLogin, member.ID, newLoginData(member), []user{member}, []user{member}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{}
			for _, u := range everyone {
				before[u.ID] = len(f.notifications(t, u.ID))
			}
			f.dispatch(t, f.record(f.event(t, tc.typ, tc.workspace, tc.data)))

			for _, u := range everyone {
				got := len(f.notifications(t, u.ID)) - before[u.ID]
				want := 0
				if slices.Contains(tc.want, u) {
					want = 1
				}
				if got != want {
					t.Errorf("new notifications for %s = %d; want %d", u.Name, got, want)
				}
			}
			var emailed []string
			for _, job := range f.drainEmails(t) {
				emailed = append(emailed, job.To)
			}
			for _, u := range tc.wantEmail {
				if !slices.Contains(emailed, u.Email) {
					t.Errorf("no email job for %s; jobs went to %v", u.Name, emailed)
				}
			}
		})
	}
}

func TestInvitationToUnknownAddressEmailsOnly(t *testing.T) {
	f := newFixture(t)
	owner := f.signup(t, "Olive Owner")
	orgID := f.newOrg(t, "Acme", map[string]string{owner.ID: "owner"})
	addr := "Newcomer-" + owner.Email

	f.dispatch(t, f.record(f.event(t, events.InvitationReceived, orgID, map[string]any{
		"organization_id": orgID, "organization_name": "Acme", "invitation_id": "inv_1",
		"email": addr, "role": "admin", "invited_by": owner.ID,
	})))

	if got := f.notifications(t, owner.ID); len(got) != 0 {
		t.Errorf("inviter notifications = %v; want none", got)
	}
	jobs := f.drainEmails(t)
	if len(jobs) != 1 || jobs[0].To != addr || jobs[0].Kind != email.OrganizationInvitation {
		t.Fatalf("email jobs = %+v; want one invitation to %s", jobs, addr)
	}
	if jobs[0].Vars["inviter_name"] != "Olive Owner" {
		t.Errorf("inviter_name = %q; want Olive Owner", jobs[0].Vars["inviter_name"])
	}
	if n := sentTo(t, f.env.Endpoints.SES, addr); n != 1 {
		t.Errorf("emails to the invitee = %d; want 1", n)
	}
}

// recordingFanout records the events it gets and fails those in fail.
type recordingFanout struct {
	mu   sync.Mutex
	got  []string
	fail map[string]error
}

func (r *recordingFanout) Name() string { return "recording" }

func (r *recordingFanout) Deliver(ctx context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e.ID)
	return r.fail[e.ID]
}

func TestHandleSkipsOtherRecords(t *testing.T) {
	f := newFixture(t)
	fan := &recordingFanout{}
	d := notify.NewDispatcher(nil, fan)
	e := f.event(t, events.NewLogin, "usr_x", map[string]any{"user_id": "usr_x"})

	modify := f.record(e)
	modify.EventName = "MODIFY"
	remove := f.record(e)
	remove.EventName = "REMOVE"
	other := f.record(e)
	other.Change.NewImage["PK"] = lambdaevents.NewStringAttribute("USER#usr_x")
	badTime := f.record(e)
	badTime.Change.NewImage["timestamp"] = lambdaevents.NewStringAttribute("yesterday")
	numberType := f.record(e)
	numberType.Change.NewImage["type"] = lambdaevents.NewNumberAttribute("7")
	good := f.record(e)

	resp, err := d.Handle(context.Background(), lambdaevents.DynamoDBEvent{Records: []lambdaevents.DynamoDBEventRecord{
		modify, remove, other, badTime, numberType, good,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("failures = %v; want none", resp.BatchItemFailures)
	}
	if !slices.Equal(fan.got, []string{e.ID}) {
		t.Errorf("delivered events = %v; want only the INSERT of the event item", fan.got)
	}
}

func TestHandleReportsFirstFailedSequenceNumber(t *testing.T) {
	f := newFixture(t)
	e1 := f.event(t, events.NewLogin, "usr_x", map[string]any{})
	e2 := f.event(t, events.NewLogin, "usr_x", map[string]any{})
	e3 := f.event(t, events.NewLogin, "usr_x", map[string]any{})
	fan := &recordingFanout{fail: map[string]error{e2.ID: errors.New("queue unavailable")}}
	d := notify.NewDispatcher(nil, fan)
	r1, r2, r3 := f.record(e1), f.record(e2), f.record(e3)

	resp, err := d.Handle(context.Background(), lambdaevents.DynamoDBEvent{Records: []lambdaevents.DynamoDBEventRecord{r1, r2, r3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []lambdaevents.DynamoDBBatchItemFailure{{ItemIdentifier: r2.Change.SequenceNumber}}
	if !slices.Equal(resp.BatchItemFailures, want) {
		t.Errorf("failures = %v; want %v", resp.BatchItemFailures, want)
	}
	if !slices.Equal(fan.got, []string{e1.ID, e2.ID}) {
		t.Errorf("delivered = %v; want the records up to the failed one", fan.got)
	}
}

func TestHandlePermanentErrorIsNotRetried(t *testing.T) {
	f := newFixture(t)
	e := f.event(t, events.NewLogin, "usr_x", map[string]any{})
	after := &recordingFanout{}
	bad := &recordingFanout{fail: map[string]error{e.ID: &notify.PermanentError{Err: errors.New("undecodable")}}}
	d := notify.NewDispatcher(nil, bad, after)

	resp, err := d.Handle(context.Background(), lambdaevents.DynamoDBEvent{Records: []lambdaevents.DynamoDBEventRecord{f.record(e)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("failures = %v; want none for a permanent error", resp.BatchItemFailures)
	}
	if !slices.Equal(after.got, []string{e.ID}) {
		t.Errorf("later fan-out got %v; want the event", after.got)
	}
}

func TestUndecodableEventDataIsSkipped(t *testing.T) {
	f := newFixture(t)
	e := f.event(t, events.EnvelopeCompleted, "usr_x", map[string]any{})
	e.Data = []byte(`{"recipients": "not a list"}`)
	// The real fan-outs see data they cannot decode; retrying cannot help,
	// so nothing is reported.
	f.dispatch(t, f.record(e))
}

func TestMemberNotificationText(t *testing.T) {
	f := newFixture(t)
	owner, member := f.signup(t, "Olive Owner"), f.signup(t, "Mia Member")
	orgID := f.newOrg(t, "Acme", map[string]string{owner.ID: "owner", member.ID: "member"})

	cases := []struct {
		name       string
		typ        string
		data       map[string]any
		wantOwner  string
		wantMember string
	}{
		{"role changed", events.MemberRoleChanged,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "user_id": member.ID, "old_role": "member", "new_role": "admin"},
			"Mia Member's role in Acme changed from member to admin.", "Your role in Acme changed from member to admin."},
		{"removed", events.MemberLeft,
			map[string]any{"organization_id": orgID, "user_id": member.ID, "role": "member", "reason": "removed"},
			"Mia Member was removed from Acme.", "You were removed from Acme."},
		{"left", events.MemberLeft,
			map[string]any{"organization_id": orgID, "organization_name": "Acme", "user_id": member.ID, "role": "member", "reason": "left"},
			"Mia Member left Acme.", "You left Acme."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Advance(time.Second) // so this case's notifications list first
			f.dispatch(t, f.record(f.event(t, tc.typ, orgID, tc.data)))
			if got := f.notifications(t, owner.ID)[0]; got.Body != tc.wantOwner {
				t.Errorf("owner's notification = %q; want %q", got.Body, tc.wantOwner)
			}
			got := f.notifications(t, member.ID)[0]
			if got.Body != tc.wantMember {
				t.Errorf("member's notification = %q; want %q", got.Body, tc.wantMember)
			}
			if got.Data["organization_id"] != orgID {
				t.Errorf("data = %v; want organization_id %s", got.Data, orgID)
			}
		})
	}
}
