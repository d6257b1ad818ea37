package accounts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// ProfileUpdate holds the fields to change; nil fields stay as they are.
// Changing the email needs the current password, so a stolen session
// alone cannot take over the account.
type ProfileUpdate struct {
	Name            *string `json:"name"`
	Email           *string `json:"email"`
	CurrentPassword string  `json:"current_password"`
}

// UpdateProfile changes a user's name and email. A new email address is
// claimed and the old one released in the same transaction, so two users
// can never hold one address.
//
// Errors: Invalid for a bad or missing field; Unauthorized
// (invalid_credentials) for a missing or wrong current password when the
// email changes; RateLimited after too many wrong passwords; Conflict
// (email_taken) when the new address is in use; Conflict
// (concurrent_update) when the profile changed meanwhile.
func (s *Service) UpdateProfile(ctx context.Context, userID string, in ProfileUpdate, client Client) (User, error) {
	if in.Name == nil && in.Email == nil {
		return User{}, apperr.New(apperr.Invalid, "Give at least one of the fields \"name\" and \"email\".").WithReason("empty_update")
	}
	user, err := s.getUser(ctx, userID)
	if err != nil {
		return User{}, err
	}

	next := user
	if in.Name != nil {
		if next.Name, err = normalizeName("name", *in.Name); err != nil {
			return User{}, err
		}
	}
	if in.Email != nil {
		if next.Email, err = normalizeEmail("email", *in.Email); err != nil {
			return User{}, err
		}
	}
	now := s.now().UTC()
	next.UpdatedAt = store.FormatTime(now)

	update := s.store.UpdateIn(store.UserKey(userID),
		"SET #name = :name, email = :email, updated_at = :now",
		"email = :old_email AND auth_epoch = :epoch",
		map[string]string{"#name": "name"},
		map[string]types.AttributeValue{
			":name":      &types.AttributeValueMemberS{Value: next.Name},
			":email":     &types.AttributeValueMemberS{Value: next.Email},
			":now":       &types.AttributeValueMemberS{Value: next.UpdatedAt},
			":old_email": &types.AttributeValueMemberS{Value: user.Email},
			":epoch":     &types.AttributeValueMemberN{Value: strconv.FormatInt(user.AuthEpoch, 10)},
		})
	items := []types.TransactWriteItem{update}

	emailChanged := !strings.EqualFold(next.Email, user.Email)
	if emailChanged {
		if err := s.checkCurrentPassword(ctx, user, in.CurrentPassword, client); err != nil {
			return User{}, err
		}
		claim, err := s.store.PutNew(emailClaimItem{Item: itemAt(store.EmailKey(next.Email), entityEmailClaim), UserID: userID})
		if err != nil {
			return User{}, err
		}
		release := s.store.DeleteIf(store.EmailKey(user.Email), "user_id = :uid",
			map[string]types.AttributeValue{":uid": &types.AttributeValueMemberS{Value: userID}})
		items = append(items, claim, release)
	}

	err = s.store.Transact(ctx, items...)
	switch {
	case err == nil:
		return next.user(), nil
	case emailChanged && store.FailedAt(err, 1):
		return User{}, emailTaken("email", next.Email)
	case store.FailedAt(err, 0) || store.FailedAt(err, 2):
		return User{}, apperr.New(apperr.Conflict, "The profile was changed by another request; read it again and retry.").WithReason("concurrent_update")
	default:
		return User{}, fmt.Errorf("update profile %s: %w", userID, err)
	}
}

// ChangePassword replaces a user's password after checking the current one,
// and ends every other session: the user's auth epoch moves on, and only
// the calling session is carried over to the new epoch, in one
// transaction. Other session items are then deleted; a failure to delete
// them leaves them unusable all the same.
//
// Errors: Invalid for a bad new password; Unauthorized
// (invalid_credentials) for a wrong current password; Conflict
// (concurrent_update) when the password changed meanwhile.
func (s *Service) ChangePassword(ctx context.Context, userID, sessionHash, current, next string, client Client) error {
	if current == "" {
		return apperr.InvalidField("current_password", "missing_field", "Field \"current_password\" is required.")
	}
	if err := checkPassword("new_password", next); err != nil {
		return err
	}
	user, err := s.getUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.checkCurrentPassword(ctx, user, current, client); err != nil {
		return err
	}
	hash, err := HashPassword(next, s.cfg.Password)
	if err != nil {
		return fmt.Errorf("change password %s: %w", userID, err)
	}

	now := s.now().UTC()
	oldEpoch := strconv.FormatInt(user.AuthEpoch, 10)
	newEpoch := strconv.FormatInt(user.AuthEpoch+1, 10)
	err = s.store.Transact(ctx,
		s.store.UpdateIn(store.UserKey(userID),
			"SET password_hash = :hash, auth_epoch = :new, updated_at = :now",
			"auth_epoch = :old",
			nil,
			map[string]types.AttributeValue{
				":hash": &types.AttributeValueMemberS{Value: hash},
				":new":  &types.AttributeValueMemberN{Value: newEpoch},
				":old":  &types.AttributeValueMemberN{Value: oldEpoch},
				":now":  &types.AttributeValueMemberS{Value: store.FormatTime(now)},
			}),
		s.store.UpdateIn(store.SessionKey(sessionHash),
			"SET auth_epoch = :new",
			"auth_epoch = :old AND user_id = :uid",
			nil,
			map[string]types.AttributeValue{
				":new": &types.AttributeValueMemberN{Value: newEpoch},
				":old": &types.AttributeValueMemberN{Value: oldEpoch},
				":uid": &types.AttributeValueMemberS{Value: userID},
			}),
	)
	if store.FailedAt(err, 0) || store.FailedAt(err, 1) {
		return apperr.New(apperr.Conflict, "The password was changed by another request; log in again.").WithReason("concurrent_update")
	}
	if err != nil {
		return fmt.Errorf("change password %s: %w", userID, err)
	}

	s.deleteOtherSessions(ctx, userID, sessionHash)
	return nil
}

