package orgs

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// InviteInput is an invitation to send.
type InviteInput struct {
	Email string `json:"email"`
	// Role is the role the invitee gets on accepting; empty means member.
	Role string `json:"role"`
}

// Invite sends an invitation to join the organization to an email
// address. Owners and admins may invite; only owners may invite with the
// owner role. At most one invitation per address, compared
// case-insensitively, is pending in an organization at a time. The
// invitation and its organization.invitation_received event are written
// in one transaction.
//
// Errors:
//   - NotFound (organization_not_found) when the caller is not a member.
//   - Forbidden (insufficient_role).
//   - Invalid (invalid_email, invalid_role).
//   - Conflict (already_member) when the address belongs to a member.
//   - Conflict (invitation_pending) when an unexpired invitation to the
//     address is pending.
//   - Conflict (concurrent_update) when the caller's role changed meanwhile.
func (s *Service) Invite(ctx context.Context, callerID, orgID string, in InviteInput) (Invitation, error) {
	org, caller, err := s.access(ctx, orgID, callerID)
	if err != nil {
		return Invitation{}, err
	}
	allowed := []string{authn.RoleOwner, authn.RoleAdmin}
	if err := requireRole(caller, "Inviting members", allowed...); err != nil {
		return Invitation{}, err
	}
	email, err := normalizeEmail("email", in.Email)
	if err != nil {
		return Invitation{}, err
	}
	role := in.Role
	if role == "" {
		role = authn.RoleMember
	}
	if err := checkRole("role", role); err != nil {
		return Invitation{}, err
	}
	if role == authn.RoleOwner {
		allowed = []string{authn.RoleOwner}
		if err := requireRole(caller, "Inviting with the role owner", allowed...); err != nil {
			return Invitation{}, err
		}
	}

	inviteeID, err := s.userIDByEmail(ctx, email)
	if err != nil {
		return Invitation{}, fmt.Errorf("invite to %s: %w", orgID, err)
	}
	if inviteeID != "" {
		var m memberItem
		err := s.store.Get(ctx, store.MemberKey(orgID, inviteeID), &m)
		if err == nil {
			return Invitation{}, alreadyMember(orgID, email)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Invitation{}, fmt.Errorf("invite to %s: %w", orgID, err)
		}
	}

	now := s.now().UTC()
	inv := s.newInvitationItem(orgID, email, role, callerID, now)
	items, err := s.inviteItems(inv, now)
	if err != nil {
		return Invitation{}, err
	}
	const callerIndex = 2
	items = append(items, s.checkRoleIn(orgID, callerID, allowed...))
	memberIndex := -1
	if inviteeID != "" {
		memberIndex = len(items)
		items = append(items, s.store.ConditionCheck(store.MemberKey(orgID, inviteeID), "attribute_not_exists(PK)", nil, nil))
	}
	evt, err := s.putEvent(events.InvitationReceived, orgID, InvitationReceivedData{
		OrganizationID:   orgID,
		OrganizationName: org.Name,
		InvitationID:     inv.ID,
		Email:            email,
		UserID:           inviteeID,
		Role:             role,
		InvitedBy:        callerID,
		ExpiresAt:        time.Unix(inv.ValidUntil, 0).UTC(),
	}, now)
	if err != nil {
		return Invitation{}, fmt.Errorf("invite to %s: %w", orgID, err)
	}
	items = append(items, evt)

	err = s.store.Transact(ctx, items...)
	switch {
	case store.FailedAt(err, 1):
		return Invitation{}, invitationPending(orgID, email)
	case store.FailedAt(err, callerIndex):
		return Invitation{}, roleChanged(orgID)
	case store.FailedAt(err, memberIndex):
		return Invitation{}, alreadyMember(orgID, email)
	case err != nil:
		return Invitation{}, fmt.Errorf("invite to %s: %w", orgID, err)
	}
	return inv.invitation(org.Name), nil
}

