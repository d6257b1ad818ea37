package apikeys

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// clock is a settable test clock.
type clock struct{ now atomic.Int64 }

// newClock returns a clock 10 seconds into a minute, so a test that does
// not advance it never crosses a window boundary.
func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC).UnixNano())
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
	// calls counts the DynamoDB API calls that svc makes.
	calls *atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	calls := &atomic.Int64{}
	st, err := store.New(countingDynamoDB(env.Clients.DynamoDB, calls), env.TableName, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	return &fixture{svc: NewService(st, c.Now), store: st, db: env.Clients.DynamoDB, table: env.TableName, clock: c, calls: calls}
}

// countingDynamoDB returns a copy of base that counts every DynamoDB API
// call it makes.
func countingDynamoDB(base *dynamodb.Client, calls *atomic.Int64) *dynamodb.Client {
	return dynamodb.New(base.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					calls.Add(1)
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
}

// scan returns every item in the table.
func (f *fixture) scan(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &f.table, ConsistentRead: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// item reads the key item of a secret.
func (f *fixture) item(t *testing.T, secret string) keyItem {
	t.Helper()
	var it keyItem
	if err := f.store.Get(context.Background(), store.APIKeyKey(token.Hash(secret)), &it); err != nil {
		t.Fatal(err)
	}
	return it
}

func (f *fixture) create(t *testing.T, caller *authn.Caller, name string, limit int) NewKey {
	t.Helper()
	in := CreateInput{Name: name}
	if limit > 0 {
		in.RateLimitPerMinute = &limit
	}
	k, err := f.svc.Create(context.Background(), caller, in)
	if err != nil {
		t.Fatalf("create key %q in %s: %v", name, caller.WorkspaceID, err)
	}
	return k
}

func personal(userID string) *authn.Caller {
	return &authn.Caller{Kind: authn.KindSession, UserID: userID, WorkspaceID: userID}
}

func inOrg(userID, orgID, role string) *authn.Caller {
	return &authn.Caller{Kind: authn.KindSession, UserID: userID, WorkspaceID: orgID, Role: role}
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

func keyIDs(keys []Key) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func TestCreateStoresNoSecret(t *testing.T) {
	f := newFixture(t)
	user := ids.New(ids.User)
	expires := f.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	k, err := f.svc.Create(context.Background(), personal(user), CreateInput{Name: "  CI deploys ", ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}

	if !Valid(k.Secret) {
		t.Errorf("secret %q is not a valid key", k.Secret)
	}
	if !ids.Valid(ids.APIKey, k.ID) {
		t.Errorf("id = %q; want a key_ id", k.ID)
	}
	if k.Name != "CI deploys" {
		t.Errorf("name = %q; want it trimmed", k.Name)
	}
	if k.WorkspaceID != user || k.CreatedBy != user {
		t.Errorf("workspace, creator = %s, %s; want %s for both", k.WorkspaceID, k.CreatedBy, user)
	}
	if k.RateLimitPerMinute != DefaultRateLimit {
		t.Errorf("rate limit = %d; want default %d", k.RateLimitPerMinute, DefaultRateLimit)
	}
	if k.ExpiresAt == nil || k.ExpiresAt.Format(time.RFC3339) != expires {
		t.Errorf("expires_at = %v; want %s", k.ExpiresAt, expires)
	}
	if !strings.HasPrefix(k.Secret, k.Prefix) || !strings.HasSuffix(k.Secret, k.LastFour) {
		t.Errorf("prefix %q and last four %q do not match the secret", k.Prefix, k.LastFour)
	}
	if k.LastUsedAt != nil || k.RevokedAt != nil {
		t.Errorf("new key has last_used_at %v, revoked_at %v; want nil", k.LastUsedAt, k.RevokedAt)
	}

	items := f.scan(t)
	if len(items) != 1 {
		t.Fatalf("items = %d; want 1", len(items))
	}
	raw, _ := json.Marshal(items[0])
	randomPart := k.Secret[len(Prefix)+shownRandomChars : len(k.Secret)-4]
	if strings.Contains(string(raw), randomPart) {
		t.Errorf("stored item contains the secret's hidden part: %s", raw)
	}
	if pk := items[0]["PK"].(*types.AttributeValueMemberS).Value; pk != "APIKEY#"+token.Hash(k.Secret) {
		t.Errorf("PK = %q; want APIKEY#<sha256 of the key>", pk)
	}
	it := f.item(t, k.Secret)
	if it.ExpiresAt != k.ExpiresAt.Add(retention).Unix() {
		t.Errorf("TTL = %d; want expiry plus %s", it.ExpiresAt, retention)
	}
}

func TestCreateInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	past := f.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	now := f.clock.Now().Format(time.RFC3339)
	notRFC3339 := "tomorrow"
	dateOnly := "2027-01-31"
	zero, tooHigh, negative := 0, MaxRateLimit+1, -5

	cases := []struct {
		name  string
		in    CreateInput
		field string
	}{
		{"blank name", CreateInput{Name: "  "}, "name"},
		{"long name", CreateInput{Name: strings.Repeat("x", maxNameRunes+1)}, "name"},
		{"control character in name", CreateInput{Name: "ci\x00key"}, "name"},
		{"expiry in the past", CreateInput{Name: "k", ExpiresAt: &past}, "expires_at"},
		{"expiry now", CreateInput{Name: "k", ExpiresAt: &now}, "expires_at"},
		{"expiry not RFC 3339", CreateInput{Name: "k", ExpiresAt: &notRFC3339}, "expires_at"},
		{"expiry date only", CreateInput{Name: "k", ExpiresAt: &dateOnly}, "expires_at"},
		{"zero rate limit", CreateInput{Name: "k", RateLimitPerMinute: &zero}, "rate_limit_per_minute"},
		{"negative rate limit", CreateInput{Name: "k", RateLimitPerMinute: &negative}, "rate_limit_per_minute"},
		{"rate limit over maximum", CreateInput{Name: "k", RateLimitPerMinute: &tooHigh}, "rate_limit_per_minute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Create(context.Background(), caller, tc.in)
			wantCode(t, err, apperr.Invalid, "")
			if got := apperr.As(err).Field; got != tc.field {
				t.Errorf("field = %q; want %q", got, tc.field)
			}
		})
	}
	if n := len(f.scan(t)); n != 0 {
		t.Errorf("items after invalid creates = %d; want 0", n)
	}
}

func TestCreateRateLimitBounds(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	for _, limit := range []int{1, MaxRateLimit} {
		k := f.create(t, caller, "bound", limit)
		if k.RateLimitPerMinute != limit {
			t.Errorf("rate limit = %d; want %d", k.RateLimitPerMinute, limit)
		}
	}
}

func TestWorkspaceIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice, bob, org := ids.New(ids.User), ids.New(ids.User), ids.New(ids.Organization)
	aliceKey := f.create(t, personal(alice), "alice personal", 0)
	bobKey := f.create(t, personal(bob), "bob personal", 0)
	orgKey := f.create(t, inOrg(alice, org, authn.RoleOwner), "org key", 0)

	lists := []struct {
		name   string
		caller *authn.Caller
		want   string
	}{
		{"alice personal", personal(alice), aliceKey.ID},
		{"bob personal", personal(bob), bobKey.ID},
		{"alice in org", inOrg(alice, org, authn.RoleOwner), orgKey.ID},
		{"bob in org as member", inOrg(bob, org, authn.RoleMember), orgKey.ID},
	}
	for _, tc := range lists {
		t.Run("list "+tc.name, func(t *testing.T) {
			keys, next, err := f.svc.List(ctx, tc.caller, 100, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := keyIDs(keys); len(got) != 1 || got[0] != tc.want {
				t.Errorf("list = %v; want only %s", got, tc.want)
			}
			if next != "" {
				t.Errorf("next cursor = %q; want none", next)
			}
		})
	}

	foreign := []struct {
		name   string
		caller *authn.Caller
		id     string
	}{
		{"alice reads bob's key", personal(alice), bobKey.ID},
		{"alice reads org key from personal workspace", personal(alice), orgKey.ID},
		{"alice reads personal key from org workspace", inOrg(alice, org, authn.RoleOwner), aliceKey.ID},
		{"bob reads org key from personal workspace", personal(bob), orgKey.ID},
		{"unknown id", personal(alice), ids.New(ids.APIKey)},
	}
	for _, tc := range foreign {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Get(ctx, tc.caller, tc.id)
			wantCode(t, err, apperr.NotFound, "api_key_not_found")

			name := "stolen"
			_, err = f.svc.Update(ctx, tc.caller, tc.id, UpdateInput{Name: &name})
			wantCode(t, err, apperr.NotFound, "api_key_not_found")

			err = f.svc.Revoke(ctx, tc.caller, tc.id)
			wantCode(t, err, apperr.NotFound, "api_key_not_found")
		})
	}

	for _, k := range []NewKey{aliceKey, bobKey, orgKey} {
		it := f.item(t, k.Secret)
		if it.RevokedAt != "" || it.Name != k.Name {
			t.Errorf("key %s after foreign calls: name %q, revoked_at %q; want unchanged", k.ID, it.Name, it.RevokedAt)
		}
		if _, _, err := f.svc.Authenticate(ctx, k.Secret); err != nil {
			t.Errorf("key %s no longer authenticates: %v", k.ID, err)
		}
	}
}

