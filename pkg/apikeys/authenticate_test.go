package apikeys

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
)

func TestAuthenticateCountsRequests(t *testing.T) {
	f := newFixture(t)
	user := ids.New(ids.User)
	k := f.create(t, personal(user), "counter", 3)
	windowEnd := f.clock.Now().Truncate(time.Minute).Add(time.Minute)

	for i := 1; i <= 3; i++ {
		f.clock.Advance(time.Second)
		got, usage, err := f.svc.Authenticate(context.Background(), k.Secret)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got.ID != k.ID || got.WorkspaceID != user || got.CreatedBy != user {
			t.Errorf("request %d: key %s in %s by %s; want %s in %s by %s", i, got.ID, got.WorkspaceID, got.CreatedBy, k.ID, user, user)
		}
		if usage.Limit != 3 || usage.Remaining != 3-i {
			t.Errorf("request %d: usage %d/%d; want limit 3, remaining %d", i, usage.Remaining, usage.Limit, 3-i)
		}
		if !usage.Reset.Equal(windowEnd) {
			t.Errorf("request %d: reset %s; want %s", i, usage.Reset, windowEnd)
		}
		if want := windowEnd.Sub(f.clock.Now()); usage.ResetAfter != want {
			t.Errorf("request %d: reset after %s; want %s", i, usage.ResetAfter, want)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(f.clock.Now()) {
			t.Errorf("request %d: last_used_at %v; want %s", i, got.LastUsedAt, f.clock.Now())
		}
	}

	f.clock.Advance(time.Second)
	_, usage, err := f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.RateLimited, "rate_limit_exceeded")
	ae := apperr.As(err)
	if want := windowEnd.Sub(f.clock.Now()); ae.RetryAfter != want {
		t.Errorf("RetryAfter = %s; want the time to the window end, %s", ae.RetryAfter, want)
	}
	if usage.Limit != 3 || usage.Remaining != 0 || !usage.Reset.Equal(windowEnd) {
		t.Errorf("usage with 429 = %+v; want limit 3, remaining 0, reset %s", usage, windowEnd)
	}
	if ae.Extra["rate_limit"] != 3 || ae.Extra["rate_limit_remaining"] != 0 || ae.Extra["rate_limit_reset"] != 46 {
		t.Errorf("Extra = %v; want rate_limit 3, rate_limit_remaining 0, rate_limit_reset 46", ae.Extra)
	}
	if it := f.item(t, k.Secret); it.windowCount() != 3 {
		t.Errorf("stored count = %d; want 3, rejected requests not counted", it.windowCount())
	}
}

func TestAuthenticateConcurrentLimit(t *testing.T) {
	f := newFixture(t)
	const limit, requests = 7, 40
	k := f.create(t, personal(ids.New(ids.User)), "parallel", limit)

	ok, limited := parallelAuthenticate(t, f.svc, k.Secret, requests)

	if ok != limit {
		t.Errorf("successes = %d; want exactly %d", ok, limit)
	}
	if limited != requests-limit {
		t.Errorf("rate-limited = %d; want %d", limited, requests-limit)
	}
	if it := f.item(t, k.Secret); it.windowCount() != limit {
		t.Errorf("stored count = %d; want %d", it.windowCount(), limit)
	}
}

func TestAuthenticateConcurrentNewWindow(t *testing.T) {
	f := newFixture(t)
	const limit, requests = 5, 30
	k := f.create(t, personal(ids.New(ids.User)), "rollover", limit)
	for range limit {
		if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
			t.Fatal(err)
		}
	}

	// Every request of the next window starts by finding the old one, so
	// they race to open the new window.
	f.clock.Advance(time.Minute)
	ok, limited := parallelAuthenticate(t, f.svc, k.Secret, requests)

	if ok != limit {
		t.Errorf("successes in the new window = %d; want exactly %d", ok, limit)
	}
	if limited != requests-limit {
		t.Errorf("rate-limited = %d; want %d", limited, requests-limit)
	}
	it := f.item(t, k.Secret)
	if want := windowStart(f.clock.Now()); it.WindowStart != want {
		t.Errorf("window start = %d; want %d", it.WindowStart, want)
	}
	if len(it.WindowCounts) != 1 || it.windowCount() != limit {
		t.Errorf("window counts = %v; want only {%d: %d}", it.WindowCounts, it.WindowStart, limit)
	}
}