func (s *Service) newInvitationItem(orgID, email, role, invitedBy string, now time.Time) invitationItem {
	id := ids.NewAt(ids.Invitation, now)
	validUntil := now.Add(s.invitationTTL)
	key := store.InvitationKey(orgID, id)
	return invitationItem{
		Item: store.Item{
			PK:        key.PK,
			SK:        key.SK,
			GSI1PK:    store.InviteePK(email),
			GSI1SK:    store.InvitationGSI1SK(id),
			Entity:    entityInvitation,
			ExpiresAt: validUntil.Add(invitationRetention).Unix(),
		},
		ID:         id,
		OrgID:      orgID,
		Email:      email,
		Role:       role,
		InvitedBy:  invitedBy,
		CreatedAt:  store.FormatTime(now),
		ValidUntil: validUntil.Unix(),
		Status:     StatusPending,
	}
}

// inviteItems returns the transaction items that create an invitation
// (index 0) and claim its address in the organization (index 1). The claim
// fails while another unexpired invitation to the address is pending.
func (s *Service) inviteItems(inv invitationItem, now time.Time) ([]types.TransactWriteItem, error) {
	invPut, err := s.store.PutNew(inv)
	if err != nil {
		return nil, fmt.Errorf("encode invitation %s: %w", inv.ID, err)
	}
	key := store.PendingInvitationKey(inv.OrgID, inv.Email)
	claim, err := s.store.Put(pendingItem{
		Item: store.Item{
			PK:        key.PK,
			SK:        key.SK,
			Entity:    entityPendingInvitation,
			ExpiresAt: inv.ExpiresAt,
		},
		InvitationID: inv.ID,
		ValidUntil:   inv.ValidUntil,
	}, "attribute_not_exists(PK) OR valid_until <= :now")
	if err != nil {
		return nil, fmt.Errorf("encode pending invitation %s: %w", inv.ID, err)
	}
	claim.Put.ExpressionAttributeValues = map[string]types.AttributeValue{":now": num(now.Unix())}
	return []types.TransactWriteItem{invPut, claim}, nil
}

// releaseClaim returns a transaction item that deletes the claim of an
// invitation's address, and holds only while the claim is that
// invitation's.
func (s *Service) releaseClaim(inv invitationItem) types.TransactWriteItem {
	return s.store.DeleteIf(store.PendingInvitationKey(inv.OrgID, inv.Email), "invitation_id = :id",
		map[string]types.AttributeValue{":id": str(inv.ID)})
}

// respond returns a transaction item that moves a pending, unexpired
// invitation to status, recording who did it.
func (s *Service) respond(inv invitationItem, status, by string, now time.Time) types.TransactWriteItem {
	return s.store.UpdateIn(store.InvitationKey(inv.OrgID, inv.ID),
		"SET #status = :status, responded_at = :now_time, responded_by = :by",
		"#status = :pending AND valid_until > :now",
		map[string]string{"#status": "status"},
		map[string]types.AttributeValue{
			":status":   str(status),
			":pending":  str(StatusPending),
			":by":       str(by),
			":now_time": str(store.FormatTime(now)),
			":now":      num(now.Unix()),
		})
}

// ListInvitations returns a page of an organization's pending, unexpired
// invitations, oldest first. Owners and admins may list them.
//
// Errors: NotFound (organization_not_found) when the caller is not a
// member; Forbidden (insufficient_role) for a member; the store's
// ErrInvalidCursor for a cursor of another listing.
func (s *Service) ListInvitations(ctx context.Context, callerID, orgID string, limit int, cursor string) ([]Invitation, string, error) {
	org, caller, err := s.access(ctx, orgID, callerID)
	if err != nil {
		return nil, "", err
	}
	if err := requireRole(caller, "Listing invitations", authn.RoleOwner, authn.RoleAdmin); err != nil {
		return nil, "", err
	}
	items, next, err := s.queryPending(ctx, store.Query{Partition: store.OrgPK(orgID), SKPrefix: invitationSKPrefix, Limit: limit, Cursor: cursor})
	if err != nil {
		return nil, "", err
	}
	out := make([]Invitation, len(items))
	for i, it := range items {
		out[i] = it.invitation(org.Name)
	}
	return out, next, nil
}

