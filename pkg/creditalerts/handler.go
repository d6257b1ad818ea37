// Package creditalerts is the scheduled function that raises a
// billing.low_credit_balance event once for each drop of a wallet below its
// low-balance threshold.
//
// Package billing keeps a wallet in the sparse index GSI2, under
// store.LowBalanceGSI2PK, exactly while its balance is below its threshold,
// and stamps below_since with the time of the write that took it below.
// below_since stays unchanged while the wallet stays below and is removed
// when the balance reaches the threshold again, so it identifies the
// current drop. Each run lists the index and, for every wallet whose drop
// was not alerted yet, commits one transaction that
//
//  1. checks that the wallet still has that below_since and a balance
//     below its threshold,
//  2. puts the workspace's alert item (store.LowBalanceAlertKey) with that
//     below_since, on the condition that the item does not exist or
//     records another drop, and
//  3. appends the event to the outbox.
//
// Runs that overlap therefore raise one event per drop: the second
// transaction fails on the alert item. The dispatcher takes the event from
// the table's stream to in-app notifications, emails and webhooks.
//
// Each run also writes one CloudWatch embedded metric format (EMF) line
// with the number of wallets below their threshold and the number of
// alerts raised.
package creditalerts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/signsecure/signsecure/pkg/store"
)

// defaultPageSize is the number of wallets read from GSI2 per query, which
// is also the most keys one BatchGetItem call accepts.
const defaultPageSize = 100

// Handler runs the low-balance check. Its Handle method may run
// concurrently, in one process or in several.
type Handler struct {
	store    *store.Store
	now      func() time.Time
	logger   *slog.Logger
	function string
	pageSize int

	mu  sync.Mutex // serializes writes to out
	out io.Writer
}

// NewHandler returns a handler over the table. out receives the EMF lines
// and must be the function's standard output in Lambda, where CloudWatch
// Logs extracts the metrics. Nil means os.Stdout, time.Now and
// slog.Default() for out, now and logger.
func NewHandler(st *store.Store, out io.Writer, now func() time.Time, logger *slog.Logger) *Handler {
	if out == nil {
		out = os.Stdout
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	function := lambdacontext.FunctionName
	if function == "" {
		function = defaultFunctionName
	}
	return &Handler{store: st, out: out, now: now, logger: logger, function: function, pageSize: defaultPageSize}
}

// Result summarizes one run.
type Result struct {
	// WalletsBelowThreshold counts the wallets found below their threshold.
	WalletsBelowThreshold int `json:"wallets_below_threshold"`
	// AlertsRaised counts the events this run wrote.
	AlertsRaised int `json:"alerts_raised"`
	// Failed counts the wallets whose alert could not be written. The next
	// run tries them again.
	Failed int `json:"failed"`
}

// Handle is the Lambda handler for the EventBridge schedule. It ignores
// the event's content, so any scheduled or test event starts a run. It
// returns an error when listing the wallets failed or any wallet's alert
// failed, after writing the metrics of what the run did. Running it again
// is safe, because alerted drops are not alerted twice.
func (h *Handler) Handle(ctx context.Context, ev lambdaevents.EventBridgeEvent) (Result, error) {
	h.logger.InfoContext(ctx, "credit alert run started",
		"schedule_event_id", ev.ID, "schedule_time", ev.Time, "resources", ev.Resources)

	res, scanErr := h.run(ctx)

	if err := h.writeMetrics(res, scanErr == nil); err != nil {
		h.logger.ErrorContext(ctx, "writing the credit alert metrics failed", "error", err.Error())
	}
	h.logger.InfoContext(ctx, "credit alert run finished",
		"wallets_below_threshold", res.WalletsBelowThreshold, "alerts_raised", res.AlertsRaised, "failed", res.Failed)

	switch {
	case scanErr != nil:
		return res, fmt.Errorf("credit alerts: %w", scanErr)
	case res.Failed > 0:
		return res, fmt.Errorf("credit alerts: the alerts of %d of %d wallets below their threshold failed, and the next run retries them",
			res.Failed, res.WalletsBelowThreshold)
	}
	return res, nil
}

// run lists every wallet in GSI2, page by page, and alerts each one whose
// current drop has not been alerted. It returns the counts so far together
// with the error that stopped the listing.
func (h *Handler) run(ctx context.Context) (Result, error) {
	var res Result
	cursor := ""
	for {
		var page []walletRecord
		next, err := h.store.QueryPage(ctx, store.Query{
			Index:     store.GSI2,
			Partition: store.LowBalanceGSI2PK,
			Limit:     h.pageSize,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			return res, fmt.Errorf("list wallets below their threshold: %w", err)
		}

		h.alertPage(ctx, page, &res)

		if next == "" {
			return res, nil
		}
		cursor = next
	}
}

// alertPage alerts the wallets of one page and adds to res.
func (h *Handler) alertPage(ctx context.Context, page []walletRecord, res *Result) {
	below := make([]walletRecord, 0, len(page))
	for _, w := range page {
		if !w.below() {
			// Billing sets the GSI2 keys only together with a balance
			// below a positive threshold, so this item breaks that rule.
			h.logger.WarnContext(ctx, "wallet in the low-balance index is not below its threshold; skipped",
				"workspace_id", w.WorkspaceID, "balance", w.Balance, "threshold", w.Threshold)
			continue
		}
		below = append(below, w)
	}
	res.WalletsBelowThreshold += len(below)

	alerted := h.alertedDrops(ctx, below)
	for _, w := range below {
		if since, ok := alerted[w.WorkspaceID]; ok && since == w.BelowSince {
			continue
		}
		raised, err := h.alert(ctx, w)
		if err != nil {
			res.Failed++
			h.logger.ErrorContext(ctx, "low-balance alert failed, and the next run retries it",
				"workspace_id", w.WorkspaceID, "below_since", w.BelowSince, "error", err.Error())
			continue
		}
		if raised {
			res.AlertsRaised++
		}
	}
}

// errNoBelowSince reports a wallet below its threshold without the time it
// dropped, so its drops cannot be distinguished.
var errNoBelowSince = errors.New("wallet below its threshold has no below_since")
