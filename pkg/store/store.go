// Package store keeps every SignSecure entity in one DynamoDB table.
//
// The table has the keys PK and SK, a global secondary index GSI1
// (GSI1PK, GSI1SK) for each entity's second access path, a sparse index GSI2
// (GSI2PK, GSI2SK) that holds only wallets below their low-balance
// threshold, a time-to-live attribute expires_at (seconds since the epoch)
// and a stream of new images that feeds the event dispatcher.
//
// A workspace is written <workspace> below: "USER#<user id>" for a personal
// workspace and "ORG#<organization id>" for an organization.
//
//	item                 PK                          SK                          GSI1PK / GSI1SK
//	user                 USER#<id>                   PROFILE
//	email claim          EMAIL#<lowercased email>    EMAIL
//	session              SESSION#<sha256(token)>     SESSION                     USER#<id> / SESSION#<session id>
//	known device         USER#<id>                   DEVICE#<sha256(device)>
//	login throttle       THROTTLE#<scope>#<hash>     WINDOW#<window start>
//	organization         ORG#<id>                    PROFILE
//	membership           ORG#<id>                    MEMBER#<user id>            USER#<user id> / ORG#<id>
//	invitation           ORG#<id>                    INVITE#<id>                 INVITEE#<email> / INVITE#<id>
//	pending invitation   ORG#<id>                    PENDING#<lowercased email>
//	API key              APIKEY#<sha256(key)>        APIKEY                      <workspace>#APIKEYS / <key id>
//	webhook endpoint     <workspace>                 WEBHOOK#<id>
//	webhook delivery     WEBHOOK#<id>                DELIVERY#<delivery id>
//	webhook counter      <workspace>                 WEBHOOKS
//	wallet               <workspace>                 WALLET                      (GSI2 while below threshold)
//	low-balance alert    <workspace>                 LOWBALANCE_ALERT
//	ledger entry         <workspace>                 LEDGER#<entry id>
//	purchase / invoice   <workspace>                 PURCHASE#<purchase id>
//	invoice counter      INVOICESEQ#<seller id>      COUNTER
//	envelope             ENVELOPE#<id>               ENVELOPE                    <workspace>#ENVELOPES / <envelope id>
//	recipient            ENVELOPE#<id>               RECIPIENT#<order>#<id>
//	document             ENVELOPE#<id>               DOCUMENT#<id>
//	audit entry          ENVELOPE#<id>               AUDIT#<entry id>
//	signing token        SIGNING#<sha256(token)>     SIGNING
//	event (outbox)       EVENT#<id>                  EVENT
//	notification         USER#<id>                   NOTIFICATION#<id>
//	unread counter       USER#<id>                   UNREAD_NOTIFICATIONS
//	preferences          USER#<id>                   PREFERENCES
//	email job            EMAILJOB#<job id>           EMAILJOB
//	idempotency record   IDEMPOTENCY#<caller>#<key>  IDEMPOTENCY
//
// Identifiers are ULIDs, so sort keys built from them order items by
// creation time. Access patterns and the operation that serves each:
//
//	get a user, session, key, envelope or event   GetItem on PK/SK (consistent)
//	sign up with a unique email                   TransactWriteItems: user + email claim + event
//	list a user's sessions                        Query GSI1 USER#<id>, SK begins_with SESSION#
//	list a workspace's API keys or envelopes      Query GSI1 <workspace>#APIKEYS / #ENVELOPES
//	list an organization's members                Query ORG#<id>, SK begins_with MEMBER#
//	list a user's organizations                   Query GSI1 USER#<id>, SK begins_with ORG#
//	list an organization's invitations            Query ORG#<id>, SK begins_with INVITE#
//	list the invitations to an email address      Query GSI1 INVITEE#<lowercased email>
//	list a workspace's ledger or purchases        Query <workspace>, SK begins_with LEDGER# / PURCHASE#
//	list a workspace's webhook endpoints          Query <workspace>, SK begins_with WEBHOOK#
//	list an endpoint's deliveries, newest first   Query WEBHOOK#<id>, SK begins_with DELIVERY#, backwards
//	read an envelope with recipients, documents   Query ENVELOPE#<id>, SK >= DOCUMENT# (consistent)
//	list an envelope's audit trail                Query ENVELOPE#<id>, SK begins_with AUDIT#
//	list a user's notifications, newest first     Query USER#<id>, SK begins_with NOTIFICATION#, backwards
//	count a user's unread notifications           GetItem UNREAD_NOTIFICATIONS, changed in each notification's transaction
//	find wallets below their threshold            Query GSI2 LOWBALANCE
//	alert each drop below the threshold once      conditional put of the low-balance alert in the event's transaction
//	number a seller's invoices without gaps       conditional update of the counter in the completing transaction
//
// Every state change that has an event writes its event item in the same
// TransactWriteItems call (the transactional outbox).
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB is the part of *dynamodb.Client that the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Sentinel errors. Callers turn them into domain errors with errors.Is.
var (
	// ErrNotFound is returned when an item does not exist.
	ErrNotFound = errors.New("item not found")
	// ErrConditionFailed is returned when a single-item write's condition
	// does not hold.
	ErrConditionFailed = errors.New("condition failed")
)

