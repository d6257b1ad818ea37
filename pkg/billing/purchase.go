package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// CreatePurchase buys a credit pack for the workspace on behalf of the
// user. It starts the provider's checkout and stores the purchase as
// pending. With a provider that is paid at once, such as the test
// provider, the purchase completes before CreatePurchase returns.
// Otherwise Purchase.CheckoutURL is the payment page.
//
// Errors: Invalid (unknown_pack) for a pack id that is not on sale.
func (s *Service) CreatePurchase(ctx context.Context, workspaceID, userID, packID string) (Purchase, error) {
	pack, ok := s.cfg.pack(packID)
	if !ok {
		return Purchase{}, apperr.InvalidField("pack_id", "unknown_pack",
			"Field \"pack_id\" is %q, which is not a credit pack on sale; use one of: %s.", truncate(packID, 64), strings.Join(s.packIDs(), ", "))
	}
	b, err := s.readBuyer(ctx, workspaceID, userID)
	if err != nil {
		return Purchase{}, err
	}

	now := s.now().UTC()
	id := ids.NewAt(ids.Purchase, now)
	sess, err := s.provider.StartCheckout(ctx, Checkout{PurchaseID: id, WorkspaceID: workspaceID, Pack: pack, BuyerEmail: b.Email})
	if err != nil {
		return Purchase{}, fmt.Errorf("create purchase %s of pack %s in %s: %w", id, pack.ID, workspaceID, err)
	}

	p := purchaseItem{
		Item:              itemAt(store.PurchaseKey(workspaceID, id), entityPurchase),
		ID:                id,
		WorkspaceID:       workspaceID,
		PackID:            pack.ID,
		PackName:          pack.Name,
		Credits:           pack.Credits,
		Amount:            pack.Price,
		Currency:          pack.Currency,
		Status:            StatusPending,
		Provider:          s.provider.Name(),
		ProviderReference: sess.Reference,
		Test:              sess.Test,
		CheckoutURL:       sess.URL,
		Buyer:             b,
		CreatedBy:         userID,
		CreatedAt:         store.FormatTime(now),
	}
	put, err := s.store.PutNew(p)
	if err != nil {
		return Purchase{}, fmt.Errorf("create purchase %s: %w", id, err)
	}
	if err := s.store.Transact(ctx, put); err != nil {
		return Purchase{}, fmt.Errorf("create purchase %s: %w", id, err)
	}
	s.logger.InfoContext(ctx, "purchase created", "purchase_id", id, "workspace_id", workspaceID,
		"pack_id", pack.ID, "provider", p.Provider, "provider_reference", p.ProviderReference)

	if !sess.Paid {
		return p.purchase(), nil
	}
	done, _, err := s.completePurchase(ctx, workspaceID, id)
	if err != nil {
		return Purchase{}, err
	}
	return done.purchase(), nil
}

func (s *Service) packIDs() []string {
	out := make([]string, 0, len(s.cfg.Packs))
	for _, p := range s.cfg.Packs {
		out = append(out, p.ID)
	}
	return out
}

// readBuyer copies the buyer's name and email from the user's profile, and
// the organization's name for an organization workspace.
func (s *Service) readBuyer(ctx context.Context, workspaceID, userID string) (buyer, error) {
	var user struct {
		Name  string `dynamodbav:"name"`
		Email string `dynamodbav:"email"`
	}
	if err := s.store.Get(ctx, store.UserKey(userID), &user); err != nil {
		return buyer{}, fmt.Errorf("read buyer %s: %w", userID, err)
	}
	b := buyer{Name: user.Name, Email: user.Email}
	if !strings.HasPrefix(workspaceID, ids.Organization+"_") {
		return b, nil
	}

	var org struct {
		Name string `dynamodbav:"name"`
	}
	if err := s.store.Get(ctx, store.Key{PK: store.OrgPK(workspaceID), SK: "PROFILE"}, &org); err != nil {
		return buyer{}, fmt.Errorf("read buyer organization %s: %w", workspaceID, err)
	}
	b.OrgName = org.Name
	return b, nil
}

