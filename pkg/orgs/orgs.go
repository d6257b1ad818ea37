// Package orgs is organizations and their workspaces: creating and renaming
// an organization, its members and their roles, and invitations by email.
//
// Every organization keeps at least one owner. The organization item
// counts its owners, and every change that adds or removes an owner
// changes that count in the same transaction as the membership, under the
// condition that at least one owner remains. Each change that other
// parties hear about writes its event in the same transaction.
package orgs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// DefaultInvitationTTL is how long an invitation can be accepted.
const DefaultInvitationTTL = 7 * 24 * time.Hour

// invitationRetention is how long an invitation item stays after it
// expires, whatever its status, before TTL removes it.
const invitationRetention = 30 * 24 * time.Hour

// Workspace types.
const (
	WorkspacePersonal     = "personal"
	WorkspaceOrganization = "organization"
)

// Invitation statuses.
const (
	StatusPending  = "pending"
	StatusAccepted = "accepted"
	StatusDeclined = "declined"
	StatusRevoked  = "revoked"
)

// Organization is an organization with the role of the member who reads it.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
	// Role is the caller's role in the organization.
	Role string `json:"role"`
}

// Workspace is a place a user can act in: their personal workspace or an
// organization they belong to.
type Workspace struct {
	// ID is the user id for the personal workspace, the organization id
	// otherwise.
	ID string `json:"id"`
	// Type is WorkspacePersonal or WorkspaceOrganization.
	Type string `json:"type"`
	Name string `json:"name"`
	// Role is the user's role in an organization; empty for the personal
	// workspace.
	Role string `json:"role,omitempty"`
}

// Member is a user's membership in an organization, with the user's
// current name and email address.
type Member struct {
	UserID   string    `json:"user_id"`
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// Invitation is an offer to join an organization, sent to an email
// address.
type Invitation struct {
	ID               string    `json:"id"`
	OrganizationID   string    `json:"organization_id"`
	OrganizationName string    `json:"organization_name"`
	Email            string    `json:"email"`
	Role             string    `json:"role"`
	Status           string    `json:"status"`
	InvitedBy        string    `json:"invited_by"`
	CreatedAt        time.Time `json:"created_at"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// Service manages organizations, memberships and invitations.
type Service struct {
	// codeKey, when set, derives the invitation codes that accepting
	// requires.
	codeKey       []byte
	store         *store.Store
	now           func() time.Time
	newWorkspace  accounts.WorkspaceItemsFunc
	invitationTTL time.Duration
}

// Option changes a setting of the service.
type Option func(*Service)

// WithInvitationTTL sets how long an invitation can be accepted; the
// default is DefaultInvitationTTL. A value that is not positive is ignored.
func WithInvitationTTL(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.invitationTTL = d
		}
	}
}

// WithInvitationCodeKey makes accepting an invitation require the code
// from its email (see InvitationCode), derived with key.
func WithInvitationCodeKey(key []byte) Option {
	return func(s *Service) {
		s.codeKey = append([]byte(nil), key...)
	}
}

// NewService returns a service over the store. now may be nil for
// time.Now. newWorkspace, if not nil, returns the items that set up a new
// organization's workspace, such as its wallet. Those items are written in
// the transaction that creates the organization.
func NewService(st *store.Store, now func() time.Time, newWorkspace accounts.WorkspaceItemsFunc, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: st, now: now, newWorkspace: newWorkspace, invitationTTL: DefaultInvitationTTL}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Role returns the user's role in the organization with one consistent
// read of the membership. Middleware calls it for every request that acts
// in an organization workspace.
//
// Errors: NotFound (workspace_not_found) when the id is malformed, the
// organization does not exist or the user is not a member.
func (s *Service) Role(ctx context.Context, orgID, userID string) (string, error) {
	m, err := s.membership(ctx, orgID, userID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return "", &apperr.Error{Code: apperr.NotFound, Reason: "workspace_not_found", Field: "X-Workspace-Id",
			Message: fmt.Sprintf("Workspace %q was not found; use your user id or the id of an organization you belong to.", truncate(orgID, 40))}
	}
	if err != nil {
		return "", err
	}
	return m.Role, nil
}

// membership reads the user's membership of the organization. It returns
// the organization's NotFound error when either id is malformed or there
// is no such membership, so a caller cannot tell a foreign organization
// from an unknown one.
func (s *Service) membership(ctx context.Context, orgID, userID string) (memberItem, error) {
	if !ids.Valid(ids.Organization, orgID) || !ids.Valid(ids.User, userID) {
		return memberItem{}, orgNotFound(orgID)
	}
	var m memberItem
	err := s.store.Get(ctx, store.MemberKey(orgID, userID), &m)
	if errors.Is(err, store.ErrNotFound) {
		return memberItem{}, orgNotFound(orgID)
	}
	if err != nil {
		return memberItem{}, fmt.Errorf("get membership of %s in %s: %w", userID, orgID, err)
	}
	return m, nil
}

// access reads the caller's membership and the organization. Every
// operation on an organization starts here.
//
// Errors: NotFound (organization_not_found) when the caller is not a
// member.
func (s *Service) access(ctx context.Context, orgID, userID string) (orgItem, memberItem, error) {
	m, err := s.membership(ctx, orgID, userID)
	if err != nil {
		return orgItem{}, memberItem{}, err
	}
	var org orgItem
	err = s.store.Get(ctx, store.OrgKey(orgID), &org)
	if errors.Is(err, store.ErrNotFound) {
		return orgItem{}, memberItem{}, orgNotFound(orgID)
	}
	if err != nil {
		return orgItem{}, memberItem{}, fmt.Errorf("get organization %s: %w", orgID, err)
	}
	return org, m, nil
}