// Item holds the key attributes that every item has. Entity structs embed it.
type Item struct {
	PK     string `dynamodbav:"PK"`
	SK     string `dynamodbav:"SK"`
	GSI1PK string `dynamodbav:"GSI1PK,omitempty"`
	GSI1SK string `dynamodbav:"GSI1SK,omitempty"`
	GSI2PK string `dynamodbav:"GSI2PK,omitempty"`
	GSI2SK string `dynamodbav:"GSI2SK,omitempty"`
	// Entity names the kind of item, such as "user" or "session".
	Entity string `dynamodbav:"entity"`
	// ExpiresAt is the TTL attribute in seconds since the epoch; zero means
	// the item does not expire.
	ExpiresAt int64 `dynamodbav:"expires_at,omitempty"`
}

// Store reads and writes the single table.
type Store struct {
	db      DynamoDB
	table   string
	cursors cursorSealer
}

// New returns a store over the table. cursorKey signs pagination cursors
// and must be at least 32 bytes of secret random data, the same for every
// function that serves one API.
func New(db DynamoDB, table string, cursorKey []byte) (*Store, error) {
	if len(cursorKey) < 32 {
		return nil, fmt.Errorf("new store: cursor key has %d bytes, need at least 32", len(cursorKey))
	}
	return &Store{db: db, table: table, cursors: cursorSealer{key: cursorKey}}, nil
}

// DB returns the DynamoDB client, for operations the store does not wrap.
func (s *Store) DB() DynamoDB { return s.db }

// Table returns the table name.
func (s *Store) Table() string { return s.table }

// Get reads the item at key with a consistent read into out. It returns
// ErrNotFound when there is no such item.
func (s *Store) Get(ctx context.Context, key Key, out any) error {
	res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key.Attributes(),
		ConsistentRead: new(true),
	})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if res.Item == nil {
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// Delete removes the item at key. Deleting a missing item is not an error.
func (s *Store) Delete(ctx context.Context, key Key) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key.Attributes()})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Update runs one UpdateItem on the table and returns the new image. A
// failed condition returns ErrConditionFailed together with the item as it
// was, when in.ReturnValuesOnConditionCheckFailure asks for it.
func (s *Store) Update(ctx context.Context, in *dynamodb.UpdateItemInput) (map[string]types.AttributeValue, error) {
	in.TableName = &s.table
	if in.ReturnValues == "" {
		in.ReturnValues = types.ReturnValueAllNew
	}
	res, err := s.db.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, ErrConditionFailed
	}
	if err != nil {
		return nil, fmt.Errorf("update item: %w", err)
	}
	return res.Attributes, nil
}

// Put returns a transaction item that writes v. A non-empty condition, such
// as "attribute_not_exists(PK)", must hold for the transaction to commit.
func (s *Store) Put(v any, condition string) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("encode item: %w", err)
	}
	put := &types.Put{TableName: &s.table, Item: item}
	if condition != "" {
		put.ConditionExpression = &condition
	}
	return types.TransactWriteItem{Put: put}, nil
}

// PutNew returns a transaction item that creates v and fails the
// transaction when an item with the same key exists.
func (s *Store) PutNew(v any) (types.TransactWriteItem, error) {
	return s.Put(v, "attribute_not_exists(PK)")
}

