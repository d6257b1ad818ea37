package orgs

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// ListMembers returns a page of an organization's members, in the order
// of their user ids, with each user's current name and email address.
// Every member may list them.
//
// Errors: NotFound (organization_not_found) when the user is not a
// member; the store's ErrInvalidCursor for a cursor of another listing.
func (s *Service) ListMembers(ctx context.Context, userID, orgID string, limit int, cursor string) ([]Member, string, error) {
	if _, err := s.membership(ctx, orgID, userID); err != nil {
		return nil, "", err
	}

	var memberships []memberItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Partition: store.OrgPK(orgID),
		SKPrefix:  memberSKPrefix,
		Limit:     limit,
		Cursor:    cursor,
	}, &memberships)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("list members of %s: %w", orgID, err)
	}

	keys := make([]store.Key, len(memberships))
	for i, m := range memberships {
		keys[i] = store.UserKey(m.UserID)
	}
	users, err := batchGet[userProfile](ctx, s.store, keys)
	if err != nil {
		return nil, "", fmt.Errorf("list members of %s: %w", orgID, err)
	}

	out := make([]Member, 0, len(memberships))
	for _, m := range memberships {
		u := users[store.UserKey(m.UserID)]
		out = append(out, Member{UserID: m.UserID, Name: u.Name, Email: u.Email, Role: m.Role, JoinedAt: store.ParseTime(m.JoinedAt)})
	}
	return out, next, nil
}

// ChangeRole gives a member another role. Only owners may change roles,
// their own included. Demoting the last owner is rejected: the owner
// count falls in the same transaction, under the condition that another
// owner remains, so two owners demoting each other at once cannot both
// succeed. A change writes an organization.member_role_changed event.
//
// Errors:
//   - NotFound (organization_not_found) when the caller is not a member.
//   - NotFound (member_not_found) when the target is not a member.
//   - Forbidden (insufficient_role) for a caller who is not an owner.
//   - Invalid (invalid_role).
//   - Conflict (last_owner) for the last owner.
//   - Conflict (concurrent_update) when a role involved changed meanwhile.
func (s *Service) ChangeRole(ctx context.Context, callerID, orgID, targetID, role string) (Member, error) {
	org, caller, err := s.access(ctx, orgID, callerID)
	if err != nil {
		return Member{}, err
	}
	if err := requireRole(caller, "Changing a member's role", authn.RoleOwner); err != nil {
		return Member{}, err
	}
	if err := checkRole("role", role); err != nil {
		return Member{}, err
	}
	target, err := s.targetMembership(ctx, caller, targetID)
	if err != nil {
		return Member{}, err
	}
	if target.Role == role {
		return s.member(ctx, target)
	}
	if target.Role == authn.RoleOwner && org.OwnerCount <= 1 {
		return Member{}, lastOwner(orgID, "be demoted")
	}
	return s.commitRoleChange(ctx, org, callerID, target, role)
}

// commitRoleChange writes a role change that ChangeRole has checked
// against the items as it read them. The transaction's conditions hold
// only while those items are unchanged where it matters, so a change
// checked against items that went stale fails here.
func (s *Service) commitRoleChange(ctx context.Context, org orgItem, callerID string, target memberItem, role string) (Member, error) {
	orgID, targetID := org.ID, target.UserID
	demotesOwner := target.Role == authn.RoleOwner
	now := s.now().UTC()
	old := target.Role
	target.Role = role
	target.UpdatedAt = store.FormatTime(now)
	items := []types.TransactWriteItem{
		s.store.UpdateIn(store.MemberKey(orgID, targetID), "SET #role = :new, updated_at = :now", "#role = :old",
			map[string]string{"#role": "role"},
			map[string]types.AttributeValue{":new": str(role), ":old": str(old), ":now": str(target.UpdatedAt)}),
	}
	ownerIndex, callerIndex := -1, -1
	switch {
	case demotesOwner:
		ownerIndex = len(items)
		items = append(items, s.addOwners(orgID, -1, now))
	case role == authn.RoleOwner:
		ownerIndex = len(items)
		items = append(items, s.addOwners(orgID, 1, now))
	}
	if targetID != callerID {
		callerIndex = len(items)
		items = append(items, s.checkRoleIn(orgID, callerID, authn.RoleOwner))
	}
	evt, err := s.putEvent(events.MemberRoleChanged, orgID, MemberRoleChangedData{
		OrganizationID:   orgID,
		OrganizationName: org.Name,
		UserID:           targetID,
		OldRole:          old,
		NewRole:          role,
		ChangedBy:        callerID,
	}, now)
	if err != nil {
		return Member{}, fmt.Errorf("change role of %s in %s: %w", targetID, orgID, err)
	}
	items = append(items, evt)

	err = s.store.Transact(ctx, items...)
	switch {
	case demotesOwner && store.FailedAt(err, ownerIndex):
		return Member{}, lastOwner(orgID, "be demoted")
	case store.FailedAt(err, ownerIndex):
		return Member{}, orgNotFound(orgID)
	case store.FailedAt(err, callerIndex):
		return Member{}, roleChanged(orgID)
	case store.FailedAt(err, 0):
		return Member{}, membershipChanged(orgID, targetID)
	case err != nil:
		return Member{}, fmt.Errorf("change role of %s in %s: %w", targetID, orgID, err)
	}
	return s.member(ctx, target)
}