// RevokeInvitation withdraws a pending invitation. Owners and admins may
// revoke.
//
// Errors:
//   - NotFound (organization_not_found) when the caller is not a member.
//   - NotFound (invitation_not_found) for an unknown invitation.
//   - Forbidden (insufficient_role).
//   - Conflict (invitation_not_pending, invitation_expired) for an
//     invitation that is no longer pending or has expired.
//   - Conflict (concurrent_update) when the caller's role changed meanwhile.
func (s *Service) RevokeInvitation(ctx context.Context, callerID, orgID, invitationID string) error {
	_, caller, err := s.access(ctx, orgID, callerID)
	if err != nil {
		return err
	}
	if err := requireRole(caller, "Revoking an invitation", authn.RoleOwner, authn.RoleAdmin); err != nil {
		return err
	}
	if !ids.Valid(ids.Invitation, invitationID) {
		return invitationNotFound(invitationID)
	}
	inv, err := s.getInvitation(ctx, orgID, invitationID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if err := answerable(inv, now); err != nil {
		return err
	}

	err = s.store.Transact(ctx,
		s.respond(inv, StatusRevoked, callerID, now),
		s.releaseClaim(inv),
		s.checkRoleIn(orgID, callerID, authn.RoleOwner, authn.RoleAdmin),
	)
	switch {
	case store.FailedAt(err, 0) || store.FailedAt(err, 1):
		return s.unanswerable(ctx, inv, now)
	case store.FailedAt(err, 2):
		return roleChanged(orgID)
	case err != nil:
		return fmt.Errorf("revoke invitation %s: %w", invitationID, err)
	}
	return nil
}

// ListMyInvitations returns a page of the pending, unexpired invitations
// to the user's current email address, compared case-insensitively,
// oldest first.
//
// Errors: the store's ErrInvalidCursor for a cursor of another listing.
func (s *Service) ListMyInvitations(ctx context.Context, userID string, limit int, cursor string) ([]Invitation, string, error) {
	var user userProfile
	if err := s.store.Get(ctx, store.UserKey(userID), &user); err != nil {
		return nil, "", fmt.Errorf("list invitations of %s: %w", userID, err)
	}
	items, next, err := s.queryPending(ctx, store.Query{
		Index:     store.GSI1,
		Partition: store.InviteePK(user.Email),
		SKPrefix:  invitationSKPrefix,
		Limit:     limit,
		Cursor:    cursor,
	})
	if err != nil {
		return nil, "", err
	}

	orgIDs := make([]string, len(items))
	for i, it := range items {
		orgIDs[i] = it.OrgID
	}
	names, err := s.orgNames(ctx, orgIDs)
	if err != nil {
		return nil, "", fmt.Errorf("list invitations of %s: %w", userID, err)
	}
	out := make([]Invitation, len(items))
	for i, it := range items {
		out[i] = it.invitation(names[it.OrgID])
	}
	return out, next, nil
}

// AcceptInvitation makes the user a member of the invitation's
// organization with the invitation's role. The invitation must be
// addressed to the user's current email address. The membership, the
// invitation's new status and the organization.member_joined event are
// written in one transaction, so accepting twice at once makes one
// membership.
//
// Errors:
//   - NotFound (invitation_not_found) for an invitation that is unknown or
//     addressed to someone else.
//   - Conflict (invitation_not_pending, invitation_expired) for an
//     invitation that is no longer pending or has expired.
//   - Conflict (already_member).
func (s *Service) AcceptInvitation(ctx context.Context, userID, invitationID, code string) (Organization, error) {
	inv, err := s.inviteeInvitation(ctx, userID, invitationID)
	if err != nil {
		return Organization{}, err
	}
	now := s.now().UTC()
	if err := answerable(inv, now); err != nil {
		return Organization{}, err
	}
	if s.codeKey != nil {
		want := InvitationCode(s.codeKey, inv.ID, inv.Email)
		if !hmac.Equal([]byte(code), []byte(want)) {
			return Organization{}, &apperr.Error{Code: apperr.Forbidden, Reason: "invalid_invitation_code", Field: "code",
				Message: fmt.Sprintf("Field \"code\" must be the invitation code (%s...) from the invitation email sent to %s; it proves the address is yours.", InvitationCodePrefix, inv.Email)}
		}
	}
	var org orgItem
	if err := s.store.Get(ctx, store.OrgKey(inv.OrgID), &org); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Organization{}, invitationNotFound(invitationID)
		}
		return Organization{}, fmt.Errorf("accept invitation %s: %w", invitationID, err)
	}

	membership, err := s.store.PutNew(newMemberItem(inv.OrgID, userID, inv.Role, now))
	if err != nil {
		return Organization{}, fmt.Errorf("accept invitation %s: %w", invitationID, err)
	}
	orgCheck := s.orgExists(inv.OrgID)
	if inv.Role == authn.RoleOwner {
		orgCheck = s.addOwners(inv.OrgID, 1, now)
	}
	evt, err := s.putEvent(events.MemberJoined, inv.OrgID, MemberJoinedData{
		OrganizationID:   inv.OrgID,
		OrganizationName: org.Name,
		UserID:           userID,
		Role:             inv.Role,
		InvitationID:     inv.ID,
		InvitedBy:        inv.InvitedBy,
	}, now)
	if err != nil {
		return Organization{}, fmt.Errorf("accept invitation %s: %w", invitationID, err)
	}

	err = s.store.Transact(ctx,
		s.respond(inv, StatusAccepted, userID, now),
		membership,
		s.releaseClaim(inv),
		orgCheck,
		evt,
	)
	switch {
	case store.FailedAt(err, 0) || store.FailedAt(err, 2):
		return Organization{}, s.unanswerable(ctx, inv, now)
	case store.FailedAt(err, 1):
		return Organization{}, &apperr.Error{Code: apperr.Conflict, Reason: "already_member",
			Message: fmt.Sprintf("You are already a member of organization %s.", inv.OrgID)}
	case store.FailedAt(err, 3):
		return Organization{}, invitationNotFound(invitationID)
	case err != nil:
		return Organization{}, fmt.Errorf("accept invitation %s: %w", invitationID, err)
	}
	return org.organization(inv.Role), nil
}

