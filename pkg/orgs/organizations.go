package orgs

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// Create makes an organization whose only member is its creator, as owner.
// The organization, the membership and the new workspace's items are
// written in one transaction.
//
// Errors: Invalid (invalid_name) for an empty or overlong name.
func (s *Service) Create(ctx context.Context, userID, name string) (Organization, error) {
	name, err := normalizeName("name", name)
	if err != nil {
		return Organization{}, err
	}

	now := s.now().UTC()
	orgID := ids.NewAt(ids.Organization, now)
	key := store.OrgKey(orgID)
	org := orgItem{
		Item:       store.Item{PK: key.PK, SK: key.SK, Entity: entityOrganization},
		ID:         orgID,
		Name:       name,
		CreatedAt:  store.FormatTime(now),
		CreatedBy:  userID,
		UpdatedAt:  store.FormatTime(now),
		OwnerCount: 1,
	}
	owner := newMemberItem(orgID, userID, authn.RoleOwner, now)

	var items []types.TransactWriteItem
	for _, v := range []any{org, owner} {
		it, err := s.store.PutNew(v)
		if err != nil {
			return Organization{}, fmt.Errorf("create organization %s: %w", orgID, err)
		}
		items = append(items, it)
	}
	if s.newWorkspace != nil {
		extra, err := s.newWorkspace(orgID, now)
		if err != nil {
			return Organization{}, fmt.Errorf("create organization %s: workspace items: %w", orgID, err)
		}
		items = append(items, extra...)
	}

	if err := s.store.Transact(ctx, items...); err != nil {
		return Organization{}, fmt.Errorf("create organization %s: %w", orgID, err)
	}
	return org.organization(authn.RoleOwner), nil
}

// Get returns an organization the user belongs to, with the user's role.
//
// Errors: NotFound (organization_not_found) when the user is not a member.
func (s *Service) Get(ctx context.Context, userID, orgID string) (Organization, error) {
	org, m, err := s.access(ctx, orgID, userID)
	if err != nil {
		return Organization{}, err
	}
	return org.organization(m.Role), nil
}

// Rename changes an organization's name. Owners and admins may rename it.
//
// Errors:
//   - NotFound (organization_not_found) when the user is not a member.
//   - Forbidden (insufficient_role) for a member.
//   - Invalid (invalid_name) for an empty or overlong name.
//   - Conflict (concurrent_update) when the user's role changed meanwhile.
func (s *Service) Rename(ctx context.Context, userID, orgID, name string) (Organization, error) {
	org, m, err := s.access(ctx, orgID, userID)
	if err != nil {
		return Organization{}, err
	}
	if err := requireRole(m, "Renaming the organization", authn.RoleOwner, authn.RoleAdmin); err != nil {
		return Organization{}, err
	}
	if org.Name, err = normalizeName("name", name); err != nil {
		return Organization{}, err
	}
	now := s.now().UTC()
	org.UpdatedAt = store.FormatTime(now)

	err = s.store.Transact(ctx,
		s.store.UpdateIn(store.OrgKey(orgID), "SET #name = :name, updated_at = :now", "attribute_exists(PK)",
			map[string]string{"#name": "name"},
			map[string]types.AttributeValue{":name": str(org.Name), ":now": str(org.UpdatedAt)}),
		s.checkRoleIn(orgID, userID, authn.RoleOwner, authn.RoleAdmin),
	)
	switch {
	case store.FailedAt(err, 0):
		return Organization{}, orgNotFound(orgID)
	case store.FailedAt(err, 1):
		return Organization{}, roleChanged(orgID)
	case err != nil:
		return Organization{}, fmt.Errorf("rename organization %s: %w", orgID, err)
	}
	return org.organization(m.Role), nil
}

// ListWorkspaces returns a page of the workspaces the user can act in: the
// personal workspace, then each organization the user belongs to, in the
// order of their ids. The personal workspace comes only on the first page
// (no cursor) and is not counted against limit.
//
// Errors: the store's ErrInvalidCursor for a cursor of another listing.
func (s *Service) ListWorkspaces(ctx context.Context, userID string, limit int, cursor string) ([]Workspace, string, error) {
	var out []Workspace
	if cursor == "" {
		var user userProfile
		if err := s.store.Get(ctx, store.UserKey(userID), &user); err != nil {
			return nil, "", fmt.Errorf("list workspaces of %s: %w", userID, err)
		}
		out = append(out, Workspace{ID: userID, Type: WorkspacePersonal, Name: user.Name})
	}

	var memberships []memberItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Index:     store.GSI1,
		Partition: store.UserPK(userID),
		SKPrefix:  orgGSI1SKPrefix,
		Limit:     limit,
		Cursor:    cursor,
	}, &memberships)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("list workspaces of %s: %w", userID, err)
	}

	orgIDs := make([]string, len(memberships))
	for i, m := range memberships {
		orgIDs[i] = m.OrgID
	}
	names, err := s.orgNames(ctx, orgIDs)
	if err != nil {
		return nil, "", fmt.Errorf("list workspaces of %s: %w", userID, err)
	}
	for _, m := range memberships {
		out = append(out, Workspace{ID: m.OrgID, Type: WorkspaceOrganization, Name: names[m.OrgID], Role: m.Role})
	}
	return out, next, nil
}
