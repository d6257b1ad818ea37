package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

var desktop = Client{IP: "203.0.113.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}

// clock is a settable test clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

type fixture struct {
	svc   *Service
	store *store.Store
	db    *dynamodb.Client
	table string
	clock *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Password = testParams
	c := newClock()
	svc, err := NewService(st, cfg, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: st, db: env.Clients.DynamoDB, table: env.TableName, clock: c}
}

func (f *fixture) signup(t *testing.T, email string) (User, NewSession) {
	t.Helper()
	u, s, err := f.svc.Signup(context.Background(), SignupInput{Name: "Ada Lovelace", Email: email, Password: "a long enough password"}, desktop)
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return u, s
}

// countItems returns the number of items in the table, so a test can show
// that a rejected request wrote nothing.
func (f *fixture) countItems(t *testing.T) int {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &f.table, Select: types.SelectCount, ConsistentRead: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

// eventsOfType returns the outbox events of a type.
func (f *fixture) eventsOfType(t *testing.T, typ string) []map[string]types.AttributeValue {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{
		TableName:                 &f.table,
		FilterExpression:          new("entity = :e AND #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: "event"}, ":t": &types.AttributeValueMemberS{Value: typ}},
		ConsistentRead:            new(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func wantCode(t *testing.T, err error, code apperr.Code, reason string) {
	t.Helper()
	ae := apperr.As(err)
	if ae == nil {
		t.Fatalf("error = %v; want %s/%s", err, code, reason)
	}
	if ae.Code != code || (reason != "" && ae.ReasonCode() != reason) {
		t.Fatalf("error = %s/%s (%s); want %s/%s", ae.Code, ae.ReasonCode(), ae.Message, code, reason)
	}
}

func TestSignupThenAuthenticate(t *testing.T) {
	f := newFixture(t)
	u, s := f.signup(t, "Ada@Example.com")

	if u.Email != "Ada@Example.com" {
		t.Errorf("email = %q; want the address as given", u.Email)
	}
	got, sess, err := f.svc.Authenticate(context.Background(), s.Token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if got.ID != u.ID || sess.ID != s.ID {
		t.Errorf("Authenticate = user %s session %s; want %s %s", got.ID, sess.ID, u.ID, s.ID)
	}
}

func TestSignupDuplicateEmailWritesNothing(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "grace@example.com")
	before := f.countItems(t)

	for _, email := range []string{"grace@example.com", "GRACE@example.com", " Grace@Example.COM "} {
		_, _, err := f.svc.Signup(context.Background(), SignupInput{Name: "Other", Email: email, Password: "another long password"}, desktop)
		wantCode(t, err, apperr.Conflict, "email_taken")
	}
	if after := f.countItems(t); after != before {
		t.Errorf("items after rejected signups = %d; want %d", after, before)
	}
}

func TestSignupConcurrentSameEmail(t *testing.T) {
	f := newFixture(t)
	const n = 8
	var wg sync.WaitGroup
	var created atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "race@EXAMPLE.com"
			if i%2 == 1 {
				email = "RACE@example.com"
			}
			_, _, err := f.svc.Signup(context.Background(), SignupInput{Name: "Racer", Email: email, Password: "a long enough password"}, desktop)
			if err == nil {
				created.Add(1)
			} else if apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("signup: %v", err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Errorf("concurrent signups with one address created %d users; want 1", created.Load())
	}
}

func TestSignupInvalidInput(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name  string
		in    SignupInput
		field string
	}{
		{"empty name", SignupInput{Name: " ", Email: "a@example.com", Password: "a long enough password"}, "name"},
		{"no at sign", SignupInput{Name: "A", Email: "example.com", Password: "a long enough password"}, "email"},
		{"display name", SignupInput{Name: "A", Email: "Ada <a@example.com>", Password: "a long enough password"}, "email"},
		{"undotted domain", SignupInput{Name: "A", Email: "a@localhost", Password: "a long enough password"}, "email"},
		{"short password", SignupInput{Name: "A", Email: "a@example.com", Password: "short"}, "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.Signup(context.Background(), tc.in, desktop)
			wantCode(t, err, apperr.Invalid, "")
			if got := apperr.As(err).Field; got != tc.field {
				t.Errorf("field = %q; want %q", got, tc.field)
			}
		})
	}
	if n := f.countItems(t); n != 0 {
		t.Errorf("items after invalid signups = %d; want 0", n)
	}
}

func TestLoginSameErrorForUnknownEmailAndWrongPassword(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ada@example.com")

	_, _, errUnknown := f.svc.Login(context.Background(), "nobody@example.com", "a long enough password", desktop)
	_, _, errWrong := f.svc.Login(context.Background(), "ada@example.com", "the wrong password!", desktop)
	wantCode(t, errUnknown, apperr.Unauthorized, "invalid_credentials")
	wantCode(t, errWrong, apperr.Unauthorized, "invalid_credentials")
	if apperr.As(errUnknown).Message != apperr.As(errWrong).Message {
		t.Errorf("messages differ: %q vs %q", apperr.As(errUnknown).Message, apperr.As(errWrong).Message)
	}
}

func TestLoginNewDeviceRaisesEventOnce(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ada@example.com")

	login := func(c Client) {
		t.Helper()
		if _, _, err := f.svc.Login(context.Background(), "ADA@example.com", "a long enough password", c); err != nil {
			t.Fatalf("login: %v", err)
		}
	}
	login(desktop)
	if n := len(f.eventsOfType(t, "security.new_login")); n != 0 {
		t.Fatalf("new_login events after login from the signup device = %d; want 0", n)
	}

	phone := Client{IP: "198.51.100.7", UserAgent: "SignSecure-iOS/2.1"}
	login(phone)
	login(phone)
	login(Client{IP: "198.51.100.99", UserAgent: phone.UserAgent}) // same /24 network
	if n := len(f.eventsOfType(t, "security.new_login")); n != 1 {
		t.Errorf("new_login events after three logins from one new device = %d; want 1", n)
	}
}

func TestLoginThrottledPerAccount(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ada@example.com")
	max := f.svc.cfg.MaxFailuresPerAccount

	for i := range max {
		client := Client{IP: fmt.Sprintf("192.0.2.%d", i+1), UserAgent: "curl/8"}
		_, _, err := f.svc.Login(context.Background(), "ada@example.com", "wrong password "+fmt.Sprint(i), client)
		wantCode(t, err, apperr.Unauthorized, "invalid_credentials")
	}
	_, _, err := f.svc.Login(context.Background(), "ada@example.com", "a long enough password", desktop)
	wantCode(t, err, apperr.RateLimited, "too_many_login_attempts")
	if ra := apperr.As(err).RetryAfter; ra <= 0 || ra > f.svc.cfg.LoginWindow {
		t.Errorf("RetryAfter = %v; want within (0, %v]", ra, f.svc.cfg.LoginWindow)
	}

	f.clock.Advance(f.svc.cfg.LoginWindow)
	if _, _, err := f.svc.Login(context.Background(), "ada@example.com", "a long enough password", desktop); err != nil {
		t.Errorf("login in the next window: %v", err)
	}
}

func TestLoginThrottleHoldsUnderParallelFailures(t *testing.T) {
	f := newFixture(t)
	f.signup(t, "ada@example.com")
	max := f.svc.cfg.MaxFailuresPerAccount

	var wg sync.WaitGroup
	var checked atomic.Int32
	for i := range 4 * max {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := Client{IP: fmt.Sprintf("192.0.2.%d", i+1), UserAgent: "curl/8"}
			_, _, err := f.svc.Login(context.Background(), "ada@example.com", "wrong password", client)
			if apperr.CodeOf(err) == apperr.Unauthorized {
				checked.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := int(checked.Load()); got != max {
		t.Errorf("password checks among %d parallel wrong logins = %d; want exactly %d", 4*max, got, max)
	}
}

func TestLoginThrottledPerClient(t *testing.T) {
	f := newFixture(t)
	max := f.svc.cfg.MaxFailuresPerClient
	for i := range max {
		_, _, err := f.svc.Login(context.Background(), fmt.Sprintf("user%d@example.com", i), "some password", desktop)
		wantCode(t, err, apperr.Unauthorized, "invalid_credentials")
	}
	_, _, err := f.svc.Login(context.Background(), "another@example.com", "some password", desktop)
	wantCode(t, err, apperr.RateLimited, "too_many_login_attempts")
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	f := newFixture(t)
	u, first := f.signup(t, "ada@example.com")
	_, second, err := f.svc.Login(context.Background(), "ada@example.com", "a long enough password", desktop)
	if err != nil {
		t.Fatal(err)
	}
	_, current, err := f.svc.Authenticate(context.Background(), second.Token)
	if err != nil {
		t.Fatal(err)
	}

	err = f.svc.ChangePassword(context.Background(), u.ID, sessionHashOf(current), "wrong current password", "a brand new password", desktop)
	wantCode(t, err, apperr.Unauthorized, "invalid_credentials")

	if err := f.svc.ChangePassword(context.Background(), u.ID, sessionHashOf(current), "a long enough password", "a brand new password", desktop); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}

	_, _, err = f.svc.Authenticate(context.Background(), first.Token)
	wantCode(t, err, apperr.Unauthorized, "invalid_session")
	if _, _, err := f.svc.Authenticate(context.Background(), second.Token); err != nil {
		t.Errorf("the session that changed the password stopped working: %v", err)
	}
	if _, _, err := f.svc.Login(context.Background(), "ada@example.com", "a long enough password", desktop); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("login with the old password: %v; want unauthorized", err)
	}
	if _, _, err := f.svc.Login(context.Background(), "ada@example.com", "a brand new password", desktop); err != nil {
		t.Errorf("login with the new password: %v", err)
	}

	sessions, _, err := f.svc.ListSessions(context.Background(), u.ID, sessionHashOf(current), 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.ID == first.ID {
			t.Errorf("ended session %s is still listed", first.ID)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t)
	_, s := f.signup(t, "ada@example.com")
	f.clock.Advance(f.svc.cfg.SessionTTL)
	_, _, err := f.svc.Authenticate(context.Background(), s.Token)
	wantCode(t, err, apperr.Unauthorized, "invalid_session")
}

func TestAuthenticateMalformedTokens(t *testing.T) {
	f := newFixture(t)
	for _, tok := range []string{"", "sess_", "sess_short", "signsecure_abc", "sess_" + string(make([]byte, sessionTokenChars))} {
		_, _, err := f.svc.Authenticate(context.Background(), tok)
		wantCode(t, err, apperr.Unauthorized, "invalid_session")
	}
}

func TestUpdateProfileEmailMovesClaim(t *testing.T) {
	f := newFixture(t)
	ada, _ := f.signup(t, "ada@example.com")
	f.signup(t, "grace@example.com")

	taken := "GRACE@example.com"
	_, err := f.svc.UpdateProfile(context.Background(), ada.ID, ProfileUpdate{Email: &taken, CurrentPassword: "a long enough password"}, desktop)
	wantCode(t, err, apperr.Conflict, "email_taken")

	newEmail := "countess@example.com"
	newName := "Augusta Ada King"
	u, err := f.svc.UpdateProfile(context.Background(), ada.ID, ProfileUpdate{Email: &newEmail, Name: &newName, CurrentPassword: "a long enough password"}, desktop)
	if err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	if u.Email != newEmail || u.Name != newName {
		t.Errorf("profile = %q %q; want %q %q", u.Name, u.Email, newName, newEmail)
	}

	// The old address is free again; the new one is claimed.
	f.signup(t, "ada@example.com")
	_, _, err = f.svc.Signup(context.Background(), SignupInput{Name: "X", Email: "Countess@Example.com", Password: "a long enough password"}, desktop)
	wantCode(t, err, apperr.Conflict, "email_taken")
}

func TestUpdateProfileCaseOnlyChangeKeepsClaim(t *testing.T) {
	f := newFixture(t)
	ada, _ := f.signup(t, "ada@example.com")
	upper := "ADA@example.com"
	if _, err := f.svc.UpdateProfile(context.Background(), ada.ID, ProfileUpdate{Email: &upper, CurrentPassword: "a long enough password"}, desktop); err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	var claim emailClaimItem
	if err := f.store.Get(context.Background(), store.EmailKey("ada@example.com"), &claim); err != nil || claim.UserID != ada.ID {
		t.Errorf("claim after case-only change = %+v, %v; want owned by %s", claim, err, ada.ID)
	}
}

func TestRevokeSession(t *testing.T) {
	f := newFixture(t)
	u, first := f.signup(t, "ada@example.com")
	other, _ := f.signup(t, "grace@example.com")

	err := f.svc.RevokeSession(context.Background(), other.ID, first.ID)
	wantCode(t, err, apperr.NotFound, "session_not_found")
	if _, _, err := f.svc.Authenticate(context.Background(), first.Token); err != nil {
		t.Fatalf("another user's revoke ended the session: %v", err)
	}

	if err := f.svc.RevokeSession(context.Background(), u.ID, first.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	_, _, err = f.svc.Authenticate(context.Background(), first.Token)
	wantCode(t, err, apperr.Unauthorized, "invalid_session")
	err = f.svc.RevokeSession(context.Background(), u.ID, "ses_not-an-id")
	wantCode(t, err, apperr.Invalid, "invalid_id")
}

func TestListSessionsPaginates(t *testing.T) {
	f := newFixture(t)
	u, _ := f.signup(t, "ada@example.com")
	for range 4 {
		if _, _, err := f.svc.Login(context.Background(), "ada@example.com", "a long enough password", desktop); err != nil {
			t.Fatal(err)
		}
	}

	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		sessions, next, err := f.svc.ListSessions(context.Background(), u.ID, "", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions {
			if seen[s.ID] {
				t.Errorf("session %s listed twice", s.ID)
			}
			seen[s.ID] = true
		}
		if next == "" || page > 5 {
			break
		}
		cursor = next
	}
	if len(seen) != 5 {
		t.Errorf("listed %d sessions; want 5", len(seen))
	}

	other, _ := f.signup(t, "grace@example.com")
	_, next, _ := f.svc.ListSessions(context.Background(), u.ID, "", 1, "")
	if _, _, err := f.svc.ListSessions(context.Background(), other.ID, "", 1, next); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("another user's cursor: err = %v; want ErrInvalidCursor", err)
	}
}

func TestEmailChangeNeedsCurrentPassword(t *testing.T) {
	f := newFixture(t)
	ada, _ := f.signup(t, "ada@example.com")
	email := "new@example.com"

	for _, password := range []string{"", "not the password"} {
		_, err := f.svc.UpdateProfile(context.Background(), ada.ID, ProfileUpdate{Email: &email, CurrentPassword: password}, desktop)
		wantCode(t, err, apperr.Unauthorized, "invalid_credentials")
	}
	u, err := f.svc.GetUser(context.Background(), ada.ID)
	if err != nil || u.Email != "ada@example.com" {
		t.Errorf("email after rejected changes = %q, %v; want ada@example.com", u.Email, err)
	}

	name := "Only The Name"
	if _, err := f.svc.UpdateProfile(context.Background(), ada.ID, ProfileUpdate{Name: &name}, desktop); err != nil {
		t.Errorf("name change without a password: %v", err)
	}
}

func TestWrongCurrentPasswordThrottled(t *testing.T) {
	f := newFixture(t)
	u, s := f.signup(t, "ada@example.com")
	_, sess, err := f.svc.Authenticate(context.Background(), s.Token)
	if err != nil {
		t.Fatal(err)
	}
	max := f.svc.cfg.MaxFailuresPerAccount
	for range max {
		err := f.svc.ChangePassword(context.Background(), u.ID, sessionHashOf(sess), "a wrong guess!", "a brand new password", desktop)
		wantCode(t, err, apperr.Unauthorized, "invalid_credentials")
	}
	err = f.svc.ChangePassword(context.Background(), u.ID, sessionHashOf(sess), "a long enough password", "a brand new password", desktop)
	wantCode(t, err, apperr.RateLimited, "too_many_login_attempts")
}

func TestNameRejectsInvisibleCharacters(t *testing.T) {
	for _, name := range []string{"Tab\there", "Bell\u0007x", "esc\u001b[31m", "del\u007fx", "line\u2028sep", "RLO \u202egnp.exe", "\u200b", "zero\u200bwidth", "bad\xffutf8"} {
		if _, err := normalizeName("name", name); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("normalizeName(%q) error = %v; want invalid", name, err)
		}
	}
	for _, name := range []string{"Ada Lovelace", "José Müller", "王小明", "O'Brien-Smith"} {
		if _, err := normalizeName("name", name); err != nil {
			t.Errorf("normalizeName(%q) = %v; want accepted", name, err)
		}
	}
}

func TestEmailRejectsLookalikes(t *testing.T) {
	for _, email := range []string{"\u202eada@example.com", "ada\u200b@example.com", "ada@exämple.com", "\u212Aate@example.com",
		"ada@[127.0.0.1]", "ada@1.2.3.4", "ada@-example-.com", "ada@example..com", "ada @example.com"} {
		if _, err := normalizeEmail("email", email); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("normalizeEmail(%q) error = %v; want invalid", email, err)
		}
	}
	for _, email := range []string{"ada@example.com", "ada+tag@mail.example.co.uk", "ada@xn--exmple-cua.com", "ada@example.xn--p1ai"} {
		if _, err := normalizeEmail("email", email); err != nil {
			t.Errorf("normalizeEmail(%q) = %v; want accepted", email, err)
		}
	}
}