// GetPurchase returns a purchase of the workspace.
//
// Errors: NotFound (purchase_not_found) for a malformed id or one that is
// not a purchase of this workspace.
func (s *Service) GetPurchase(ctx context.Context, workspaceID, purchaseID string) (Purchase, error) {
	p, err := s.getPurchase(ctx, workspaceID, purchaseID)
	if err != nil {
		return Purchase{}, err
	}
	return p.purchase(), nil
}

func (s *Service) getPurchase(ctx context.Context, workspaceID, purchaseID string) (purchaseItem, error) {
	if !ids.Valid(ids.Purchase, purchaseID) {
		return purchaseItem{}, purchaseNotFound(purchaseID)
	}
	var p purchaseItem
	err := s.store.Get(ctx, store.PurchaseKey(workspaceID, purchaseID), &p)
	if errors.Is(err, store.ErrNotFound) {
		return purchaseItem{}, purchaseNotFound(purchaseID)
	}
	if err != nil {
		return purchaseItem{}, fmt.Errorf("get purchase %s in %s: %w", purchaseID, workspaceID, err)
	}
	return p, nil
}

func purchaseNotFound(id string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "purchase_not_found",
		Message: fmt.Sprintf("Purchase %q was not found in this workspace.", truncate(id, 64))}
}

// ListPurchases returns a page of the workspace's purchases, newest first.
func (s *Service) ListPurchases(ctx context.Context, workspaceID string, limit int, cursor string) ([]Purchase, string, error) {
	var items []purchaseItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Partition:  store.WorkspacePK(workspaceID),
		SKPrefix:   store.PurchaseSKPrefix(),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list purchases of %s: %w", workspaceID, err)
	}
	out := make([]Purchase, 0, len(items))
	for _, it := range items {
		out = append(out, it.purchase())
	}
	return out, next, nil
}

// Item positions in the transaction that completes a purchase.
const (
	completePurchaseIndex = iota
	completeWalletIndex
	completeLedgerIndex
	completeCounterIndex
	completeEventIndex
)

// completePurchase marks a pending purchase completed, credits the wallet,
// appends the ledger entry, takes the next invoice number and writes the
// billing.purchase_completed event, all in one transaction conditioned on
// the purchase still being pending. It returns the completed purchase and
// whether this call completed it. A purchase that an earlier or a
// concurrent call completed is returned as it is, so a replayed
// notification credits nothing.
func (s *Service) completePurchase(ctx context.Context, workspaceID, purchaseID string) (purchaseItem, bool, error) {
	for attempt := 1; ; attempt++ {
		p, err := s.getPurchase(ctx, workspaceID, purchaseID)
		if err != nil {
			return purchaseItem{}, false, err
		}
		if p.Status == StatusCompleted {
			return p, false, nil
		}

		items, done, err := s.completeItems(ctx, p)
		if err != nil {
			return purchaseItem{}, false, err
		}
		err = s.store.Transact(ctx, items...)
		if err == nil {
			s.logger.InfoContext(ctx, "purchase completed", "purchase_id", p.ID, "workspace_id", workspaceID,
				"credits", p.Credits, "invoice_number", done.InvoiceNumber)
			return done, true, nil
		}

		// A failed purchase condition means another call completed it: the
		// next read returns it. A changed wallet or counter is read again.
		if !store.FailedAt(err, completePurchaseIndex) && !retryable(err, completeWalletIndex, completeCounterIndex) {
			return purchaseItem{}, false, fmt.Errorf("complete purchase %s in %s: %w", purchaseID, workspaceID, err)
		}
		if attempt == maxWalletAttempts {
			return purchaseItem{}, false, fmt.Errorf("complete purchase %s in %s after %d attempts: %w", purchaseID, workspaceID, attempt, err)
		}
		s.logger.DebugContext(ctx, "purchase completion conflicted; retrying", "purchase_id", purchaseID, "attempt", attempt)
		if err := backoff(ctx, attempt); err != nil {
			return purchaseItem{}, false, err
		}
	}
}