// parallelAuthenticate sends n Authenticate calls at once and returns how
// many succeeded and how many were rate limited. Any other outcome fails
// the test.
func parallelAuthenticate(t *testing.T, svc *Service, secret string, n int) (ok, limited int) {
	t.Helper()
	var okCount, limitedCount atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, _, err := svc.Authenticate(context.Background(), secret)
			switch {
			case err == nil:
				okCount.Add(1)
			case apperr.As(err) != nil && apperr.As(err).Reason == "rate_limit_exceeded":
				limitedCount.Add(1)
			default:
				t.Errorf("Authenticate: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(okCount.Load()), int(limitedCount.Load())
}

func TestAuthenticateNewWindowResetsCount(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, personal(ids.New(ids.User)), "minutes", 2)
	for range 2 {
		if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.RateLimited, "rate_limit_exceeded")

	// Skip a few windows, so the stored window is not the previous one.
	f.clock.Advance(3 * time.Minute)
	f.calls.Store(0)
	_, usage, err := f.svc.Authenticate(context.Background(), k.Secret)
	if err != nil {
		t.Fatalf("first request of a new window: %v", err)
	}
	if usage.Remaining != 1 {
		t.Errorf("remaining = %d; want 1", usage.Remaining)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("DynamoDB calls for the first request of a window = %d; want 2", n)
	}
	it := f.item(t, k.Secret)
	if len(it.WindowCounts) != 1 || it.WindowCounts[windowName(windowStart(f.clock.Now()))] != 1 {
		t.Errorf("window counts = %v; want one entry for the new window with 1", it.WindowCounts)
	}
}

func TestAuthenticateSteadyStateOneCall(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, personal(ids.New(ids.User)), "steady", 100)
	if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
		t.Fatal(err)
	}

	for i := range 20 {
		f.calls.Store(0)
		if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
			t.Fatal(err)
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("request %d: DynamoDB calls = %d; want exactly 1", i, n)
		}
	}
}

func TestAuthenticateRejectionsTakeOneCall(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	over := f.create(t, caller, "over", 1)
	if _, _, err := f.svc.Authenticate(context.Background(), over.Secret); err != nil {
		t.Fatal(err)
	}
	revoked := f.create(t, caller, "revoked", 0)
	if err := f.svc.Revoke(context.Background(), caller, revoked.ID); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, secret, reason string
	}{
		{"over the limit", over.Secret, "rate_limit_exceeded"},
		{"revoked", revoked.Secret, "invalid_api_key"},
		{"unknown", newSecret(), "invalid_api_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.calls.Store(0)
			_, _, err := f.svc.Authenticate(context.Background(), tc.secret)
			if ae := apperr.As(err); ae == nil || ae.Reason != tc.reason {
				t.Fatalf("error = %v; want %s", err, tc.reason)
			}
			if n := f.calls.Load(); n != 1 {
				t.Errorf("DynamoDB calls = %d; want 1", n)
			}
		})
	}
}

func TestAuthenticateRevokedStopsOnNextCall(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "to revoke", 0)
	if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
		t.Fatal(err)
	}

	if err := f.svc.Revoke(context.Background(), caller, k.ID); err != nil {
		t.Fatal(err)
	}
	_, _, revokedErr := f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, revokedErr, apperr.Unauthorized, "invalid_api_key")

	_, _, unknownErr := f.svc.Authenticate(context.Background(), newSecret())
	wantCode(t, unknownErr, apperr.Unauthorized, "invalid_api_key")
	if r, u := apperr.As(revokedErr), apperr.As(unknownErr); r.Message != u.Message || r.Field != u.Field || len(r.Extra) != len(u.Extra) {
		t.Errorf("revoked and unknown errors differ: %+v vs %+v", r, u)
	}

	// A new window takes the second update path, which must reject it too.
	f.clock.Advance(time.Minute)
	_, _, err := f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.Unauthorized, "invalid_api_key")
}

func TestAuthenticateExpiredKey(t *testing.T) {
	f := newFixture(t)
	expires := f.clock.Now().Add(90 * time.Second).Truncate(time.Second)
	raw := expires.Format(time.RFC3339)
	k, err := f.svc.Create(context.Background(), personal(ids.New(ids.User)), CreateInput{Name: "temporary", ExpiresAt: &raw})
	if err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(expires.Sub(f.clock.Now()) - time.Millisecond)
	if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
		t.Fatalf("a millisecond before expiry: %v", err)
	}

	f.clock.Advance(time.Millisecond)
	_, _, err = f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.Unauthorized, "api_key_expired")

	f.clock.Advance(time.Hour)
	_, _, err = f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.Unauthorized, "api_key_expired")
}