func TestOrganizationRoleMatrix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	org := ids.New(ids.Organization)
	owner := inOrg(ids.New(ids.User), org, authn.RoleOwner)

	cases := []struct {
		role    string
		allowed bool
	}{
		{authn.RoleOwner, true},
		{authn.RoleAdmin, true},
		{authn.RoleMember, false},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			caller := inOrg(ids.New(ids.User), org, tc.role)
			target := f.create(t, owner, "target for "+tc.role, 0)
			before := len(f.scan(t))

			created, createErr := f.svc.Create(ctx, caller, CreateInput{Name: "by " + tc.role})
			name := "renamed by " + tc.role
			_, renameErr := f.svc.Update(ctx, caller, target.ID, UpdateInput{Name: &name})
			limit := 10
			_, limitErr := f.svc.Update(ctx, caller, target.ID, UpdateInput{RateLimitPerMinute: &limit})
			revokeErr := f.svc.Revoke(ctx, caller, target.ID)
			_, getErr := f.svc.Get(ctx, caller, target.ID)
			_, _, listErr := f.svc.List(ctx, caller, 10, "")

			if getErr != nil || listErr != nil {
				t.Errorf("read as %s: get %v, list %v; want both allowed", tc.role, getErr, listErr)
			}
			it := f.item(t, target.Secret)
			if tc.allowed {
				for op, err := range map[string]error{"create": createErr, "rename": renameErr, "change limit": limitErr, "revoke": revokeErr} {
					if err != nil {
						t.Errorf("%s as %s: %v", op, tc.role, err)
					}
				}
				if created.WorkspaceID != org || created.CreatedBy != caller.UserID {
					t.Errorf("created key workspace, creator = %s, %s; want %s, %s", created.WorkspaceID, created.CreatedBy, org, caller.UserID)
				}
				if it.Name != name || it.RateLimit != limit || it.RevokedAt == "" {
					t.Errorf("target after %s: name %q, limit %d, revoked_at %q; want renamed, 10, revoked", tc.role, it.Name, it.RateLimit, it.RevokedAt)
				}
				return
			}

			for op, err := range map[string]error{"create": createErr, "rename": renameErr, "change limit": limitErr, "revoke": revokeErr} {
				ae := apperr.As(err)
				if ae == nil || ae.Code != apperr.Forbidden || ae.Reason != "insufficient_role" {
					t.Errorf("%s as member: error %v; want forbidden/insufficient_role", op, err)
					continue
				}
				if !strings.Contains(ae.Message, "Only owners and admins") || !strings.Contains(ae.Message, org) || !strings.Contains(ae.Message, "your role is member") {
					t.Errorf("%s as member: message %q does not name the rule, the organization and the role", op, ae.Message)
				}
			}
			if after := len(f.scan(t)); after != before {
				t.Errorf("items after member's writes = %d; want %d", after, before)
			}
			if it.Name != target.Name || it.RateLimit != DefaultRateLimit || it.RevokedAt != "" {
				t.Errorf("target after member's writes: name %q, limit %d, revoked_at %q; want unchanged", it.Name, it.RateLimit, it.RevokedAt)
			}
		})
	}
}