// DeclineInvitation turns down an invitation addressed to the user's
// current email address.
//
// Errors:
//   - NotFound (invitation_not_found) for an invitation that is unknown or
//     addressed to someone else.
//   - Conflict (invitation_not_pending, invitation_expired) for an
//     invitation that is no longer pending or has expired.
func (s *Service) DeclineInvitation(ctx context.Context, userID, invitationID string) error {
	inv, err := s.inviteeInvitation(ctx, userID, invitationID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if err := answerable(inv, now); err != nil {
		return err
	}

	err = s.store.Transact(ctx, s.respond(inv, StatusDeclined, userID, now), s.releaseClaim(inv))
	if store.FailedAt(err, 0) || store.FailedAt(err, 1) {
		return s.unanswerable(ctx, inv, now)
	}
	if err != nil {
		return fmt.Errorf("decline invitation %s: %w", invitationID, err)
	}
	return nil
}

// inviteeInvitation finds an invitation by id among those addressed to the
// user's current email address, and reads it consistently.
//
// Errors: NotFound (invitation_not_found).
func (s *Service) inviteeInvitation(ctx context.Context, userID, invitationID string) (invitationItem, error) {
	if !ids.Valid(ids.Invitation, invitationID) {
		return invitationItem{}, invitationNotFound(invitationID)
	}
	var user userProfile
	if err := s.store.Get(ctx, store.UserKey(userID), &user); err != nil {
		return invitationItem{}, fmt.Errorf("find invitation %s for %s: %w", invitationID, userID, err)
	}

	// NOTE: GSI1 is eventually consistent, so an invitation made a moment
	// ago may not be found yet; the consistent read below decides its
	// state.
	var found []invitationItem
	_, err := s.store.QueryPage(ctx, store.Query{
		Index:     store.GSI1,
		Partition: store.InviteePK(user.Email),
		SKPrefix:  store.InvitationGSI1SK(invitationID),
		Limit:     1,
	}, &found)
	if err != nil {
		return invitationItem{}, fmt.Errorf("find invitation %s for %s: %w", invitationID, userID, err)
	}
	if len(found) == 0 {
		return invitationItem{}, invitationNotFound(invitationID)
	}

	inv, err := s.getInvitation(ctx, found[0].OrgID, invitationID)
	if err != nil {
		return invitationItem{}, err
	}
	if !strings.EqualFold(inv.Email, user.Email) {
		return invitationItem{}, invitationNotFound(invitationID)
	}
	return inv, nil
}

// getInvitation reads an invitation with a consistent read.
//
// Errors: NotFound (invitation_not_found).
func (s *Service) getInvitation(ctx context.Context, orgID, invitationID string) (invitationItem, error) {
	var inv invitationItem
	err := s.store.Get(ctx, store.InvitationKey(orgID, invitationID), &inv)
	if errors.Is(err, store.ErrNotFound) {
		return invitationItem{}, invitationNotFound(invitationID)
	}
	if err != nil {
		return invitationItem{}, fmt.Errorf("get invitation %s: %w", invitationID, err)
	}
	return inv, nil
}

// queryPending runs q over invitation items and keeps the pending,
// unexpired ones.
func (s *Service) queryPending(ctx context.Context, q store.Query) ([]invitationItem, string, error) {
	q.Filter = "#status = :pending AND valid_until > :now"
	q.FilterNames = map[string]string{"#status": "status"}
	q.FilterValues = map[string]types.AttributeValue{":pending": str(StatusPending), ":now": num(s.now().Unix())}
	var items []invitationItem
	next, err := s.store.QueryPage(ctx, q, &items)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("list invitations: %w", err)
	}
	return items, next, nil
}