// DeleteIf returns a transaction item that deletes key. A non-empty
// condition must hold for the transaction to commit.
func (s *Store) DeleteIf(key Key, condition string, values map[string]types.AttributeValue) types.TransactWriteItem {
	del := &types.Delete{TableName: &s.table, Key: key.Attributes()}
	if condition != "" {
		del.ConditionExpression = &condition
		del.ExpressionAttributeValues = values
	}
	return types.TransactWriteItem{Delete: del}
}

// UpdateIn returns a transaction item that applies an update expression
// to key.
func (s *Store) UpdateIn(key Key, update, condition string, names map[string]string, values map[string]types.AttributeValue) types.TransactWriteItem {
	u := &types.Update{
		TableName:                 &s.table,
		Key:                       key.Attributes(),
		UpdateExpression:          &update,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if condition != "" {
		u.ConditionExpression = &condition
	}
	return types.TransactWriteItem{Update: u}
}

// ConditionCheck returns a transaction item that only checks a condition
// on key.
func (s *Store) ConditionCheck(key Key, condition string, names map[string]string, values map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 &s.table,
		Key:                       key.Attributes(),
		ConditionExpression:       &condition,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}
}

// maxTransactAttempts bounds the retries of a transaction that DynamoDB
// cancelled only because another transaction touched the same items.
const maxTransactAttempts = 6

// Transact commits the items in one TransactWriteItems call. When a
// condition fails it returns a *TxCanceledError that says which items
// failed. A cancellation caused only by a conflicting concurrent
// transaction is retried with jittered backoff, because nothing was
// written and the conditions are evaluated afresh on the next attempt.
func (s *Store) Transact(ctx context.Context, items ...types.TransactWriteItem) error {
	var err error
	for attempt := 1; attempt <= maxTransactAttempts; attempt++ {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}

		var canceled *types.TransactionCanceledException
		if !errors.As(err, &canceled) {
			return fmt.Errorf("transact %d items: %w", len(items), err)
		}
		txErr := newTxCanceledError(canceled)
		if !txErr.OnlyConflicts() {
			return txErr
		}
		err = txErr

		backoff := time.Duration(rand.Int64N(int64(10*time.Millisecond)<<attempt)) + time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("transact %d items: %w", len(items), ctx.Err())
		case <-time.After(backoff):
		}
	}
	return fmt.Errorf("transact %d items after %d attempts: %w", len(items), maxTransactAttempts, err)
}

// TxCanceledError reports a cancelled transaction and the reason for each
// of its items, in the order the items were given.
type TxCanceledError struct {
	// Reasons holds one DynamoDB cancellation code per item: "None",
	// "ConditionalCheckFailed", "TransactionConflict" and so on.
	Reasons []string
	// Items holds, per item, the item as it was when its condition failed,
	// if the request asked for it.
	Items []map[string]types.AttributeValue
}

func newTxCanceledError(e *types.TransactionCanceledException) *TxCanceledError {
	out := &TxCanceledError{}
	for _, r := range e.CancellationReasons {
		code := "None"
		if r.Code != nil {
			code = *r.Code
		}
		out.Reasons = append(out.Reasons, code)
		out.Items = append(out.Items, r.Item)
	}
	return out
}

// Error lists the reasons.
func (e *TxCanceledError) Error() string {
	return fmt.Sprintf("transaction cancelled: %v", e.Reasons)
}

// Failed reports whether item i was cancelled because its condition failed.
func (e *TxCanceledError) Failed(i int) bool {
	return i >= 0 && i < len(e.Reasons) && e.Reasons[i] == "ConditionalCheckFailed"
}

// OnlyConflicts reports whether every cancelled item was cancelled because
// of a concurrent transaction, and none because of a failed condition.
func (e *TxCanceledError) OnlyConflicts() bool {
	conflicts := 0
	for _, r := range e.Reasons {
		switch r {
		case "None", "":
		case "TransactionConflict":
			conflicts++
		default:
			return false
		}
	}
	return conflicts > 0
}

// FailedAt reports whether err is a cancelled transaction whose item i
// failed its condition.
func FailedAt(err error, i int) bool {
	var tx *TxCanceledError
	return errors.As(err, &tx) && tx.Failed(i)
}
