// Package billing keeps each workspace's credit wallet and its append-only
// ledger, sells credit packs through a payment provider and issues a PDF
// invoice for each completed purchase.
//
// Every change of a balance writes the wallet and a ledger entry in one
// DynamoDB transaction, conditioned on the wallet version that was read, so
// the entries of a wallet always add up to its balance. The same write sets
// the wallet's sparse GSI2 keys (GSI2PK = store.LowBalanceGSI2PK, GSI2SK =
// the workspace id) while the balance is below the low-balance threshold,
// and removes them otherwise.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Deps are the clients the service works with.
type Deps struct {
	// Store is the single table.
	Store *store.Store
	// Provider takes payments. Nil means the test provider.
	Provider Provider
	// Documents stores rendered invoices in Bucket.
	Documents ObjectStore
	Bucket    string
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives retries and the webhook outcomes. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Service manages wallets, the ledger, purchases and invoices.
type Service struct {
	store     *store.Store
	cfg       Config
	provider  Provider
	documents ObjectStore
	bucket    string
	now       func() time.Time
	logger    *slog.Logger
}

// NewService returns a service with the configuration, which must be valid.
func NewService(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new billing service: %w", err)
	}
	if deps.Store == nil || deps.Documents == nil || deps.Bucket == "" {
		return nil, fmt.Errorf("new billing service: store, documents and bucket are required")
	}
	s := &Service{
		store:     deps.Store,
		cfg:       cfg,
		provider:  deps.Provider,
		documents: deps.Documents,
		bucket:    deps.Bucket,
		now:       deps.Now,
		logger:    deps.Logger,
	}
	if s.provider == nil {
		s.provider = TestProvider{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s, nil
}

// Packs returns the credit packs on sale.
func (s *Service) Packs() []Pack {
	return append([]Pack(nil), s.cfg.Packs...)
}

// NewWalletItems returns the items that create a workspace's wallet with
// the configured starting grant, and the grant's ledger entry when the
// grant is positive. They belong in the transaction that creates the user
// or organization, which the wallet's put fails if the workspace already
// has a wallet. Its signature matches
// accounts.WorkspaceItemsFunc.
func (s *Service) NewWalletItems(workspaceID string, now time.Time) ([]types.TransactWriteItem, error) {
	if store.WorkspacePK(workspaceID) == "" {
		return nil, fmt.Errorf("new wallet: %q is not a workspace id", workspaceID)
	}
	now = now.UTC()
	w := newWalletItem(workspaceID, s.cfg.StartingCredits, s.cfg.LowBalanceThreshold, now)
	put, err := s.store.PutNew(w)
	if err != nil {
		return nil, fmt.Errorf("new wallet %s: %w", workspaceID, err)
	}
	items := []types.TransactWriteItem{put}
	if s.cfg.StartingCredits == 0 {
		return items, nil
	}

	entry := newLedgerItem(workspaceID, s.cfg.StartingCredits, s.cfg.StartingCredits, ReasonStartingGrant, "", now)
	entryPut, err := s.store.PutNew(entry)
	if err != nil {
		return nil, fmt.Errorf("new wallet %s: %w", workspaceID, err)
	}
	return append(items, entryPut), nil
}

func newWalletItem(workspaceID string, balance, threshold int64, now time.Time) walletItem {
	w := walletItem{
		Item:        itemAt(store.WalletKey(workspaceID), entityWallet),
		WorkspaceID: workspaceID,
		Balance:     balance,
		Threshold:   threshold,
		Version:     1,
		CreatedAt:   store.FormatTime(now),
		UpdatedAt:   store.FormatTime(now),
	}
	if balance < threshold {
		w.GSI2PK, w.GSI2SK = store.LowBalanceGSI2PK, workspaceID
		w.BelowSince = store.FormatTime(now)
	}
	return w
}

func newLedgerItem(workspaceID string, amount, balanceAfter int64, reason, reference string, now time.Time) ledgerItem {
	id := ids.NewAt(ids.Ledger, now)
	return ledgerItem{
		Item:         itemAt(store.LedgerKey(workspaceID, id), entityLedgerEntry),
		ID:           id,
		WorkspaceID:  workspaceID,
		Amount:       amount,
		BalanceAfter: balanceAfter,
		Reason:       reason,
		Reference:    reference,
		CreatedAt:    store.FormatTime(now),
	}
}

// GetWallet returns the workspace's wallet. A workspace made before billing
// was set up has no wallet item. It reads as an empty wallet with the
// default threshold until its first credit or settings change creates one.
func (s *Service) GetWallet(ctx context.Context, workspaceID string) (Wallet, error) {
	w, err := s.readWallet(ctx, workspaceID)
	if err != nil {
		return Wallet{}, err
	}
	return w.wallet(), nil
}

// readWallet returns the wallet item, or, when there is none, an empty
// wallet item at version 0 with the default threshold, which walletWrite
// creates.
func (s *Service) readWallet(ctx context.Context, workspaceID string) (walletItem, error) {
	var w walletItem
	err := s.store.Get(ctx, store.WalletKey(workspaceID), &w)
	if errors.Is(err, store.ErrNotFound) {
		empty := newWalletItem(workspaceID, 0, s.cfg.LowBalanceThreshold, s.now().UTC())
		empty.Version = 0
		return empty, nil
	}
	if err != nil {
		return walletItem{}, fmt.Errorf("read wallet %s: %w", workspaceID, err)
	}
	return w, nil
}

// ListLedger returns a page of the workspace's ledger, newest first.
func (s *Service) ListLedger(ctx context.Context, workspaceID string, limit int, cursor string) ([]LedgerEntry, string, error) {
	var items []ledgerItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Partition:  store.WorkspacePK(workspaceID),
		SKPrefix:   store.LedgerSKPrefix(),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list ledger of %s: %w", workspaceID, err)
	}
	out := make([]LedgerEntry, 0, len(items))
	for _, it := range items {
		out = append(out, it.entry())
	}
	return out, next, nil
}

// UpdateSettings sets the wallet's low-balance threshold, and adds or
// removes the wallet's GSI2 keys in the same write.
//
// Errors: Invalid (invalid_threshold) for a negative or too large value.
func (s *Service) UpdateSettings(ctx context.Context, workspaceID string, threshold int64) (Wallet, error) {
	if threshold < 0 || threshold > maxCredits {
		return Wallet{}, apperr.InvalidField("low_balance_threshold", "invalid_threshold",
			"Field \"low_balance_threshold\" is %d; it must be a whole number from 0 to %d.", threshold, maxCredits)
	}
	for attempt := 1; ; attempt++ {
		old, err := s.readWallet(ctx, workspaceID)
		if err != nil {
			return Wallet{}, err
		}
		now := s.now().UTC()
		next := old.changed(old.Balance, threshold, now)
		write, err := s.walletWrite(old, next)
		if err != nil {
			return Wallet{}, err
		}
		err = s.store.Transact(ctx, write)
		if err == nil {
			return next.wallet(), nil
		}
		if !retryable(err, 0) || attempt == maxWalletAttempts {
			return Wallet{}, fmt.Errorf("update settings of wallet %s: %w", workspaceID, err)
		}
		s.logger.DebugContext(ctx, "wallet changed during settings update; retrying", "workspace_id", workspaceID, "attempt", attempt)
		if err := backoff(ctx, attempt); err != nil {
			return Wallet{}, err
		}
	}
}

// changed returns the wallet as it is after setting its balance and
// threshold at now: the version one higher and the GSI2 keys present
// exactly while the balance is below the threshold.
func (w walletItem) changed(balance, threshold int64, now time.Time) walletItem {
	wasBelow := w.Balance < w.Threshold
	next := w
	next.Balance, next.Threshold = balance, threshold
	next.Version = w.Version + 1
	next.UpdatedAt = store.FormatTime(now)
	next.GSI2PK, next.GSI2SK, next.BelowSince = "", "", ""
	if balance < threshold {
		next.GSI2PK, next.GSI2SK = store.LowBalanceGSI2PK, w.WorkspaceID
		next.BelowSince = w.BelowSince
		if !wasBelow || next.BelowSince == "" {
			next.BelowSince = store.FormatTime(now)
		}
	}
	return next
}

// walletWrite returns the transaction item that turns old into next. It
// fails the transaction unless the stored version is still old's, which
// makes a choice based on a stale read fail instead of writing a wrong
// balance, ledger balance_after or GSI2 membership. A wallet that did not
// exist (version 0) is created, on the condition that it still does not.
// On failure the item returns the wallet as it was, so a debit can report
// the balance.
func (s *Service) walletWrite(old, next walletItem) (types.TransactWriteItem, error) {
	if old.Version == 0 {
		put, err := s.store.PutNew(next)
		if err != nil {
			return types.TransactWriteItem{}, fmt.Errorf("create wallet %s: %w", old.WorkspaceID, err)
		}
		put.Put.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		return put, nil
	}

	names := map[string]string{
		"#balance":   "balance",
		"#threshold": "low_balance_threshold",
		"#version":   "version",
		"#updated":   "updated_at",
		"#gsi2pk":    "GSI2PK",
		"#gsi2sk":    "GSI2SK",
		"#since":     "below_since",
	}
	values := map[string]types.AttributeValue{
		":balance":   number(next.Balance),
		":threshold": number(next.Threshold),
		":version":   number(old.Version),
		":next":      number(next.Version),
		":updated":   &types.AttributeValueMemberS{Value: next.UpdatedAt},
	}
	update := "SET #balance = :balance, #threshold = :threshold, #version = :next, #updated = :updated"
	if next.GSI2PK != "" {
		update += ", #gsi2pk = :gsi2pk, #gsi2sk = :gsi2sk, #since = :since"
		values[":gsi2pk"] = &types.AttributeValueMemberS{Value: next.GSI2PK}
		values[":gsi2sk"] = &types.AttributeValueMemberS{Value: next.GSI2SK}
		values[":since"] = &types.AttributeValueMemberS{Value: next.BelowSince}
	} else {
		update += " REMOVE #gsi2pk, #gsi2sk, #since"
	}

	it := s.store.UpdateIn(store.WalletKey(old.WorkspaceID), update, "#version = :version", names, values)
	it.Update.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	return it, nil
}

// moveItems returns the wallet update and ledger entry that change old's
// balance by amount, in that order, and the wallet as it will be.
func (s *Service) moveItems(old walletItem, amount int64, reason, reference string, now time.Time) ([]types.TransactWriteItem, walletItem, ledgerItem, error) {
	next := old.changed(old.Balance+amount, old.Threshold, now)
	entry := newLedgerItem(old.WorkspaceID, amount, next.Balance, reason, reference, now)
	entryPut, err := s.store.PutNew(entry)
	if err != nil {
		return nil, walletItem{}, ledgerItem{}, fmt.Errorf("ledger entry for wallet %s: %w", old.WorkspaceID, err)
	}
	write, err := s.walletWrite(old, next)
	if err != nil {
		return nil, walletItem{}, ledgerItem{}, err
	}
	return []types.TransactWriteItem{write, entryPut}, next, entry, nil
}

// Credit adds amount credits to the workspace's wallet with a ledger entry,
// and creates the wallet if the workspace has none. It is for grants made
// outside a purchase, because purchases credit the wallet in their
// completing transaction.
func (s *Service) Credit(ctx context.Context, workspaceID string, amount int64, reason, reference string) (LedgerEntry, error) {
	if amount <= 0 || amount > maxCredits {
		return LedgerEntry{}, fmt.Errorf("credit wallet %s: amount %d must be from 1 to %d", workspaceID, amount, maxCredits)
	}
	if reason == "" {
		return LedgerEntry{}, fmt.Errorf("credit wallet %s: reason is empty", workspaceID)
	}
	for attempt := 1; ; attempt++ {
		old, err := s.readWallet(ctx, workspaceID)
		if err != nil {
			return LedgerEntry{}, err
		}
		items, _, entry, err := s.moveItems(old, amount, reason, reference, s.now().UTC())
		if err != nil {
			return LedgerEntry{}, err
		}
		err = s.store.Transact(ctx, items...)
		if err == nil {
			return entry.entry(), nil
		}
		if !retryable(err, 0) || attempt == maxWalletAttempts {
			return LedgerEntry{}, fmt.Errorf("credit wallet %s: %w", workspaceID, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return LedgerEntry{}, err
		}
	}
}

// maxWalletAttempts bounds how often a write to a wallet is prepared
// again after another write changed the wallet first. Each lost attempt
// means another write to the same wallet committed, so the bound is only
// reached under sustained contention on one wallet.
const maxWalletAttempts = 30

// retryable reports whether a transaction failed only because versioned
// items changed after they were read, or because DynamoDB cancelled it for
// concurrent transactions more often than Store.Transact retries.
// versioned holds the indexes of items conditioned on the value they read,
// such as a wallet's version or the invoice counter.
func retryable(err error, versioned ...int) bool {
	var tx *store.TxCanceledError
	if !errors.As(err, &tx) {
		return false
	}
	if tx.OnlyConflicts() {
		return true
	}
	failed := false
	for i, reason := range tx.Reasons {
		switch {
		case reason == "None" || reason == "" || reason == "TransactionConflict":
		case reason == "ConditionalCheckFailed" && slices.Contains(versioned, i):
			failed = true
		default:
			return false
		}
	}
	return failed
}

// backoff sleeps a random time that grows with the attempt, up to 100 ms,
// so that writers contending for one wallet spread out.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Duration(attempt)*5*time.Millisecond, 100*time.Millisecond)
	d := time.Millisecond + time.Duration(rand.Int64N(int64(ceiling)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