func TestAuthenticateMalformedKeyMakesNoCall(t *testing.T) {
	f := newFixture(t)
	good := f.create(t, personal(ids.New(ids.User)), "real", 0).Secret
	f.calls.Store(0)

	for _, raw := range []string{
		"",
		"signsecure_",
		"sess_" + good[len(Prefix):],
		good[:len(good)-1],
		good + "A",
		good[:len(good)-1] + string(good[len(good)-1]^1),
		good[:20] + "_" + good[21:],
	} {
		_, _, err := f.svc.Authenticate(context.Background(), raw)
		wantCode(t, err, apperr.Unauthorized, "malformed_api_key")
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("DynamoDB calls for malformed keys = %d; want 0", n)
	}
}

func TestAuthenticateLimitChangeApplies(t *testing.T) {
	f := newFixture(t)
	caller := personal(ids.New(ids.User))
	k := f.create(t, caller, "tunable", 10)
	for range 3 {
		if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
			t.Fatal(err)
		}
	}

	lower := 3
	if _, err := f.svc.Update(context.Background(), caller, k.ID, UpdateInput{RateLimitPerMinute: &lower}); err != nil {
		t.Fatal(err)
	}
	_, usage, err := f.svc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.RateLimited, "rate_limit_exceeded")
	if usage.Limit != 3 {
		t.Errorf("limit in usage = %d; want 3", usage.Limit)
	}

	higher := 5
	if _, err := f.svc.Update(context.Background(), caller, k.ID, UpdateInput{RateLimitPerMinute: &higher}); err != nil {
		t.Fatal(err)
	}
	_, usage, err = f.svc.Authenticate(context.Background(), k.Secret)
	if err != nil {
		t.Fatalf("after raising the limit: %v", err)
	}
	if usage.Remaining != 1 {
		t.Errorf("remaining = %d; want 1", usage.Remaining)
	}
}

func TestAuthenticateClockBehindCountsInLaterWindow(t *testing.T) {
	f := newFixture(t)
	k := f.create(t, personal(ids.New(ids.User)), "skewed", 2)
	behind := newClock()
	behindSvc := NewService(f.store, behind.Now)

	// A function whose clock is ahead opens the next window first.
	f.clock.Advance(time.Minute)
	if _, _, err := f.svc.Authenticate(context.Background(), k.Secret); err != nil {
		t.Fatal(err)
	}

	_, usage, err := behindSvc.Authenticate(context.Background(), k.Secret)
	if err != nil {
		t.Fatalf("request with a clock behind: %v", err)
	}
	if usage.Remaining != 0 {
		t.Errorf("remaining = %d; want 0, counted in the later window", usage.Remaining)
	}
	it := f.item(t, k.Secret)
	if it.WindowStart != windowStart(f.clock.Now()) || len(it.WindowCounts) != 1 || it.windowCount() != 2 {
		t.Errorf("window %d counts %v; want window %d with 2", it.WindowStart, it.WindowCounts, windowStart(f.clock.Now()))
	}

	_, _, err = behindSvc.Authenticate(context.Background(), k.Secret)
	wantCode(t, err, apperr.RateLimited, "rate_limit_exceeded")
}

func TestKeyCaller(t *testing.T) {
	k := Key{ID: "key_1", WorkspaceID: "org_1", CreatedBy: "usr_1"}
	c := k.Caller()
	if c.Kind != authn.KindAPIKey || c.APIKeyID != "key_1" || c.WorkspaceID != "org_1" || c.UserID != "usr_1" {
		t.Errorf("Caller() = %+v", c)
	}
	if c.CanManage() {
		t.Error("an API-key caller can manage the workspace")
	}
}

func TestWriteRateLimitHeaders(t *testing.T) {
	cases := []struct {
		name      string
		usage     Usage
		wantReset string
	}{
		{"whole seconds", Usage{Limit: 600, Remaining: 599, ResetAfter: 30 * time.Second}, "30"},
		{"rounded up", Usage{Limit: 600, Remaining: 0, ResetAfter: 30*time.Second + time.Millisecond}, "31"},
		{"below a second", Usage{Limit: 1, Remaining: 0, ResetAfter: time.Millisecond}, "1"},
		{"at the reset", Usage{Limit: 1, Remaining: 1}, "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteRateLimitHeaders(rec, tc.usage)
			h := rec.Header()
			if got, want := h.Get("RateLimit-Limit"), strconv.Itoa(tc.usage.Limit); got != want {
				t.Errorf("RateLimit-Limit = %q; want %q", got, want)
			}
			if got, want := h.Get("RateLimit-Remaining"), strconv.Itoa(tc.usage.Remaining); got != want {
				t.Errorf("RateLimit-Remaining = %q; want %q", got, want)
			}
			if got := h.Get("RateLimit-Reset"); got != tc.wantReset {
				t.Errorf("RateLimit-Reset = %q; want %q", got, tc.wantReset)
			}
		})
	}
}