// checkCurrentPassword verifies a signed-in user's current password,
// counting wrong guesses against the same limits as failed logins.
func (s *Service) checkCurrentPassword(ctx context.Context, user userItem, password string, client Client) error {
	if password == "" {
		return &apperr.Error{Code: apperr.Unauthorized, Reason: "invalid_credentials", Field: "current_password",
			Message: "Field \"current_password\" is required to change the email address or password."}
	}
	release, err := s.reserveLoginAttempt(ctx, user.Email, client.IP, s.now().UTC())
	if err != nil {
		return err
	}
	ok, err := VerifyPassword(password, user.PasswordHash)
	if err != nil {
		return fmt.Errorf("check password of %s: %w", user.ID, err)
	}
	if !ok {
		return &apperr.Error{Code: apperr.Unauthorized, Reason: "invalid_credentials", Field: "current_password",
			Message: "Field \"current_password\" does not match the account's password."}
	}
	release(ctx)
	return nil
}

// deleteOtherSessions removes the user's session items other than the
// current one. Their epoch no longer matches, so this is tidying, not the
// revocation itself.
func (s *Service) deleteOtherSessions(ctx context.Context, userID, keepHash string) {
	keep := store.SessionKey(keepHash).PK
	cursor := ""
	for {
		var page []sessionItem
		next, err := s.store.QueryPage(ctx, store.Query{Index: store.GSI1, Partition: store.UserPK(userID), SKPrefix: "SESSION#", Limit: 100, Cursor: cursor}, &page)
		if err != nil {
			return
		}
		for _, sess := range page {
			if sess.PK != keep {
				_ = s.store.Delete(ctx, store.Key{PK: sess.PK, SK: sess.SK})
			}
		}
		if next == "" {
			return
		}
		cursor = next
	}
}

// ListSessions returns a page of the user's active sessions, newest first.
//
// Errors: Invalid (invalid_cursor) for a cursor of another listing.
func (s *Service) ListSessions(ctx context.Context, userID, currentHash string, limit int, cursor string) ([]Session, string, error) {
	user, err := s.getUser(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	var items []sessionItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Index:      store.GSI1,
		Partition:  store.UserPK(userID),
		SKPrefix:   "SESSION#",
		Descending: true,
		Filter:     "auth_epoch = :epoch AND expires_at > :now",
		FilterValues: map[string]types.AttributeValue{
			":epoch": &types.AttributeValueMemberN{Value: strconv.FormatInt(user.AuthEpoch, 10)},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(s.now().Unix(), 10)},
		},
		Limit:  limit,
		Cursor: cursor,
	}, &items)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("list sessions of %s: %w", userID, err)
	}
	out := make([]Session, 0, len(items))
	for _, it := range items {
		out = append(out, it.session(currentHash))
	}
	return out, next, nil
}

// RevokeSession ends one of the user's sessions by its id.
//
// Errors: Invalid (invalid_id) for a malformed id; NotFound when the user
// has no such session.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	if !ids.Valid(ids.Session, sessionID) {
		return apperr.InvalidField("id", "invalid_id", "Path parameter id=%q is not a session id such as ses_01jf3k8x2q7m9v4n5b6c7d8e9f.", truncate(sessionID, 40))
	}
	notFound := apperr.New(apperr.NotFound, "Session %q was not found.", sessionID).WithReason("session_not_found")
	var items []sessionItem
	_, err := s.store.QueryPage(ctx, store.Query{
		Index:     store.GSI1,
		Partition: store.UserPK(userID),
		SKPrefix:  store.SessionGSI1SK(sessionID),
		Limit:     1,
	}, &items)
	if err != nil {
		return fmt.Errorf("revoke session %s: %w", sessionID, err)
	}
	if len(items) == 0 || items[0].UserID != userID {
		return notFound
	}
	if err := s.store.Delete(ctx, store.Key{PK: items[0].PK, SK: items[0].SK}); err != nil {
		return fmt.Errorf("revoke session %s: %w", sessionID, err)
	}
	return nil
}