func TestAPIKeyCallerCannotManage(t *testing.T) {
	f := newFixture(t)
	user := ids.New(ids.User)
	k := f.create(t, personal(user), "first", 0)
	caller := k.Caller()

	_, err := f.svc.Create(context.Background(), caller, CreateInput{Name: "second"})
	wantCode(t, err, apperr.Forbidden, "session_required")
	err = f.svc.Revoke(context.Background(), caller, k.ID)
	wantCode(t, err, apperr.Forbidden, "session_required")
}

func TestListNewestFirstPaginated(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	var created []string
	for i := range 5 {
		created = append(created, f.create(t, caller, "key "+string(rune('a'+i)), 0).ID)
		f.clock.Advance(time.Millisecond)
	}

	var got []string
	cursor := ""
	pages := 0
	for {
		keys, next, err := f.svc.List(context.Background(), caller, 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 2 {
			t.Fatalf("page has %d keys; want at most 2", len(keys))
		}
		got = append(got, keyIDs(keys)...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}

	if pages != 3 {
		t.Errorf("pages = %d; want 3", pages)
	}
	if len(got) != len(created) {
		t.Fatalf("listed %d keys; want %d", len(got), len(created))
	}
	for i := range created {
		if want := created[len(created)-1-i]; got[i] != want {
			t.Errorf("key %d = %s; want %s (newest first)", i, got[i], want)
		}
	}
}

func TestListRejectsForeignCursor(t *testing.T) {
	f := newFixture(t)
	alice, bob := personal(ids.New(ids.User)), personal(ids.New(ids.User))
	for range 3 {
		f.create(t, alice, "alice", 0)
		f.create(t, bob, "bob", 0)
	}
	_, next, err := f.svc.List(context.Background(), alice, 1, "")
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v; want a cursor", next, err)
	}

	for _, cursor := range []string{next + "x", "abc"} {
		_, _, err = f.svc.List(context.Background(), bob, 1, cursor)
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("cursor %q in another workspace: error %v; want ErrInvalidCursor", cursor, err)
		}
	}
	_, _, err = f.svc.List(context.Background(), bob, 1, next)
	if !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("alice's cursor in bob's list: error %v; want ErrInvalidCursor", err)
	}
}

