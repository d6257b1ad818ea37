package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/store"
)

// ErrWalletChanged is returned by Debit.Err when another write changed the
// wallet after DebitItems read it, or DynamoDB kept cancelling the
// transaction for concurrent ones. Nothing was written, so prepare a new
// Debit and commit again.
var ErrWalletChanged = errors.New("wallet changed since it was read")

// Debit is a debit of a wallet prepared for the caller's transaction.
type Debit struct {
	// Items holds the wallet update and then the ledger entry. Add both,
	// in this order, to the transaction that performs the paid operation.
	Items []types.TransactWriteItem
	// Entry is the ledger entry that the transaction appends.
	Entry LedgerEntry
	// Wallet is the wallet as it is once the transaction commits.
	Wallet Wallet

	workspaceID string
	cost        int64
}

// DebitItems reads the workspace's wallet and prepares a debit of cost
// credits, to be committed in the caller's transaction. The wallet update
// is conditioned on the wallet version read here, so the transaction fails
// when another write changed the wallet in between. Debit.Err separates
// such a failure from a balance that no longer covers the cost.
//
// Errors: InsufficientCredit (insufficient_credits) when the balance read
// now is below cost.
func (s *Service) DebitItems(ctx context.Context, workspaceID string, cost int64, reason, reference string) (Debit, error) {
	if cost <= 0 || cost > maxCredits {
		return Debit{}, fmt.Errorf("debit wallet %s: cost %d must be from 1 to %d", workspaceID, cost, maxCredits)
	}
	if reason == "" {
		return Debit{}, fmt.Errorf("debit wallet %s: reason is empty", workspaceID)
	}

	old, err := s.readWallet(ctx, workspaceID)
	if err != nil {
		return Debit{}, err
	}
	if old.Balance < cost {
		return Debit{}, insufficientCredits(workspaceID, old.Balance, cost)
	}

	items, next, entry, err := s.moveItems(old, -cost, reason, reference, s.now().UTC())
	if err != nil {
		return Debit{}, err
	}
	return Debit{Items: items, Entry: entry.entry(), Wallet: next.wallet(), workspaceID: workspaceID, cost: cost}, nil
}

// Err returns the error to report for the transaction that carried d.Items
// from index offset on and returned err (the error of Store.Transact):
//
//   - nil when err is nil;
//   - an InsufficientCredit error (insufficient_credits, with balance and
//     cost in Extra) when the wallet's condition failed and the balance at
//     that moment was below the cost;
//   - an error wrapping ErrWalletChanged when the wallet's condition failed
//     with enough balance, or the transaction was cancelled only for
//     conflicts with concurrent transactions;
//   - err itself otherwise, such as when one of the caller's own items
//     failed its condition (see store.FailedAt).
func (d Debit) Err(err error, offset int) error {
	if err == nil {
		return nil
	}
	var tx *store.TxCanceledError
	if !errors.As(err, &tx) {
		return err
	}
	if tx.Failed(offset) && onlyFailed(tx, offset) {
		if balance, ok := balanceOf(tx, offset); ok && balance < d.cost {
			return insufficientCredits(d.workspaceID, balance, d.cost)
		}
		return fmt.Errorf("debit wallet %s: %w", d.workspaceID, ErrWalletChanged)
	}
	if tx.OnlyConflicts() {
		return fmt.Errorf("debit wallet %s: %w: %w", d.workspaceID, ErrWalletChanged, err)
	}
	return err
}

// onlyFailed reports whether item i is the only item whose condition
// failed.
func onlyFailed(tx *store.TxCanceledError, i int) bool {
	for j := range tx.Reasons {
		if j != i && tx.Failed(j) {
			return false
		}
	}
	return true
}

// balanceOf returns the balance of the wallet item as it was when its
// condition failed. A missing item has a balance of zero.
func balanceOf(tx *store.TxCanceledError, i int) (int64, bool) {
	if i >= len(tx.Items) {
		return 0, false
	}
	if tx.Items[i] == nil {
		return 0, true
	}
	var w walletItem
	if err := attributevalue.UnmarshalMap(tx.Items[i], &w); err != nil {
		return 0, false
	}
	return w.Balance, true
}

// DebitWith commits items and a debit of cost credits from the workspace's
// wallet in one transaction. The caller's items come first, so
// store.FailedAt(err, i) on the returned error still names the caller's
// item i. When another write changes the wallet first, DebitWith reads it
// again and retries, a bounded number of times.
//
// Errors: InsufficientCredit (insufficient_credits) when the balance does
// not cover the cost. Conflict (wallet_busy) when the wallet kept changing
// through every attempt. The transaction's error, unchanged, when one of
// the caller's items failed.
func (s *Service) DebitWith(ctx context.Context, workspaceID string, cost int64, reason, reference string, items ...types.TransactWriteItem) (LedgerEntry, error) {
	for attempt := 1; ; attempt++ {
		d, err := s.DebitItems(ctx, workspaceID, cost, reason, reference)
		if err != nil {
			return LedgerEntry{}, err
		}
		all := append(append(make([]types.TransactWriteItem, 0, len(items)+len(d.Items)), items...), d.Items...)

		err = d.Err(s.store.Transact(ctx, all...), len(items))
		if err == nil {
			return d.Entry, nil
		}
		if !errors.Is(err, ErrWalletChanged) {
			return LedgerEntry{}, err
		}
		if attempt == maxWalletAttempts {
			s.logger.WarnContext(ctx, "debit gave up: wallet kept changing", "workspace_id", workspaceID, "attempts", attempt)
			return LedgerEntry{}, &apperr.Error{Code: apperr.Conflict, Reason: "wallet_busy", RetryAfter: time.Second,
				Message: fmt.Sprintf("The wallet of workspace %s changed during each of %d attempts; retry the request.", workspaceID, attempt)}
		}
		s.logger.DebugContext(ctx, "wallet changed during debit; retrying", "workspace_id", workspaceID, "attempt", attempt)
		if err := backoff(ctx, attempt); err != nil {
			return LedgerEntry{}, err
		}
	}
}

func insufficientCredits(workspaceID string, balance, cost int64) error {
	return &apperr.Error{
		Code:   apperr.InsufficientCredit,
		Reason: "insufficient_credits",
		Message: fmt.Sprintf("The wallet of workspace %s has a balance of %d credits, less than the cost of %d credits; buy a credit pack with POST /v1/billing/purchases.",
			workspaceID, balance, cost),
		Extra: map[string]any{"balance": balance, "cost": cost},
	}
}
