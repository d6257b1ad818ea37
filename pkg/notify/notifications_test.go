package notify_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/notify"
	"github.com/signsecure/signsecure/pkg/store"
)

// create stores n notifications for the user, one second apart, and
// returns their ids oldest first.
func (f *fixture) create(t *testing.T, userID string, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		at := sampleTime.Add(time.Duration(i) * time.Second)
		id := ids.NewAt(ids.Notification, at)
		ok, err := f.service.Create(context.Background(), userID, notify.Notification{
			ID: id, Type: events.EnvelopeSigned, Title: fmt.Sprintf("n%d", i), Body: "b",
			EventID: ids.New(ids.Event), Data: map[string]string{"envelope_id": "env_1"}, CreatedAt: at,
		})
		if err != nil || !ok {
			t.Fatalf("Create = %v, %v; want true, nil", ok, err)
		}
		out = append(out, id)
	}
	return out
}

func TestListNewestFirstWithCursor(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	created := f.create(t, userID, 5)
	ctx := context.Background()

	page1, next, err := f.service.List(ctx, userID, false, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if next == "" {
		t.Fatal("no cursor after a full first page")
	}
	page2, last, err := f.service.List(ctx, userID, false, 3, next)
	if err != nil {
		t.Fatal(err)
	}
	if last != "" {
		t.Errorf("cursor after the last page = %q; want empty", last)
	}

	var got []string
	for _, n := range append(page1, page2...) {
		got = append(got, n.ID)
	}
	want := []string{created[4], created[3], created[2], created[1], created[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed ids = %v; want newest first %v", got, want)
	}
	if page1[0].ReadAt != nil {
		t.Error("a new notification is already read")
	}
	if page1[0].Data["envelope_id"] != "env_1" {
		t.Errorf("data = %v; want envelope_id env_1", page1[0].Data)
	}
}

func TestListRejectsForeignCursor(t *testing.T) {
	f := newFixture(t)
	ada, bob := ids.New(ids.User), ids.New(ids.User)
	f.create(t, ada, 3)
	_, next, err := f.service.List(context.Background(), ada, false, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.service.List(context.Background(), bob, false, 1, next)
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("List with another user's cursor = %v; want ErrInvalidCursor", err)
	}
}

func TestMarkReadAndUnreadCount(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	created := f.create(t, userID, 3)
	ctx := context.Background()

	if n := f.unread(t, userID); n != 3 {
		t.Fatalf("unread = %d; want 3", n)
	}
	f.clock.Advance(time.Hour)
	n, err := f.service.MarkRead(ctx, userID, created[1])
	if err != nil {
		t.Fatal(err)
	}
	if n.ReadAt == nil || !n.ReadAt.Equal(f.clock.Now()) {
		t.Errorf("read_at = %v; want %v", n.ReadAt, f.clock.Now())
	}
	if _, err := f.service.MarkRead(ctx, userID, created[1]); err != nil {
		t.Fatalf("second MarkRead: %v", err)
	}
	if got := f.unread(t, userID); got != 2 {
		t.Errorf("unread after marking one twice = %d; want 2", got)
	}

	unread, _, err := f.service.List(ctx, userID, true, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(unread) != 2 || unread[0].ID != created[2] || unread[1].ID != created[0] {
		t.Errorf("unread list = %v; want %s and %s", unread, created[2], created[0])
	}
}

func TestMarkReadNotFound(t *testing.T) {
	f := newFixture(t)
	ada, bob := ids.New(ids.User), ids.New(ids.User)
	adaIDs := f.create(t, ada, 1)

	cases := []struct{ name, userID, id string }{
		{"unknown id", ada, ids.New(ids.Notification)},
		{"another user's notification", bob, adaIDs[0]},
		{"malformed id", ada, "ntf_nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.service.MarkRead(context.Background(), tc.userID, tc.id)
			if apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("MarkRead = %v; want NotFound", err)
			}
		})
	}
	if n := f.unread(t, ada); n != 1 {
		t.Errorf("Ada's unread = %d; want 1", n)
	}
	if n := f.unread(t, bob); n != 0 {
		t.Errorf("Bob's unread = %d; want 0", n)
	}
}

func TestMarkAllRead(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	// More than one batch of the read-all transaction.
	created := f.create(t, userID, 57)
	if _, err := f.service.MarkRead(context.Background(), userID, created[10]); err != nil {
		t.Fatal(err)
	}

	marked, err := f.service.MarkAllRead(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if marked != 56 {
		t.Errorf("marked = %d; want 56", marked)
	}
	if n := f.unread(t, userID); n != 0 {
		t.Errorf("unread = %d; want 0", n)
	}
	unread, _, err := f.service.List(context.Background(), userID, true, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(unread) != 0 {
		t.Errorf("unread list has %d items; want 0", len(unread))
	}
	again, err := f.service.MarkAllRead(context.Background(), userID)
	if err != nil || again != 0 {
		t.Errorf("second MarkAllRead = %d, %v; want 0, nil", again, err)
	}
}

// TestUnreadCountUnderConcurrency creates, reads and reads-all in parallel
// and then holds the counter against the notifications themselves.
func TestUnreadCountUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	existing := f.create(t, userID, 20)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 20 {
		wg.Add(3)
		go func() { // a new notification
			defer wg.Done()
			at := sampleTime.Add(time.Hour + time.Duration(i)*time.Second)
			_, err := f.service.Create(ctx, userID, notify.Notification{
				ID: ids.NewAt(ids.Notification, at), Type: events.NewLogin, Title: "t", Body: "b", EventID: "evt_x", CreatedAt: at,
			})
			errs <- err
		}()
		go func() { // the same existing notification read by several requests
			defer wg.Done()
			_, err := f.service.MarkRead(ctx, userID, existing[i%5])
			errs <- err
		}()
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				_, err := f.service.MarkAllRead(ctx, userID)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	unread, _, err := f.service.List(ctx, userID, true, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.unread(t, userID); n != len(unread) {
		t.Errorf("unread counter = %d; the table holds %d unread notifications", n, len(unread))
	}
}

func TestCreateSameIDTwice(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	n := notify.Notification{ID: ids.New(ids.Notification), Type: events.NewLogin, Title: "t", Body: "b", EventID: "evt_x", CreatedAt: sampleTime}

	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := f.service.Create(context.Background(), userID, n)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("creates that reported success = %d; want 1", created)
	}
	if u := f.unread(t, userID); u != 1 {
		t.Errorf("unread = %d; want 1", u)
	}
}

func TestPreferencesDefaultsAndUpdate(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	ctx := context.Background()

	prefs, err := f.service.Preferences(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != len(notify.Types) {
		t.Errorf("preferences list %d types; want %d", len(prefs), len(notify.Types))
	}
	for _, typ := range notify.Types {
		if !prefs[typ] {
			t.Errorf("%s is off by default", typ)
		}
	}

	prefs, err = f.service.UpdatePreferences(ctx, userID, map[string]bool{events.MemberJoined: false, events.NewLogin: false})
	if err != nil {
		t.Fatal(err)
	}
	prefs, err = f.service.UpdatePreferences(ctx, userID, map[string]bool{events.NewLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range notify.Types {
		want := typ != events.MemberJoined
		if prefs[typ] != want {
			t.Errorf("%s = %v; want %v", typ, prefs[typ], want)
		}
	}
}

func TestUpdatePreferencesUnknownTypeChangesNothing(t *testing.T) {
	f := newFixture(t)
	userID := ids.New(ids.User)
	_, err := f.service.UpdatePreferences(context.Background(), userID, map[string]bool{events.NewLogin: false, "envelope.exploded": false})
	ae := apperr.As(err)
	if ae == nil || ae.Code != apperr.Invalid || ae.Reason != "unknown_notification_type" || ae.Field != "envelope.exploded" {
		t.Fatalf("error = %v; want Invalid unknown_notification_type on envelope.exploded", err)
	}
	prefs, err := f.service.Preferences(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if !prefs[events.NewLogin] {
		t.Error("the valid member of a rejected update was applied")
	}
}
