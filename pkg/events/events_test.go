package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
	"github.com/signsecure/signsecure/pkg/store"
)

func TestNewRejectsUnknownType(t *testing.T) {
	if _, err := events.New("envelope.exploded", "usr_x", nil, time.Now()); err == nil {
		t.Error("New accepted an unknown event type")
	}
}

func TestNewRejectsOversizedData(t *testing.T) {
	_, err := events.New(events.EnvelopeSent, "usr_x", map[string]string{"blob": strings.Repeat("x", 70<<10)}, time.Now())
	if err == nil {
		t.Error("New accepted 70 KiB of event data")
	}
}

func TestOutboxCommitsWithTransaction(t *testing.T) {
	env := localstacktest.New(t)
	s, err := store.New(env.Clients.DynamoDB, env.TableName, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	e, err := events.New(events.MemberJoined, "org_x", map[string]string{"user_id": "usr_y"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Valid(ids.Event, e.ID) {
		t.Errorf("event id %q is not an evt_ id", e.ID)
	}
	put, err := events.Put(s, e)
	if err != nil {
		t.Fatal(err)
	}

	// A transaction that fails writes no event.
	clash, _ := s.PutNew(store.Item{PK: "X#1", SK: "X", Entity: "x"})
	if err := s.Transact(context.Background(), clash); err != nil {
		t.Fatal(err)
	}
	if err := s.Transact(context.Background(), put, clash); err == nil {
		t.Fatal("transaction with a clashing item committed")
	}
	if _, err := events.Get(context.Background(), s, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("event of a cancelled transaction: err = %v; want ErrNotFound", err)
	}

	if err := s.Transact(context.Background(), put); err != nil {
		t.Fatal(err)
	}
	got, err := events.Get(context.Background(), s, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != events.MemberJoined || got.WorkspaceID != "org_x" || !got.Timestamp.Equal(now) {
		t.Errorf("event = %+v", got)
	}
	var data map[string]string
	if err := json.Unmarshal(got.Data, &data); err != nil || data["user_id"] != "usr_y" {
		t.Errorf("data = %s, %v", got.Data, err)
	}

	// Writing the same event twice fails: the outbox never holds duplicates.
	if err := s.Transact(context.Background(), put); !store.FailedAt(err, 0) {
		t.Errorf("second write of event %s: err = %v; want condition failure", e.ID, err)
	}
}