func TestGetRejectsMalformedID(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	for _, id := range []string{"", "key_", "usr_01jf3k8x2q7m9v4n5b6c7d8e9f", "key_01jf3k8x2q7m9v4n5b6c7d8e9", "key_01JF3K8X2Q7M9V4N5B6C7D8E9F!"} {
		_, err := f.svc.Get(context.Background(), caller, id)
		wantCode(t, err, apperr.Invalid, "invalid_id")
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("DynamoDB calls for malformed ids = %d; want 0", n)
	}
}

func TestUpdateNameAndLimit(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "old name", 0)

	name, limit := "new name", 42
	got, err := f.svc.Update(context.Background(), caller, k.ID, UpdateInput{Name: &name, RateLimitPerMinute: &limit})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.RateLimitPerMinute != limit {
		t.Errorf("update returned name %q, limit %d; want %q, %d", got.Name, got.RateLimitPerMinute, name, limit)
	}
	read, err := f.svc.Get(context.Background(), caller, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.Name != name || read.RateLimitPerMinute != limit {
		t.Errorf("read back name %q, limit %d; want %q, %d", read.Name, read.RateLimitPerMinute, name, limit)
	}
}

func TestUpdateInvalidChangesNothing(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "keep me", 0)
	blank, zero := " ", 0

	cases := []struct {
		name   string
		in     UpdateInput
		reason string
	}{
		{"empty update", UpdateInput{}, "empty_update"},
		{"blank name", UpdateInput{Name: &blank}, "invalid_name"},
		{"zero limit", UpdateInput{RateLimitPerMinute: &zero}, "invalid_rate_limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Update(context.Background(), caller, k.ID, tc.in)
			wantCode(t, err, apperr.Invalid, tc.reason)
		})
	}
	it := f.item(t, k.Secret)
	if it.Name != "keep me" || it.RateLimit != DefaultRateLimit {
		t.Errorf("key after invalid updates: name %q, limit %d; want unchanged", it.Name, it.RateLimit)
	}
}

func TestUpdateRevokedKeyConflicts(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "gone", 0)
	if err := f.svc.Revoke(context.Background(), caller, k.ID); err != nil {
		t.Fatal(err)
	}
	name := "back"
	_, err := f.svc.Update(context.Background(), caller, k.ID, UpdateInput{Name: &name})
	wantCode(t, err, apperr.Conflict, "api_key_revoked")
}

func TestRevokeTwiceKeepsFirstTime(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "short-lived", 0)

	if err := f.svc.Revoke(context.Background(), caller, k.ID); err != nil {
		t.Fatal(err)
	}
	first := f.item(t, k.Secret)
	f.clock.Advance(time.Hour)
	if err := f.svc.Revoke(context.Background(), caller, k.ID); err != nil {
		t.Fatalf("second revoke: %v; want success", err)
	}
	second := f.item(t, k.Secret)

	if first.RevokedAt == "" {
		t.Fatal("revoked_at not set")
	}
	if second.RevokedAt != first.RevokedAt {
		t.Errorf("revoked_at moved from %s to %s", first.RevokedAt, second.RevokedAt)
	}
	if want := store.ParseTime(first.RevokedAt).Add(retention).Unix(); first.ExpiresAt != want {
		t.Errorf("TTL = %d; want revocation plus %s = %d", first.ExpiresAt, retention, want)
	}
	got, err := f.svc.Get(context.Background(), caller, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil {
		t.Error("Get after revoke: revoked_at is nil")
	}
}