// userIDByEmail returns the id of the user who holds the address, or ""
// when the address belongs to no user.
func (s *Service) userIDByEmail(ctx context.Context, email string) (string, error) {
	var claim emailClaim
	err := s.store.Get(ctx, store.EmailKey(email), &claim)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find user by email: %w", err)
	}
	return claim.UserID, nil
}

// answerable returns a Conflict error unless the invitation is pending and
// unexpired at now.
func answerable(inv invitationItem, now time.Time) error {
	if inv.Status != StatusPending {
		return &apperr.Error{Code: apperr.Conflict, Reason: "invitation_not_pending",
			Message: fmt.Sprintf("Invitation %s is already %s.", inv.ID, inv.Status)}
	}
	if inv.expired(now) {
		return &apperr.Error{Code: apperr.Conflict, Reason: "invitation_expired",
			Message: fmt.Sprintf("Invitation %s expired at %s; ask for a new one.", inv.ID, time.Unix(inv.ValidUntil, 0).UTC().Format(time.RFC3339))}
	}
	return nil
}

// unanswerable reads an invitation again after a transaction on it failed
// its condition, and returns the error that explains the failure.
func (s *Service) unanswerable(ctx context.Context, inv invitationItem, now time.Time) error {
	current, err := s.getInvitation(ctx, inv.OrgID, inv.ID)
	if err != nil {
		return err
	}
	if err := answerable(current, now); err != nil {
		return err
	}
	// The invitation is pending, but its address's claim belongs to a
	// newer invitation: this one expired by another server's clock.
	return &apperr.Error{Code: apperr.Conflict, Reason: "invitation_expired",
		Message: fmt.Sprintf("Invitation %s expired and was replaced by a newer one to the same address.", inv.ID)}
}

func alreadyMember(orgID, email string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "already_member", Field: "email",
		Message: fmt.Sprintf("%s is already a member of organization %s.", email, orgID)}
}

func invitationPending(orgID, email string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "invitation_pending", Field: "email",
		Message: fmt.Sprintf("An invitation to %s is already pending in organization %s; revoke it or wait until it expires.", email, orgID)}
}
