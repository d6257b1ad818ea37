package creditalerts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// walletRecord is the part of package billing's wallet item that an alert
// reads.
//
// NOTE: The attribute names repeat those of billing's unexported wallet
// item. The tests of this package write wallets through billing, so they
// fail if the names drift apart.
type walletRecord struct {
	WorkspaceID string `dynamodbav:"workspace_id"`
	Balance     int64  `dynamodbav:"balance"`
	Threshold   int64  `dynamodbav:"low_balance_threshold"`
	BelowSince  string `dynamodbav:"below_since"`
}

// below reports whether w is a workspace's wallet whose balance is below a
// positive threshold. Balances never go below zero, so a wallet with a
// threshold of zero is never below it.
func (w walletRecord) below() bool {
	return store.WorkspacePK(w.WorkspaceID) != "" && w.Threshold > 0 && w.Balance < w.Threshold
}

const entityLowBalanceAlert = "low_balance_alert"

// alertItem records the drop of a workspace's wallet that was alerted
// last. Each new drop overwrites it.
type alertItem struct {
	store.Item
	WorkspaceID string `dynamodbav:"workspace_id"`
	BelowSince  string `dynamodbav:"below_since"`
	EventID     string `dynamodbav:"event_id"`
	AlertedAt   string `dynamodbav:"alerted_at"`
}

// lowBalanceData is the data of a billing.low_credit_balance event.
type lowBalanceData struct {
	WorkspaceID string    `json:"workspace_id"`
	Balance     int64     `json:"balance"`
	Threshold   int64     `json:"threshold"`
	BelowSince  time.Time `json:"below_since"`
}

// Positions of the items in an alert transaction.
const (
	walletCheckIndex = iota
	alertPutIndex
	eventPutIndex
)

// maxAlertAttempts bounds how often one run prepares a wallet's alert
// again after the wallet changed between the read and the transaction.
const maxAlertAttempts = 5

// alertedDrops returns, by workspace id, the below_since of the drop last
// alerted for each of the wallets. It only spares the transactions of
// drops already alerted: a wallet missing from the result, because the
// read failed or DynamoDB left its key unprocessed, goes to alert, whose
// transaction decides.
func (h *Handler) alertedDrops(ctx context.Context, wallets []walletRecord) map[string]string {
	if len(wallets) == 0 {
		return nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(wallets))
	for _, w := range wallets {
		keys = append(keys, store.LowBalanceAlertKey(w.WorkspaceID).Attributes())
	}

	table := h.store.Table()
	out, err := h.store.DB().BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
		RequestItems: map[string]types.KeysAndAttributes{table: {
			Keys:                     keys,
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("workspace_id, #since"),
			ExpressionAttributeNames: map[string]string{"#since": "below_since"},
		}},
	})
	if err != nil {
		h.logger.WarnContext(ctx, "reading the low-balance alert items failed, so each wallet's transaction checks them",
			"wallets", len(wallets), "error", err.Error())
		return nil
	}

	var items []alertItem
	if err := attributevalue.UnmarshalListOfMaps(out.Responses[table], &items); err != nil {
		h.logger.WarnContext(ctx, "decoding the low-balance alert items failed, so each wallet's transaction checks them",
			"error", err.Error())
		return nil
	}
	alerted := make(map[string]string, len(items))
	for _, it := range items {
		alerted[it.WorkspaceID] = it.BelowSince
	}
	return alerted
}

// alert raises the event for the wallet's current drop unless that drop
// was alerted before. raised is false when another run alerted the drop
// first or the drop ended before the transaction.
func (h *Handler) alert(ctx context.Context, w walletRecord) (raised bool, err error) {
	for attempt := 1; ; attempt++ {
		items, event, err := h.alertItems(w, h.now().UTC())
		if err != nil {
			return false, err
		}

		err = h.store.Transact(ctx, items...)
		if err == nil {
			h.logger.InfoContext(ctx, "low-balance alert raised", "workspace_id", w.WorkspaceID,
				"event_id", event.ID, "balance", w.Balance, "threshold", w.Threshold, "below_since", w.BelowSince)
			return true, nil
		}

		switch {
		case store.FailedAt(err, walletCheckIndex):
			current, exists, decodeErr := walletAtCancellation(err)
			if decodeErr != nil {
				return false, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, decodeErr)
			}
			if !exists || !current.below() {
				h.logger.DebugContext(ctx, "wallet's drop below its threshold ended before the alert", "workspace_id", w.WorkspaceID)
				return false, nil
			}
			if current == w {
				return false, fmt.Errorf("alert wallet %s: the wallet check failed although the wallet matches the values read: %w", w.WorkspaceID, err)
			}
			if attempt == maxAlertAttempts {
				return false, fmt.Errorf("alert wallet %s: the wallet changed during each of %d attempts: %w", w.WorkspaceID, attempt, err)
			}
			w = current
		case store.FailedAt(err, alertPutIndex):
			return false, nil
		default:
			return false, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, err)
		}
	}
}

