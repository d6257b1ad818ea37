package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

type thing struct {
	store.Item
	Value string `dynamodbav:"value"`
	Count int    `dynamodbav:"count"`
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	env := localstacktest.New(t)
	s, err := store.New(env.Clients.DynamoDB, env.TableName, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *store.Store, items ...any) {
	t.Helper()
	var tx []types.TransactWriteItem
	for _, v := range items {
		it, err := s.PutNew(v)
		if err != nil {
			t.Fatal(err)
		}
		tx = append(tx, it)
	}
	if err := s.Transact(context.Background(), tx...); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsShortCursorKey(t *testing.T) {
	if _, err := store.New(nil, "table", make([]byte, 31)); err == nil {
		t.Error("New accepted a 31-byte cursor key")
	}
}

func TestGetMissingItem(t *testing.T) {
	s := newStore(t)
	var out thing
	err := s.Get(context.Background(), store.Key{PK: "THING#1", SK: "THING"}, &out)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(missing) error = %v; want ErrNotFound", err)
	}
}

func TestTransactReportsFailedItem(t *testing.T) {
	s := newStore(t)
	put(t, s, thing{Item: store.Item{PK: "THING#1", SK: "THING", Entity: "thing"}, Value: "a"})

	first, _ := s.PutNew(thing{Item: store.Item{PK: "THING#2", SK: "THING", Entity: "thing"}})
	dup, _ := s.PutNew(thing{Item: store.Item{PK: "THING#1", SK: "THING", Entity: "thing"}, Value: "b"})
	err := s.Transact(context.Background(), first, dup)

	var tx *store.TxCanceledError
	if !errors.As(err, &tx) {
		t.Fatalf("error = %v; want *TxCanceledError", err)
	}
	if store.FailedAt(err, 0) {
		t.Error("item 0 reported as failed; only item 1 broke its condition")
	}
	if !store.FailedAt(err, 1) {
		t.Errorf("item 1 not reported as failed: reasons %v", tx.Reasons)
	}

	// Nothing of the cancelled transaction was written.
	var out thing
	if err := s.Get(context.Background(), store.Key{PK: "THING#2", SK: "THING"}, &out); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("item of a cancelled transaction exists: %v", err)
	}
	if err := s.Get(context.Background(), store.Key{PK: "THING#1", SK: "THING"}, &out); err != nil || out.Value != "a" {
		t.Errorf("existing item = %+v, %v; want value a", out, err)
	}
}

func TestTransactConcurrentIncrementsAllApply(t *testing.T) {
	s := newStore(t)
	key := store.Key{PK: "COUNTER#1", SK: "COUNTER"}
	put(t, s, thing{Item: store.Item{PK: key.PK, SK: key.SK, Entity: "counter"}})

	const n = 20
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inc := s.UpdateIn(key, "ADD #c :one", "attribute_exists(PK)", map[string]string{"#c": "count"},
				map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}})
			if err := s.Transact(context.Background(), inc); err != nil {
				failed.Add(1)
				t.Logf("transact: %v", err)
			}
		}()
	}
	wg.Wait()

	var out thing
	if err := s.Get(context.Background(), key, &out); err != nil {
		t.Fatal(err)
	}
	if out.Count != n-int(failed.Load()) {
		t.Errorf("count = %d with %d failed transactions; want %d", out.Count, failed.Load(), n-int(failed.Load()))
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d conflicting transactions failed after retries; want 0", failed.Load(), n)
	}
}