// completeItems reads the wallet and the invoice counter and returns the
// transaction items that complete p, in the order of the complete*Index
// constants, and the purchase as it will be.
func (s *Service) completeItems(ctx context.Context, p purchaseItem) ([]types.TransactWriteItem, purchaseItem, error) {
	wallet, err := s.readWallet(ctx, p.WorkspaceID)
	if err != nil {
		return nil, purchaseItem{}, err
	}
	counter, counterFound, err := s.readCounter(ctx)
	if err != nil {
		return nil, purchaseItem{}, err
	}

	now := s.now().UTC()
	seq := counter.Last + 1
	done := p
	done.Status = StatusCompleted
	done.InvoiceNumber = fmt.Sprintf("%s-%06d", s.cfg.Seller.InvoicePrefix, seq)
	done.CompletedAt = store.FormatTime(now)
	done.CheckoutURL = ""

	purchaseUpdate := s.store.UpdateIn(store.PurchaseKey(p.WorkspaceID, p.ID),
		"SET #status = :completed, invoice_number = :number, completed_at = :now REMOVE checkout_url",
		"#status = :pending",
		map[string]string{"#status": "status"},
		map[string]types.AttributeValue{
			":completed": &types.AttributeValueMemberS{Value: StatusCompleted},
			":pending":   &types.AttributeValueMemberS{Value: StatusPending},
			":number":    &types.AttributeValueMemberS{Value: done.InvoiceNumber},
			":now":       &types.AttributeValueMemberS{Value: done.CompletedAt},
		})
	move, next, _, err := s.moveItems(wallet, p.Credits, ReasonPurchase, p.ID, now)
	if err != nil {
		return nil, purchaseItem{}, err
	}

	evt, err := events.New(events.PurchaseCompleted, p.WorkspaceID, map[string]any{
		"purchase_id":    p.ID,
		"pack_id":        p.PackID,
		"credits":        p.Credits,
		"amount":         p.Amount,
		"currency":       p.Currency,
		"invoice_number": done.InvoiceNumber,
		"balance":        next.Balance,
		"test":           p.Test,
		"completed_at":   now,
	}, now)
	if err != nil {
		return nil, purchaseItem{}, err
	}
	evtPut, err := events.Put(s.store, evt)
	if err != nil {
		return nil, purchaseItem{}, err
	}

	items := []types.TransactWriteItem{purchaseUpdate, move[0], move[1], s.counterUpdate(counter, counterFound, seq), evtPut}
	return items, done, nil
}

// readCounter returns the seller's invoice counter. A seller that has
// issued no invoice yet has a counter at zero and found false.
func (s *Service) readCounter(ctx context.Context) (counterItem, bool, error) {
	var c counterItem
	err := s.store.Get(ctx, store.InvoiceCounterKey(s.cfg.Seller.ID), &c)
	if errors.Is(err, store.ErrNotFound) {
		return counterItem{}, false, nil
	}
	if err != nil {
		return counterItem{}, false, fmt.Errorf("read invoice counter of %s: %w", s.cfg.Seller.ID, err)
	}
	return c, true, nil
}

// counterUpdate returns the item that moves the counter from old to seq.
// Its condition on the old value makes two completions that read the same
// counter fail one of them, so numbers are neither skipped nor repeated.
func (s *Service) counterUpdate(old counterItem, found bool, seq int64) types.TransactWriteItem {
	names := map[string]string{"#last": "last"}
	values := map[string]types.AttributeValue{":seq": number(seq)}
	if !found {
		values[":entity"] = &types.AttributeValueMemberS{Value: entityInvoiceCounter}
		values[":seller"] = &types.AttributeValueMemberS{Value: s.cfg.Seller.ID}
		return s.store.UpdateIn(store.InvoiceCounterKey(s.cfg.Seller.ID),
			"SET #last = :seq, entity = :entity, seller_id = :seller", "attribute_not_exists(PK)", names, values)
	}
	values[":old"] = number(old.Last)
	return s.store.UpdateIn(store.InvoiceCounterKey(s.cfg.Seller.ID), "SET #last = :seq", "#last = :old", names, values)
}

