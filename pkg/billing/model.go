package billing

import (
	"time"

	"github.com/signsecure/signsecure/pkg/store"
)

// Wallet is a workspace's credit balance.
type Wallet struct {
	WorkspaceID         string `json:"workspace_id"`
	Balance             int64  `json:"balance"`
	LowBalanceThreshold int64  `json:"low_balance_threshold"`
	// BelowThreshold is true while Balance < LowBalanceThreshold.
	BelowThreshold bool `json:"below_threshold"`
	// BelowThresholdSince is the time the balance last dropped below the
	// threshold, or nil while it is not below.
	BelowThresholdSince *time.Time `json:"below_threshold_since,omitempty"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// LedgerEntry is one change of a wallet's balance. Entries are never
// changed or removed, so their amounts add up to the balance.
type LedgerEntry struct {
	ID string `json:"id"`
	// Amount is positive for credits and negative for debits.
	Amount       int64 `json:"amount"`
	BalanceAfter int64 `json:"balance_after"`
	// Reason is a stable code such as "starting_grant", "purchase" or
	// "envelope_send".
	Reason string `json:"reason"`
	// Reference is the id of what caused the entry, such as a purchase or
	// envelope id. It is empty for the starting grant.
	Reference string    `json:"reference,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Ledger reasons written by this package.
const (
	ReasonStartingGrant = "starting_grant"
	ReasonPurchase      = "purchase"
)

// Purchase statuses.
const (
	StatusPending   = "pending"
	StatusCompleted = "completed"
)

// Purchase is the sale of a credit pack to a workspace.
type Purchase struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	PackID      string `json:"pack_id"`
	PackName    string `json:"pack_name"`
	Credits     int64  `json:"credits"`
	// Amount is the price in the currency's minor unit.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Status is StatusPending until the provider reports the payment, then
	// StatusCompleted.
	Status string `json:"status"`
	// Provider is ProviderTest or ProviderStripe.
	Provider string `json:"provider"`
	// ProviderReference is the provider's id for the payment, such as a
	// Stripe Checkout Session id.
	ProviderReference string `json:"provider_reference,omitempty"`
	// Test is true when no real money moved: the test provider, or Stripe
	// in test mode.
	Test bool `json:"test"`
	// CheckoutURL is the provider's payment page, set while the purchase is
	// pending with a provider that has one.
	CheckoutURL string `json:"checkout_url,omitempty"`
	// InvoiceNumber is set when the purchase completes.
	InvoiceNumber string     `json:"invoice_number,omitempty"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
}

const (
	entityWallet         = "wallet"
	entityLedgerEntry    = "ledger_entry"
	entityPurchase       = "purchase"
	entityInvoiceCounter = "invoice_counter"
)

// walletItem is a workspace's wallet. GSI2PK and GSI2SK are set exactly
// while Balance < Threshold, by the same write that changes either.
// Version grows by one with every write, and each write is conditioned on
// the version it read.
type walletItem struct {
	store.Item
	WorkspaceID string `dynamodbav:"workspace_id"`
	Balance     int64  `dynamodbav:"balance"`
	Threshold   int64  `dynamodbav:"low_balance_threshold"`
	Version     int64  `dynamodbav:"version"`
	BelowSince  string `dynamodbav:"below_since,omitempty"`
	CreatedAt   string `dynamodbav:"created_at"`
	UpdatedAt   string `dynamodbav:"updated_at"`
}

func (w walletItem) wallet() Wallet {
	out := Wallet{
		WorkspaceID:         w.WorkspaceID,
		Balance:             w.Balance,
		LowBalanceThreshold: w.Threshold,
		BelowThreshold:      w.Balance < w.Threshold,
		UpdatedAt:           store.ParseTime(w.UpdatedAt),
	}
	if w.BelowSince != "" {
		t := store.ParseTime(w.BelowSince)
		out.BelowThresholdSince = &t
	}
	return out
}

// ledgerItem is a ledger entry.
type ledgerItem struct {
	store.Item
	ID           string `dynamodbav:"id"`
	WorkspaceID  string `dynamodbav:"workspace_id"`
	Amount       int64  `dynamodbav:"amount"`
	BalanceAfter int64  `dynamodbav:"balance_after"`
	Reason       string `dynamodbav:"reason"`
	Reference    string `dynamodbav:"reference,omitempty"`
	CreatedAt    string `dynamodbav:"created_at"`
}

func (l ledgerItem) entry() LedgerEntry {
	return LedgerEntry{
		ID:           l.ID,
		Amount:       l.Amount,
		BalanceAfter: l.BalanceAfter,
		Reason:       l.Reason,
		Reference:    l.Reference,
		CreatedAt:    store.ParseTime(l.CreatedAt),
	}
}

// buyer is who a purchase is billed to, copied from the profiles when the
// purchase is made so the invoice shows the details of that time.
type buyer struct {
	Name    string `dynamodbav:"name"`
	Email   string `dynamodbav:"email"`
	OrgName string `dynamodbav:"org_name,omitempty"`
}

// purchaseItem is a purchase.
type purchaseItem struct {
	store.Item
	ID                string `dynamodbav:"id"`
	WorkspaceID       string `dynamodbav:"workspace_id"`
	PackID            string `dynamodbav:"pack_id"`
	PackName          string `dynamodbav:"pack_name"`
	Credits           int64  `dynamodbav:"credits"`
	Amount            int64  `dynamodbav:"amount"`
	Currency          string `dynamodbav:"currency"`
	Status            string `dynamodbav:"status"`
	Provider          string `dynamodbav:"provider"`
	ProviderReference string `dynamodbav:"provider_reference,omitempty"`
	Test              bool   `dynamodbav:"test"`
	CheckoutURL       string `dynamodbav:"checkout_url,omitempty"`
	InvoiceNumber     string `dynamodbav:"invoice_number,omitempty"`
	Buyer             buyer  `dynamodbav:"buyer"`
	CreatedBy         string `dynamodbav:"created_by"`
	CreatedAt         string `dynamodbav:"created_at"`
	CompletedAt       string `dynamodbav:"completed_at,omitempty"`
}

func (p purchaseItem) purchase() Purchase {
	out := Purchase{
		ID:                p.ID,
		WorkspaceID:       p.WorkspaceID,
		PackID:            p.PackID,
		PackName:          p.PackName,
		Credits:           p.Credits,
		Amount:            p.Amount,
		Currency:          p.Currency,
		Status:            p.Status,
		Provider:          p.Provider,
		ProviderReference: p.ProviderReference,
		Test:              p.Test,
		InvoiceNumber:     p.InvoiceNumber,
		CreatedBy:         p.CreatedBy,
		CreatedAt:         store.ParseTime(p.CreatedAt),
	}
	if p.Status == StatusPending {
		out.CheckoutURL = p.CheckoutURL
	}
	if p.CompletedAt != "" {
		t := store.ParseTime(p.CompletedAt)
		out.CompletedAt = &t
	}
	return out
}

// counterItem holds the last invoice number issued by a seller.
type counterItem struct {
	store.Item
	SellerID string `dynamodbav:"seller_id"`
	Last     int64  `dynamodbav:"last"`
}

func itemAt(k store.Key, entity string) store.Item {
	return store.Item{PK: k.PK, SK: k.SK, Entity: entity}
}