func TestUpdateConditionFailedReturnsOldItem(t *testing.T) {
	s := newStore(t)
	key := store.Key{PK: "THING#1", SK: "THING"}
	put(t, s, thing{Item: store.Item{PK: key.PK, SK: key.SK, Entity: "thing"}, Value: "a"})

	old, err := s.Update(context.Background(), &dynamodb.UpdateItemInput{
		Key:                                 key.Attributes(),
		UpdateExpression:                    new("SET #v = :b"),
		ConditionExpression:                 new("#v = :b"),
		ExpressionAttributeNames:            map[string]string{"#v": "value"},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":b": &types.AttributeValueMemberS{Value: "b"}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if !errors.Is(err, store.ErrConditionFailed) {
		t.Fatalf("error = %v; want ErrConditionFailed", err)
	}
	if v, ok := old["value"].(*types.AttributeValueMemberS); !ok || v.Value != "a" {
		t.Errorf("old item = %v; want value a", old)
	}
}

func TestQueryPagesThroughPartition(t *testing.T) {
	s := newStore(t)
	var items []any
	for i := range 7 {
		items = append(items, thing{Item: store.Item{PK: "LIST#a", SK: fmt.Sprintf("ROW#%02d", i), Entity: "row"}, Count: i})
	}
	items = append(items, thing{Item: store.Item{PK: "LIST#a", SK: "OTHER#1", Entity: "other"}})
	put(t, s, items...)

	var got []int
	cursor := ""
	pages := 0
	for {
		var page []thing
		next, err := s.QueryPage(context.Background(), store.Query{Partition: "LIST#a", SKPrefix: "ROW#", Limit: 3, Cursor: cursor, Descending: true}, &page)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range page {
			got = append(got, p.Count)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	want := []int{6, 5, 4, 3, 2, 1, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows = %v; want %v", got, want)
	}
}

func TestQueryFilterFillsPage(t *testing.T) {
	s := newStore(t)
	var items []any
	for i := range 10 {
		items = append(items, thing{Item: store.Item{PK: "LIST#f", SK: fmt.Sprintf("ROW#%02d", i), Entity: "row"}, Count: i % 2})
	}
	put(t, s, items...)

	var page []thing
	_, err := s.QueryPage(context.Background(), store.Query{
		Partition: "LIST#f", Limit: 3,
		Filter: "#c = :one", FilterNames: map[string]string{"#c": "count"},
		FilterValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}, &page)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 {
		t.Errorf("filtered page has %d items; want 3", len(page))
	}
}

func TestCursorCannotReachAnotherPartition(t *testing.T) {
	s := newStore(t)
	var items []any
	for i := range 3 {
		items = append(items,
			thing{Item: store.Item{PK: "LIST#mine", SK: fmt.Sprintf("ROW#%d", i), Entity: "row"}},
			thing{Item: store.Item{PK: "LIST#theirs", SK: fmt.Sprintf("ROW#%d", i), Entity: "row"}})
	}
	put(t, s, items...)

	var page []thing
	next, err := s.QueryPage(context.Background(), store.Query{Partition: "LIST#mine", Limit: 1}, &page)
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}

	tampered := []byte(next)
	tampered[len(tampered)/2] ^= 1

	cases := []struct {
		name   string
		query  store.Query
		cursor string
	}{
		{"other partition", store.Query{Partition: "LIST#theirs", Limit: 1}, next},
		{"other index", store.Query{Index: store.GSI1, Partition: "LIST#mine", Limit: 1}, next},
		{"other listing of the partition", store.Query{Partition: "LIST#mine", SKPrefix: "ROW#", Limit: 1}, next},
		{"edited byte", store.Query{Partition: "LIST#mine", Limit: 1}, string(tampered)},
		{"not base64", store.Query{Partition: "LIST#mine", Limit: 1}, "%%%"},
		{"too short", store.Query{Partition: "LIST#mine", Limit: 1}, "YWJj"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.query.Cursor = tc.cursor
			var out []thing
			if _, err := s.QueryPage(context.Background(), tc.query, &out); !errors.Is(err, store.ErrInvalidCursor) {
				t.Errorf("error = %v; want ErrInvalidCursor", err)
			}
		})
	}
}

func TestCursorFromAnotherKeyRejected(t *testing.T) {
	env := localstacktest.New(t)
	a, _ := store.New(env.Clients.DynamoDB, env.TableName, []byte(strings.Repeat("a", 32)))
	b, _ := store.New(env.Clients.DynamoDB, env.TableName, []byte(strings.Repeat("b", 32)))
	put(t, a,
		thing{Item: store.Item{PK: "LIST#k", SK: "ROW#1", Entity: "row"}},
		thing{Item: store.Item{PK: "LIST#k", SK: "ROW#2", Entity: "row"}})

	var page []thing
	next, err := a.QueryPage(context.Background(), store.Query{Partition: "LIST#k", Limit: 1}, &page)
	if err != nil || next == "" {
		t.Fatalf("first page: %q %v", next, err)
	}
	if _, err := b.QueryPage(context.Background(), store.Query{Partition: "LIST#k", Limit: 1, Cursor: next}, &page); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("cursor signed with another key: err = %v; want ErrInvalidCursor", err)
	}
}

func TestWorkspacePK(t *testing.T) {
	cases := map[string]string{
		"usr_01jf3k8x2q7m9v4n5b6c7d8e9f": "USER#usr_01jf3k8x2q7m9v4n5b6c7d8e9f",
		"org_01jf3k8x2q7m9v4n5b6c7d8e9f": "ORG#org_01jf3k8x2q7m9v4n5b6c7d8e9f",
		"key_01jf3k8x2q7m9v4n5b6c7d8e9f": "",
		"":                               "",
	}
	for id, want := range cases {
		if got := store.WorkspacePK(id); got != want {
			t.Errorf("WorkspacePK(%q) = %q; want %q", id, got, want)
		}
	}
}
