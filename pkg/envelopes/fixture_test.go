package envelopes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// clock is a test clock that moves one millisecond forward on every read,
// so ids made from it sort in the order they were made.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Add(int64(time.Millisecond))).UTC() }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

var testSigningKey = []byte("test signing key: 32 bytes or more of secret")

var desktop = Client{IP: "203.0.113.10", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"}

type fixture struct {
	svc     *Service
	billing *billing.Service
	store   *store.Store
	env     *localstacktest.Env
	db      *dynamodb.Client
	table   string
	clock   *clock
	cfg     Config
	logs    *bytes.Buffer
}

// newFixture returns a service over a fresh table and bucket, with the
// real billing service as its wallet. Each starting wallet holds
// startingCredits.
func newFixture(t *testing.T, startingCredits int64) *fixture {
	t.Helper()
	env := localstacktest.New(t)
	st, err := store.New(env.Clients.DynamoDB, env.TableName, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	billingCfg := billing.DefaultConfig()
	billingCfg.StartingCredits = startingCredits
	bill, err := billing.NewService(billingCfg, billing.Deps{
		Store: st, Documents: env.Clients.S3, Bucket: env.BucketName, Now: c.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.SigningKey = testSigningKey
	cfg.SigningBaseURL = "https://sign.example.com/s/"
	svc, err := NewService(cfg, Deps{
		Store: st, Wallet: bill, Objects: env.Clients.S3, Bucket: env.BucketName, Now: c.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, billing: bill, store: st, env: env, db: env.Clients.DynamoDB, table: env.TableName, clock: c, cfg: cfg, logs: logs}
}

// lockedWriter serializes writes of concurrent goroutines to one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// personal returns a session caller in a new user's personal workspace,
// whose wallet is created the way sign-up creates it.
func (f *fixture) personal(t *testing.T) *authn.Caller {
	t.Helper()
	userID := ids.New(ids.User)
	f.createWallet(t, userID)
	return &authn.Caller{Kind: authn.KindSession, UserID: userID, SessionID: ids.New(ids.Session), WorkspaceID: userID}
}

// org returns a new organization's id with its wallet, and callers in it:
// an owner's session, a member's session and an API key made by the owner.
func (f *fixture) org(t *testing.T) (orgID string, owner, member, key *authn.Caller) {
	t.Helper()
	orgID = ids.New(ids.Organization)
	f.createWallet(t, orgID)
	ownerID, memberID := ids.New(ids.User), ids.New(ids.User)
	owner = &authn.Caller{Kind: authn.KindSession, UserID: ownerID, WorkspaceID: orgID, Role: authn.RoleOwner}
	member = &authn.Caller{Kind: authn.KindSession, UserID: memberID, WorkspaceID: orgID, Role: authn.RoleMember}
	key = &authn.Caller{Kind: authn.KindAPIKey, UserID: ownerID, APIKeyID: ids.New(ids.APIKey), WorkspaceID: orgID}
	return orgID, owner, member, key
}

func (f *fixture) createWallet(t *testing.T, workspaceID string) {
	t.Helper()
	items, err := f.billing.NewWalletItems(workspaceID, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Transact(context.Background(), items...); err != nil {
		t.Fatalf("create wallet of %s: %v", workspaceID, err)
	}
}

func (f *fixture) balance(t *testing.T, workspaceID string) int64 {
	t.Helper()
	w, err := f.billing.GetWallet(context.Background(), workspaceID)
	if err != nil {
		t.Fatal(err)
	}
	return w.Balance
}

// ledger returns the workspace's ledger entries, oldest first.
func (f *fixture) ledger(t *testing.T, workspaceID string) []billing.LedgerEntry {
	t.Helper()
	entries, _, err := f.billing.ListLedger(context.Background(), workspaceID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].ID < entries[j].ID })
	return entries
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

// countObjects returns the number of objects in the bucket.
func (f *fixture) countObjects(t *testing.T) int {
	t.Helper()
	out, err := f.env.Clients.S3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &f.env.BucketName})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}

// event is an outbox event as the dispatcher reads it.
type event struct {
	ID          string
	Type        string
	WorkspaceID string
	Data        map[string]any
	Raw         string
}

// events returns the outbox events of a type about one envelope, in id
// order.
func (f *fixture) events(t *testing.T, typ, envelopeID string) []event {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{
		TableName:                 &f.table,
		FilterExpression:          aws.String("entity = :e AND #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": str("event"), ":t": str(typ)},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var list []event
	for _, it := range out.Items {
		raw := it["data"].(*types.AttributeValueMemberS).Value
		e := event{
			ID:          it["id"].(*types.AttributeValueMemberS).Value,
			Type:        typ,
			WorkspaceID: it["workspace_id"].(*types.AttributeValueMemberS).Value,
			Raw:         raw,
		}
		if err := json.Unmarshal([]byte(raw), &e.Data); err != nil {
			t.Fatal(err)
		}
		if e.Data["envelope_id"] == envelopeID {
			list = append(list, e)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}

// signingItemOf returns the stored signing token item of a recipient.
func (f *fixture) signingItemOf(t *testing.T, envelopeID, recipientID string) (signingItem, bool) {
	t.Helper()
	var it signingItem
	err := f.store.Get(context.Background(), store.SigningTokenKey(token.Hash(SigningToken(testSigningKey, envelopeID, recipientID))), &it)
	if err != nil {
		return signingItem{}, false
	}
	return it, true
}

// draft creates a draft with the recipients and one document.
func (f *fixture) draft(t *testing.T, caller *authn.Caller, setting string, recipients ...RecipientInput) Envelope {
	t.Helper()
	e, err := f.svc.Create(context.Background(), caller, desktop, CreateInput{
		Title: "Lease agreement", Message: "Please sign.", EmailNotifications: setting, Recipients: recipients,
	})
	if err != nil {
		t.Fatalf("create envelope: %v", err)
	}
	if _, err := f.svc.AddDocument(context.Background(), caller, desktop, e.ID, "lease.pdf", testPDF("lease")); err != nil {
		t.Fatalf("add document: %v", err)
	}
	return e
}

// sent creates and sends an envelope, and returns it with its recipients.
func (f *fixture) sent(t *testing.T, caller *authn.Caller, setting string, recipients ...RecipientInput) Envelope {
	t.Helper()
	e := f.draft(t, caller, setting, recipients...)
	out, err := f.svc.Send(context.Background(), caller, desktop, e.ID)
	if err != nil {
		t.Fatalf("send envelope %s: %v", e.ID, err)
	}
	return out
}

func (f *fixture) get(t *testing.T, caller *authn.Caller, envelopeID string) Envelope {
	t.Helper()
	e, err := f.svc.Get(context.Background(), caller, envelopeID)
	if err != nil {
		t.Fatalf("get envelope %s: %v", envelopeID, err)
	}
	return e
}

func tokenOf(e Envelope, recipientIndex int) string {
	return SigningToken(testSigningKey, e.ID, e.Recipients[recipientIndex].ID)
}

func signer(name string, order int) RecipientInput {
	return RecipientInput{Name: name, Email: name + "@example.com", Role: RoleSigner, RoutingOrder: order}
}

func cc(name string, order int) RecipientInput {
	return RecipientInput{Name: name, Email: name + "@example.com", Role: RoleCC, RoutingOrder: order}
}

func recipientByName(t *testing.T, e Envelope, name string) Recipient {
	t.Helper()
	for _, r := range e.Recipients {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("envelope %s has no recipient %q", e.ID, name)
	return Recipient{}
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

// testPDF returns a small but complete PDF whose page shows text, with a
// cross-reference table at the offset its startxref gives.
func testPDF(text string) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 720 Td (%s) Tj ET", text)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, obj)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// testPNG returns a PNG image of the size.
func testPNG(t *testing.T, width, height int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, width, height))
	for x := range width {
		img.Set(x, height/2, color.Black)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
