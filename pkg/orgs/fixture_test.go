package orgs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

// clock is a settable test clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// walletItem is a test double for the items another package adds to a new
// workspace through the WorkspaceItemsFunc hook.
type walletItem struct {
	store.Item
	WorkspaceID string `dynamodbav:"workspace_id"`
}

type fixture struct {
	svc      *Service
	accounts *accounts.Service
	store    *store.Store
	db       *dynamodb.Client
	table    string
	clock    *clock
	handler  http.Handler
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	accCfg := accounts.DefaultConfig()
	accCfg.Password = accounts.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	acc, err := accounts.NewService(st, accCfg, c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}

	newWallet := func(workspaceID string, now time.Time) ([]types.TransactWriteItem, error) {
		it, err := st.PutNew(walletItem{
			Item:        store.Item{PK: store.WorkspacePK(workspaceID), SK: "WALLET", Entity: "wallet"},
			WorkspaceID: workspaceID,
		})
		return []types.TransactWriteItem{it}, err
	}
	svc := NewService(st, c.Now, newWallet, opts...)

	mux, err := httpapi.NewMux(Routes(Handlers{Service: svc}, testSession, testSession))
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.Wrap(mux, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	return &fixture{svc: svc, accounts: acc, store: st, db: env.Clients.DynamoDB, table: env.TableName, clock: c, handler: h}
}

// testUserHeader names the user a test request acts as. testSession turns
// it into a session caller, as the real session middleware does with a
// token.
const testUserHeader = "X-Test-User"

func testSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		userID := r.Header.Get(testUserHeader)
		ctx := authn.WithCaller(r.Context(), &authn.Caller{Kind: authn.KindSession, UserID: userID, WorkspaceID: userID})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type response struct {
	status int
	body   map[string]any
	raw    string
}

// do sends a request as the user through the routes and their middleware.
func (f *fixture) do(t *testing.T, userID, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set(testUserHeader, userID)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)

	res := response{status: rec.Code, raw: rec.Body.String()}
	if strings.HasPrefix(strings.TrimSpace(res.raw), "{") {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: decode response %q: %v", method, path, res.raw, err)
		}
	}
	return res
}

// user signs up a user with the name and address.
func (f *fixture) user(t *testing.T, name, email string) accounts.User {
	t.Helper()
	u, _, err := f.accounts.Signup(context.Background(), accounts.SignupInput{Name: name, Email: email, Password: "a long enough password"},
		accounts.Client{IP: "203.0.113.7", UserAgent: "orgs test"})
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return u
}

// org creates an organization owned by the user.
func (f *fixture) org(t *testing.T, ownerID, name string) Organization {
	t.Helper()
	o, err := f.svc.Create(context.Background(), ownerID, name)
	if err != nil {
		t.Fatalf("create organization %q: %v", name, err)
	}
	return o
}

// join adds a user to an organization with the role, through an
// invitation from inviterID that the user accepts.
func (f *fixture) join(t *testing.T, orgID, inviterID string, u accounts.User, role string) {
	t.Helper()
	inv, err := f.svc.Invite(context.Background(), inviterID, orgID, InviteInput{Email: u.Email, Role: role})
	if err != nil {
		t.Fatalf("invite %s as %s: %v", u.Email, role, err)
	}
	if _, err := f.svc.AcceptInvitation(context.Background(), u.ID, inv.ID, ""); err != nil {
		t.Fatalf("accept invitation of %s: %v", u.Email, err)
	}
}

// getOrg reads the organization item as stored.
func (f *fixture) getOrg(t *testing.T, orgID string) orgItem {
	t.Helper()
	var o orgItem
	if err := f.store.Get(context.Background(), store.OrgKey(orgID), &o); err != nil {
		t.Fatalf("get organization %s: %v", orgID, err)
	}
	return o
}

// roleOf returns the user's stored role in the organization, or "" when
// there is no membership.
func (f *fixture) roleOf(t *testing.T, orgID, userID string) string {
	t.Helper()
	role, err := f.svc.Role(context.Background(), orgID, userID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("role of %s in %s: %v", userID, orgID, err)
	}
	return role
}

// ownerMemberships counts the memberships with the owner role in the
// organization, read from the table.
func (f *fixture) ownerMemberships(t *testing.T, orgID string) int {
	t.Helper()
	var members []memberItem
	if _, err := f.store.QueryPage(context.Background(), store.Query{Partition: store.OrgPK(orgID), SKPrefix: memberSKPrefix, Limit: 100}, &members); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range members {
		if m.Role == authn.RoleOwner {
			n++
		}
	}
	return n
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

// countOrgItems returns the number of items in the organization's
// partition plus its events: every item this package writes for an
// existing organization.
func (f *fixture) countOrgItems(t *testing.T, orgID string) int {
	t.Helper()
	out, err := f.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 &f.table,
		KeyConditionExpression:    new("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(store.OrgPK(orgID))},
		Select:                    types.SelectCount,
		ConsistentRead:            new(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count) + len(f.events(t, "", orgID))
}

// storedEvent is an outbox item with its data decoded.
type storedEvent struct {
	ID          string         `dynamodbav:"id"`
	Type        string         `dynamodbav:"type"`
	WorkspaceID string         `dynamodbav:"workspace_id"`
	Data        string         `dynamodbav:"data"`
	Fields      map[string]any `dynamodbav:"-"`
}

// events returns the outbox events of a type, or of any type for "", in
// the organization's workspace.
func (f *fixture) events(t *testing.T, typ, orgID string) []storedEvent {
	t.Helper()
	var out []storedEvent
	in := &dynamodb.ScanInput{
		TableName:                 &f.table,
		FilterExpression:          new("entity = :e AND workspace_id = :w"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": str("event"), ":w": str(orgID)},
		ConsistentRead:            new(true),
	}
	if typ != "" {
		*in.FilterExpression += " AND #t = :t"
		in.ExpressionAttributeNames = map[string]string{"#t": "type"}
		in.ExpressionAttributeValues[":t"] = str(typ)
	}
	for {
		res, err := f.db.Scan(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		var page []storedEvent
		if err := attributevalue.UnmarshalListOfMaps(res.Items, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if err := json.Unmarshal([]byte(e.Data), &e.Fields); err != nil {
				t.Fatalf("decode event %s data: %v", e.ID, err)
			}
			out = append(out, e)
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// oneEvent returns the only event of a type in the organization's
// workspace, failing the test when there is not exactly one.
func (f *fixture) oneEvent(t *testing.T, typ, orgID string) storedEvent {
	t.Helper()
	evts := f.events(t, typ, orgID)
	if len(evts) != 1 {
		t.Fatalf("%s events in %s = %d; want 1", typ, orgID, len(evts))
	}
	return evts[0]
}

// wantField checks one field of an event's data.
func wantField(t *testing.T, e storedEvent, field string, want any) {
	t.Helper()
	if got := e.Fields[field]; got != want {
		t.Errorf("%s data %s = %v; want %v", e.Type, field, got, want)
	}
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