// alertItems returns the transaction items of the wallet's alert at now:
// the wallet check, the alert item and the event, at the positions named
// by walletCheckIndex, alertPutIndex and eventPutIndex.
//
// The wallet check requires the balance, threshold and below_since read,
// so the event reports the wallet as it is when the transaction commits.
// The alert item's put requires that the item does not exist or records
// another drop, so each drop raises one event.
func (h *Handler) alertItems(w walletRecord, now time.Time) ([]types.TransactWriteItem, events.Event, error) {
	if w.BelowSince == "" {
		return nil, events.Event{}, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, errNoBelowSince)
	}
	since, err := time.Parse(time.RFC3339Nano, w.BelowSince)
	if err != nil {
		return nil, events.Event{}, fmt.Errorf("alert wallet %s: below_since %q: %w", w.WorkspaceID, w.BelowSince, err)
	}

	event, err := events.New(events.LowCreditBalance, w.WorkspaceID, lowBalanceData{
		WorkspaceID: w.WorkspaceID,
		Balance:     w.Balance,
		Threshold:   w.Threshold,
		BelowSince:  since.UTC(),
	}, now)
	if err != nil {
		return nil, events.Event{}, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, err)
	}

	check := h.store.ConditionCheck(store.WalletKey(w.WorkspaceID),
		"#since = :since AND #balance = :balance AND #threshold = :threshold",
		map[string]string{"#since": "below_since", "#balance": "balance", "#threshold": "low_balance_threshold"},
		map[string]types.AttributeValue{
			":since":     &types.AttributeValueMemberS{Value: w.BelowSince},
			":balance":   number(w.Balance),
			":threshold": number(w.Threshold),
		})
	check.ConditionCheck.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld

	key := store.LowBalanceAlertKey(w.WorkspaceID)
	put, err := h.store.Put(alertItem{
		Item:        store.Item{PK: key.PK, SK: key.SK, Entity: entityLowBalanceAlert},
		WorkspaceID: w.WorkspaceID,
		BelowSince:  w.BelowSince,
		EventID:     event.ID,
		AlertedAt:   now.Format(time.RFC3339Nano),
	}, "attribute_not_exists(PK) OR #since <> :since")
	if err != nil {
		return nil, events.Event{}, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, err)
	}
	put.Put.ExpressionAttributeNames = map[string]string{"#since": "below_since"}
	put.Put.ExpressionAttributeValues = map[string]types.AttributeValue{":since": &types.AttributeValueMemberS{Value: w.BelowSince}}

	eventPut, err := events.Put(h.store, event)
	if err != nil {
		return nil, events.Event{}, fmt.Errorf("alert wallet %s: %w", w.WorkspaceID, err)
	}

	items := make([]types.TransactWriteItem, 3)
	items[walletCheckIndex], items[alertPutIndex], items[eventPutIndex] = check, put, eventPut
	return items, event, nil
}

// walletAtCancellation returns the wallet as it was when the wallet check
// of a cancelled alert transaction failed. exists is false when there was
// no wallet item.
func walletAtCancellation(txErr error) (w walletRecord, exists bool, err error) {
	var tx *store.TxCanceledError
	if !errors.As(txErr, &tx) || walletCheckIndex >= len(tx.Items) || tx.Items[walletCheckIndex] == nil {
		return walletRecord{}, false, nil
	}
	if err := attributevalue.UnmarshalMap(tx.Items[walletCheckIndex], &w); err != nil {
		return walletRecord{}, false, fmt.Errorf("decode wallet at cancellation: %w", err)
	}
	return w, true, nil
}

func number(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