// WebhookOutcome is the result of one payment webhook delivery.
type WebhookOutcome struct {
	// Action is "completed" when this delivery completed a purchase,
	// "already_completed" for a replayed delivery, and "ignored" for an
	// event that completes nothing (another type, an unpaid session or a
	// session this service did not create).
	Action     string `json:"action"`
	PurchaseID string `json:"purchase_id,omitempty"`
}

// HandleStripeWebhook checks a Stripe webhook delivery's signature and
// completes the purchase of a paid Checkout Session. Deliveries of the same
// event, one after another or at the same time, complete the purchase once.
//
// Errors: NotFound (stripe_not_enabled) when the provider is not Stripe;
// Invalid (invalid_signature) for a missing, forged or stale signature.
func (s *Service) HandleStripeWebhook(ctx context.Context, payload []byte, signature string) (WebhookOutcome, error) {
	sp, ok := s.provider.(*StripeProvider)
	if !ok {
		return WebhookOutcome{}, &apperr.Error{Code: apperr.NotFound, Reason: "stripe_not_enabled",
			Message: "Stripe webhooks are not accepted: this deployment's payment provider is " + s.provider.Name() + "."}
	}
	sess, eventType, paid, err := sp.paidSession(payload, signature)
	if err != nil {
		return WebhookOutcome{}, err
	}
	ignored := WebhookOutcome{Action: "ignored"}
	// NOTE: checkout.session.expired is ignored too, so the purchase of an
	// abandoned checkout stays pending, without credits or an invoice.
	if !paid {
		s.logger.InfoContext(ctx, "stripe webhook ignored", "event_type", eventType, "session_id", sess.ID)
		return ignored, nil
	}

	workspaceID, purchaseID := sess.Metadata[metadataWorkspaceID], sess.ClientReferenceID
	if store.WorkspacePK(workspaceID) == "" || !ids.Valid(ids.Purchase, purchaseID) {
		s.logger.WarnContext(ctx, "stripe webhook for a session without a purchase", "session_id", sess.ID)
		return ignored, nil
	}
	p, err := s.getPurchase(ctx, workspaceID, purchaseID)
	if apperr.CodeOf(err) == apperr.NotFound {
		s.logger.WarnContext(ctx, "stripe webhook for an unknown purchase", "session_id", sess.ID, "purchase_id", purchaseID, "workspace_id", workspaceID)
		return ignored, nil
	}
	if err != nil {
		return WebhookOutcome{}, err
	}
	if p.Provider != ProviderStripe || p.ProviderReference != sess.ID || p.Amount != sess.AmountTotal || !strings.EqualFold(p.Currency, sess.Currency) {
		s.logger.ErrorContext(ctx, "stripe webhook does not match its purchase; not completing it",
			"session_id", sess.ID, "purchase_id", p.ID, "provider_reference", p.ProviderReference,
			"amount", p.Amount, "session_amount", sess.AmountTotal, "currency", p.Currency, "session_currency", sess.Currency)
		return ignored, nil
	}

	_, completed, err := s.completePurchase(ctx, workspaceID, purchaseID)
	if err != nil {
		return WebhookOutcome{}, err
	}
	if !completed {
		return WebhookOutcome{Action: "already_completed", PurchaseID: purchaseID}, nil
	}
	return WebhookOutcome{Action: "completed", PurchaseID: purchaseID}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// invoiceDate returns the date printed on a completed purchase's invoice.
func invoiceDate(p purchaseItem) time.Time { return store.ParseTime(p.CompletedAt) }