// RemoveMember ends a membership. A user may always leave (targetID ==
// callerID); otherwise owners remove anyone and admins remove members
// only. The last owner can neither leave nor be removed. The change
// writes an organization.member_left event that records whether the
// member left or was removed.
//
// Errors:
//   - NotFound (organization_not_found) when the caller is not a member.
//   - NotFound (member_not_found) when the target is not a member.
//   - Forbidden (insufficient_role) when the caller's role does not allow
//     the removal.
//   - Conflict (last_owner) for the last owner.
//   - Conflict (concurrent_update) when a role involved changed meanwhile.
func (s *Service) RemoveMember(ctx context.Context, callerID, orgID, targetID string) error {
	org, caller, err := s.access(ctx, orgID, callerID)
	if err != nil {
		return err
	}
	leaving := targetID == callerID
	if !leaving {
		if err := requireRole(caller, "Removing a member", authn.RoleOwner, authn.RoleAdmin); err != nil {
			return err
		}
	}
	target, err := s.targetMembership(ctx, caller, targetID)
	if err != nil {
		return err
	}

	// An admin may remove members; removing an admin or an owner needs
	// an owner.
	allowed := []string{authn.RoleOwner, authn.RoleAdmin}
	if target.Role != authn.RoleMember {
		allowed = []string{authn.RoleOwner}
	}
	if !leaving {
		if err := requireRole(caller, "Removing a member with the role "+target.Role, allowed...); err != nil {
			return err
		}
	}

	action := "be removed"
	if leaving {
		action = "leave"
	}
	if target.Role == authn.RoleOwner && org.OwnerCount <= 1 {
		return lastOwner(orgID, action)
	}
	return s.commitRemoval(ctx, org, callerID, target, allowed)
}

// commitRemoval deletes a membership that RemoveMember has checked against
// the items as it read them; allowed lists the caller roles that permit
// the removal. As with commitRoleChange, stale checks fail here.
func (s *Service) commitRemoval(ctx context.Context, org orgItem, callerID string, target memberItem, allowed []string) error {
	orgID, targetID := org.ID, target.UserID
	leaving := targetID == callerID
	action := "be removed"
	if leaving {
		action = "leave"
	}
	removesOwner := target.Role == authn.RoleOwner
	now := s.now().UTC()
	items := []types.TransactWriteItem{
		s.store.DeleteIf(store.MemberKey(orgID, targetID), "#role = :old", map[string]types.AttributeValue{":old": str(target.Role)}),
	}
	// DeleteIf takes no attribute names, and "role" is a reserved word.
	items[0].Delete.ExpressionAttributeNames = map[string]string{"#role": "role"}
	ownerIndex, callerIndex := -1, -1
	if removesOwner {
		ownerIndex = len(items)
		items = append(items, s.addOwners(orgID, -1, now))
	}
	data := MemberLeftData{
		OrganizationID:   orgID,
		OrganizationName: org.Name,
		UserID:           targetID,
		Role:             target.Role,
		Reason:           LeftByLeaving,
	}
	if !leaving {
		callerIndex = len(items)
		items = append(items, s.checkRoleIn(orgID, callerID, allowed...))
		data.Reason = LeftByRemoval
		data.RemovedBy = callerID
	}
	evt, err := s.putEvent(events.MemberLeft, orgID, data, now)
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", targetID, orgID, err)
	}
	items = append(items, evt)

	err = s.store.Transact(ctx, items...)
	switch {
	case store.FailedAt(err, ownerIndex):
		return lastOwner(orgID, action)
	case store.FailedAt(err, callerIndex):
		return roleChanged(orgID)
	case store.FailedAt(err, 0):
		return membershipChanged(orgID, targetID)
	case err != nil:
		return fmt.Errorf("remove %s from %s: %w", targetID, orgID, err)
	}
	return nil
}

// targetMembership reads the membership that an action of the caller is
// about; it is the caller's own when the ids are the same.
func (s *Service) targetMembership(ctx context.Context, caller memberItem, targetID string) (memberItem, error) {
	if targetID == caller.UserID {
		return caller, nil
	}
	target, err := s.membership(ctx, caller.OrgID, targetID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return memberItem{}, memberNotFound(caller.OrgID, targetID)
	}
	return target, err
}

// member returns a membership with the user's name and email address.
func (s *Service) member(ctx context.Context, m memberItem) (Member, error) {
	var u userProfile
	if err := s.store.Get(ctx, store.UserKey(m.UserID), &u); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Member{}, fmt.Errorf("read member %s of %s: %w", m.UserID, m.OrgID, err)
	}
	return Member{UserID: m.UserID, Name: u.Name, Email: u.Email, Role: m.Role, JoinedAt: store.ParseTime(m.JoinedAt)}, nil
}
