package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// directory reads the users, organizations and memberships that decide who
// is notified of an event.
type directory struct {
	store *store.Store
}

// profile is the part of a user's profile item that notifications use.
type profile struct {
	ID    string `dynamodbav:"id"`
	Name  string `dynamodbav:"name"`
	Email string `dynamodbav:"email"`
}

// user returns the user's profile. It returns an error wrapping
// store.ErrNotFound when the user does not exist.
func (d directory) user(ctx context.Context, userID string) (profile, error) {
	var p profile
	if err := d.store.Get(ctx, store.UserKey(userID), &p); err != nil {
		return profile{}, fmt.Errorf("get user %s: %w", userID, err)
	}
	return p, nil
}

// userName returns the user's name, or fallback when the user no longer
// exists.
func (d directory) userName(ctx context.Context, userID, fallback string) (string, error) {
	if userID == "" {
		return fallback, nil
	}
	p, err := d.user(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return fallback, nil
	}
	if err != nil {
		return "", err
	}
	if p.Name == "" {
		return fallback, nil
	}
	return p.Name, nil
}

// userIDByEmail returns the id of the user who holds the address, or ""
// when no account has it.
func (d directory) userIDByEmail(ctx context.Context, email string) (string, error) {
	var claim struct {
		UserID string `dynamodbav:"user_id"`
	}
	err := d.store.Get(ctx, store.EmailKey(email), &claim)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up the user of an email address: %w", err)
	}
	return claim.UserID, nil
}

// orgName returns the organization's name, or fallback when it no longer
// exists.
func (d directory) orgName(ctx context.Context, orgID, fallback string) (string, error) {
	var org struct {
		Name string `dynamodbav:"name"`
	}
	err := d.store.Get(ctx, store.OrgKey(orgID), &org)
	if errors.Is(err, store.ErrNotFound) || (err == nil && org.Name == "") {
		return fallback, nil
	}
	if err != nil {
		return "", fmt.Errorf("get organization %s: %w", orgID, err)
	}
	return org.Name, nil
}

// orgLabel returns the organization's name as the event data gives it, or
// as the table stores it when the data lacks it.
func (d directory) orgLabel(ctx context.Context, data orgData, orgID string) (string, error) {
	if data.OrganizationName != "" {
		return data.OrganizationName, nil
	}
	return d.orgName(ctx, orgID, "an organization")
}

// managerPageSize is the page size of membership queries.
const managerPageSize = 100

// managers returns the ids of the organization's owners and admins, in
// membership key order.
func (d directory) managers(ctx context.Context, orgID string) ([]string, error) {
	var userIDs []string
	cursor := ""
	for {
		var page []struct {
			UserID string `dynamodbav:"user_id"`
			Role   string `dynamodbav:"role"`
		}
		next, err := d.store.QueryPage(ctx, store.Query{
			Partition: store.OrgPK(orgID),
			SKPrefix:  "MEMBER#",
			Limit:     managerPageSize,
			Cursor:    cursor,
		}, &page)
		if err != nil {
			return nil, fmt.Errorf("list members of organization %s: %w", orgID, err)
		}
		for _, m := range page {
			if (m.Role == authn.RoleOwner || m.Role == authn.RoleAdmin) && m.UserID != "" {
				userIDs = append(userIDs, m.UserID)
			}
		}
		if next == "" {
			return userIDs, nil
		}
		cursor = next
	}
}

// workspaceUsers returns the users notified of a workspace's billing: the
// user of a personal workspace, or an organization's owners and admins.
func (d directory) workspaceUsers(ctx context.Context, workspaceID string) ([]string, error) {
	switch {
	case strings.HasPrefix(workspaceID, ids.User+"_"):
		return []string{workspaceID}, nil
	case strings.HasPrefix(workspaceID, ids.Organization+"_"):
		return d.managers(ctx, workspaceID)
	default:
		return nil, fmt.Errorf("workspace id %q is neither a user nor an organization id", workspaceID)
	}
}

// workspaceName returns how emails and notifications name a workspace.
func (d directory) workspaceName(ctx context.Context, workspaceID string) (string, error) {
	if strings.HasPrefix(workspaceID, ids.Organization+"_") {
		return d.orgName(ctx, workspaceID, "your organization")
	}
	return "your personal workspace", nil
}

// unique returns userIDs without empty and repeated ids, in first-seen order.
func unique(userIDs ...string) []string {
	out := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
