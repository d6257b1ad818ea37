package orgs

import (
	"fmt"
	"strings"

	"github.com/signsecure/signsecure/pkg/apperr"
)

func orgNotFound(orgID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "organization_not_found",
		Message: fmt.Sprintf("Organization %q was not found.", truncate(orgID, 40))}
}

func memberNotFound(orgID, userID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "member_not_found", Field: "user_id",
		Message: fmt.Sprintf("User %q is not a member of organization %s.", truncate(userID, 40), orgID)}
}

func invitationNotFound(invitationID string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "invitation_not_found",
		Message: fmt.Sprintf("Invitation %q was not found.", truncate(invitationID, 40))}
}

// requireRole returns a Forbidden error, naming the roles that allow the
// action and the caller's role, unless the caller has one of the roles.
func requireRole(m memberItem, action string, roles ...string) error {
	for _, r := range roles {
		if m.Role == r {
			return nil
		}
	}
	return forbidden(m, action, roles...)
}

func forbidden(m memberItem, action string, roles ...string) error {
	return &apperr.Error{Code: apperr.Forbidden, Reason: "insufficient_role",
		Message: fmt.Sprintf("%s in organization %s needs the role %s; your role is %s.",
			action, m.OrgID, strings.Join(roles, " or "), m.Role),
		Extra: map[string]any{"required_roles": roles, "role": m.Role}}
}

// roleChanged is returned when the caller's own role changed between the
// check and the transaction that relied on it.
func roleChanged(orgID string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "concurrent_update",
		Message: fmt.Sprintf("Your role in organization %s changed while the request ran; read it again and retry.", orgID)}
}

func membershipChanged(orgID, userID string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "concurrent_update",
		Message: fmt.Sprintf("The membership of %s in organization %s changed while the request ran; read it again and retry.", userID, orgID)}
}

func lastOwner(orgID, action string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "last_owner",
		Message: fmt.Sprintf("Organization %s must keep at least one owner, so its last owner cannot %s; make another member an owner first.", orgID, action)}
}
