package billing

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
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

type fixture struct {
	svc   *Service
	store *store.Store
	env   *localstacktest.Env
	db    *dynamodb.Client
	table string
	clock *clock
	cfg   Config
}

// testConfig is DefaultConfig with a seller whose details the invoice test
// looks for.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Seller = Seller{
		ID:            "signsecure-test",
		Name:          "SignSecure Test Ltd",
		Address:       []string{"12 Quill Lane", "Lisbon 1100-148", "Portugal"},
		TaxID:         "PT999999990",
		InvoicePrefix: "INV",
	}
	return cfg
}

// newFixture returns a service over a fresh table and bucket, with cfg and
// provider (nil for the test provider).
func newFixture(t *testing.T, cfg Config, provider Provider) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	svc, err := NewService(cfg, Deps{
		Store:     st,
		Provider:  provider,
		Documents: env.Clients.S3,
		Bucket:    env.BucketName,
		Now:       c.Now,
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: st, env: env, db: env.Clients.DynamoDB, table: env.TableName, clock: c, cfg: cfg}
}

// newUser writes a user profile and the user's personal wallet, the way
// sign-up does, and returns the user id.
func (f *fixture) newUser(t *testing.T, name, email string) string {
	t.Helper()
	id := ids.NewAt(ids.User, f.clock.Now())
	profile := map[string]types.AttributeValue{
		"PK":     &types.AttributeValueMemberS{Value: store.UserPK(id)},
		"SK":     &types.AttributeValueMemberS{Value: "PROFILE"},
		"entity": &types.AttributeValueMemberS{Value: "user"},
		"id":     &types.AttributeValueMemberS{Value: id},
		"name":   &types.AttributeValueMemberS{Value: name},
		"email":  &types.AttributeValueMemberS{Value: email},
	}
	f.createWorkspace(t, id, profile)
	return id
}

// newOrg writes an organization profile and its wallet and returns the
// organization id.
func (f *fixture) newOrg(t *testing.T, name string) string {
	t.Helper()
	id := ids.NewAt(ids.Organization, f.clock.Now())
	profile := map[string]types.AttributeValue{
		"PK":     &types.AttributeValueMemberS{Value: store.OrgPK(id)},
		"SK":     &types.AttributeValueMemberS{Value: "PROFILE"},
		"entity": &types.AttributeValueMemberS{Value: "organization"},
		"id":     &types.AttributeValueMemberS{Value: id},
		"name":   &types.AttributeValueMemberS{Value: name},
	}
	f.createWorkspace(t, id, profile)
	return id
}

func (f *fixture) createWorkspace(t *testing.T, workspaceID string, profile map[string]types.AttributeValue) {
	t.Helper()
	items, err := f.svc.NewWalletItems(workspaceID, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	items = append([]types.TransactWriteItem{{Put: &types.Put{TableName: &f.table, Item: profile}}}, items...)
	if err := f.store.Transact(context.Background(), items...); err != nil {
		t.Fatalf("create workspace %s: %v", workspaceID, err)
	}
}

// rawWallet returns the wallet item's attributes as stored.
func (f *fixture) rawWallet(t *testing.T, workspaceID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      &f.table,
		Key:            store.WalletKey(workspaceID).Attributes(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		t.Fatalf("wallet of %s does not exist", workspaceID)
	}
	return out.Item
}

func (f *fixture) balance(t *testing.T, workspaceID string) int64 {
	t.Helper()
	w, err := f.svc.GetWallet(context.Background(), workspaceID)
	if err != nil {
		t.Fatal(err)
	}
	return w.Balance
}

// ledger returns every ledger entry of the workspace.
func (f *fixture) ledger(t *testing.T, workspaceID string) []ledgerItem {
	t.Helper()
	var all []ledgerItem
	cursor := ""
	for {
		var page []ledgerItem
		next, err := f.store.QueryPage(context.Background(), store.Query{
			Partition: store.WorkspacePK(workspaceID),
			SKPrefix:  store.LedgerSKPrefix(),
			Limit:     100,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func ledgerSum(entries []ledgerItem) int64 {
	var sum int64
	for _, e := range entries {
		sum += e.Amount
	}
	return sum
}

// countItems returns the number of items in the table, so a test can show
// that a rejected request wrote nothing.
func (f *fixture) countItems(t *testing.T) int {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &f.table, Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
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
		FilterExpression:          aws.String("entity = :e AND #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: "event"}, ":t": &types.AttributeValueMemberS{Value: typ}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

// lowBalanceWorkspaces returns the workspace ids listed in GSI2 under
// store.LowBalanceGSI2PK.
func (f *fixture) lowBalanceWorkspaces(t *testing.T) map[string]bool {
	t.Helper()
	out, err := f.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 &f.table,
		IndexName:                 aws.String(store.GSI2),
		KeyConditionExpression:    aws.String("GSI2PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: store.LowBalanceGSI2PK}},
	})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, it := range out.Items {
		if sk, ok := it["GSI2SK"].(*types.AttributeValueMemberS); ok {
			found[sk.Value] = true
		}
	}
	return found
}

func stringAttr(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func numberAttr(t *testing.T, item map[string]types.AttributeValue, name string) int64 {
	t.Helper()
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("attribute %s = %#v; want a number", name, item[name])
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code apperr.Code, reason string) *apperr.Error {
	t.Helper()
	ae := apperr.As(err)
	if ae == nil {
		t.Fatalf("error = %v; want %s/%s", err, code, reason)
	}
	if ae.Code != code || ae.ReasonCode() != reason {
		t.Fatalf("error = %s/%s (%s); want %s/%s", ae.Code, ae.ReasonCode(), ae.Message, code, reason)
	}
	return ae
}
