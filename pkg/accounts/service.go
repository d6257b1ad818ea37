// Package accounts is sign-up, log-in, sessions and the profile: name,
// email and password.
package accounts

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
	"github.com/signsecure/signsecure/pkg/token"
)

// SessionTokenPrefix starts every session token, so a leaked one is
// recognisable and cannot be mistaken for an API key.
const SessionTokenPrefix = "sess_"

// maxUserAgentLength bounds the user agent kept with a session or device.
const maxUserAgentLength = 256

// sessionTokenChars is the random part's length: 43 base62 characters
// carry about 256 bits.
const sessionTokenChars = 43

// Config holds the account rules that operators may tune.
type Config struct {
	// SessionTTL is how long a session lasts after it is made.
	SessionTTL time.Duration
	// Password is the argon2id cost for new password hashes.
	Password PasswordParams
	// LoginWindow is the fixed window over which failed logins are counted.
	LoginWindow time.Duration
	// MaxFailuresPerAccount is the number of failed logins for one email
	// address in a window after which further attempts get 429.
	MaxFailuresPerAccount int
	// MaxFailuresPerClient is the same limit for one client IP address.
	MaxFailuresPerClient int
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		SessionTTL:            7 * 24 * time.Hour,
		Password:              DefaultPasswordParams,
		LoginWindow:           15 * time.Minute,
		MaxFailuresPerAccount: 5,
		MaxFailuresPerClient:  20,
	}
}

// WorkspaceItemsFunc returns the items that set up a new workspace, such as
// its wallet, to be written in the transaction that creates it.
type WorkspaceItemsFunc func(workspaceID string, now time.Time) ([]types.TransactWriteItem, error)

// Client describes where a request comes from.
type Client struct {
	IP        string
	UserAgent string
}

// Service manages accounts and sessions.
type Service struct {
	store *store.Store
	cfg   Config
	now   func() time.Time
	// dummyHash is verified against when an email is unknown, so both
	// failures take the time of one argon2id verification.
	dummyHash string
	// newWorkspace, if set, adds items to the sign-up transaction.
	newWorkspace WorkspaceItemsFunc
}

// NewService returns a service over the store. now may be nil for
// time.Now; newWorkspace may be nil.
func NewService(s *store.Store, cfg Config, now func() time.Time, newWorkspace WorkspaceItemsFunc) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	dummy, err := HashPassword("dummy password for timing", cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("new accounts service: %w", err)
	}
	return &Service{store: s, cfg: cfg, now: now, dummyHash: dummy, newWorkspace: newWorkspace}, nil
}

// SignupInput is the sign-up request of a new user.
type SignupInput struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Signup creates a user, their personal workspace and a first session. The
// device it comes from counts as known, so the first login from it raises
// no new-login event.
//
// Errors: Invalid for a bad name, email or password; Conflict
// (email_taken) when the address is in use in any letter case.
func (s *Service) Signup(ctx context.Context, in SignupInput, client Client) (User, NewSession, error) {
	name, err := normalizeName("name", in.Name)
	if err != nil {
		return User{}, NewSession{}, err
	}
	email, err := normalizeEmail("email", in.Email)
	if err != nil {
		return User{}, NewSession{}, err
	}
	if err := checkPassword("password", in.Password); err != nil {
		return User{}, NewSession{}, err
	}
	hash, err := HashPassword(in.Password, s.cfg.Password)
	if err != nil {
		return User{}, NewSession{}, fmt.Errorf("signup: %w", err)
	}

	now := s.now().UTC()
	userID := ids.NewAt(ids.User, now)
	user := userItem{
		Item:         itemAt(store.UserKey(userID), entityUser),
		ID:           userID,
		Name:         name,
		Email:        email,
		PasswordHash: hash,
		CreatedAt:    store.FormatTime(now),
		UpdatedAt:    store.FormatTime(now),
	}
	claim := emailClaimItem{Item: itemAt(store.EmailKey(email), entityEmailClaim), UserID: userID}
	sess, tok := s.newSessionItem(userID, user.AuthEpoch, client, now)
	device := newDeviceItem(userID, client, now)

	var items []types.TransactWriteItem
	for _, v := range []any{user, claim, sess, device} {
		it, err := s.store.PutNew(v)
		if err != nil {
			return User{}, NewSession{}, fmt.Errorf("signup %s: %w", userID, err)
		}
		items = append(items, it)
	}
	const claimIndex = 1
	if s.newWorkspace != nil {
		extra, err := s.newWorkspace(userID, now)
		if err != nil {
			return User{}, NewSession{}, fmt.Errorf("signup %s: workspace items: %w", userID, err)
		}
		items = append(items, extra...)
	}

	if err := s.store.Transact(ctx, items...); err != nil {
		if store.FailedAt(err, claimIndex) {
			return User{}, NewSession{}, emailTaken("email", email)
		}
		return User{}, NewSession{}, fmt.Errorf("signup %s: %w", userID, err)
	}
	return user.user(), newSession(sess, tok), nil
}

// newSession returns the response form of a session just made for the
// caller, which is the caller's current session.
func newSession(sess sessionItem, tok string) NewSession {
	out := NewSession{Session: sess.session(""), Token: tok}
	out.Current = true
	return out
}

// Login checks an email and password and starts a session. A login from a
// device and network not seen before for the user writes a
// security.new_login event in the same transaction as the session.
//
// Errors: Unauthorized (invalid_credentials), the same for an unknown email
// and a wrong password; RateLimited after too many failures for the
// address or the client.
func (s *Service) Login(ctx context.Context, email, password string, client Client) (User, NewSession, error) {
	now := s.now().UTC()
	email = strings.TrimSpace(email)
	if email == "" {
		return User{}, NewSession{}, apperr.InvalidField("email", "missing_field", "Field \"email\" is required.")
	}
	if password == "" {
		return User{}, NewSession{}, apperr.InvalidField("password", "missing_field", "Field \"password\" is required.")
	}

	release, err := s.reserveLoginAttempt(ctx, email, client.IP, now)
	if err != nil {
		return User{}, NewSession{}, err
	}

	user, err := s.userByEmail(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return User{}, NewSession{}, err
	}
	if errors.Is(err, store.ErrNotFound) {
		_, _ = VerifyPassword(password, s.dummyHash)
		return User{}, NewSession{}, invalidCredentials()
	}
	ok, err := VerifyPassword(password, user.PasswordHash)
	if err != nil {
		return User{}, NewSession{}, fmt.Errorf("login %s: %w", user.ID, err)
	}
	if !ok {
		return User{}, NewSession{}, invalidCredentials()
	}
	release(ctx)

	sess, tok, err := s.startSession(ctx, user, client, now)
	if err != nil {
		return User{}, NewSession{}, err
	}
	return user.user(), newSession(sess, tok), nil
}

// startSession writes a new session, and the device and a new-login event
// when the device is new.
func (s *Service) startSession(ctx context.Context, user userItem, client Client, now time.Time) (sessionItem, string, error) {
	sess, tok := s.newSessionItem(user.ID, user.AuthEpoch, client, now)
	sessPut, err := s.store.PutNew(sess)
	if err != nil {
		return sessionItem{}, "", err
	}

	device := newDeviceItem(user.ID, client, now)
	var known deviceItem
	err = s.store.Get(ctx, store.Key{PK: device.PK, SK: device.SK}, &known)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return sessionItem{}, "", fmt.Errorf("login %s: %w", user.ID, err)
	}
	if err == nil {
		if err := s.store.Transact(ctx, sessPut); err != nil {
			return sessionItem{}, "", fmt.Errorf("login %s: %w", user.ID, err)
		}
		return sess, tok, nil
	}

	devicePut, err := s.store.PutNew(device)
	if err != nil {
		return sessionItem{}, "", err
	}
	evt, err := events.New(events.NewLogin, user.ID, map[string]any{
		"user_id":      user.ID,
		"session_id":   sess.ID,
		"ip":           client.IP,
		"user_agent":   client.UserAgent,
		"logged_in_at": now,
	}, now)
	if err != nil {
		return sessionItem{}, "", err
	}
	evtPut, err := events.Put(s.store, evt)
	if err != nil {
		return sessionItem{}, "", err
	}

	err = s.store.Transact(ctx, sessPut, devicePut, evtPut)
	if store.FailedAt(err, 1) {
		// A concurrent login from the same device registered it first and
		// raised the event; this session needs none.
		err = s.store.Transact(ctx, sessPut)
	}
	if err != nil {
		return sessionItem{}, "", fmt.Errorf("login %s: %w", user.ID, err)
	}
	return sess, tok, nil
}

func (s *Service) newSessionItem(userID string, epoch int64, client Client, now time.Time) (sessionItem, string) {
	tok := SessionTokenPrefix + token.Base62(sessionTokenChars)
	id := ids.NewAt(ids.Session, now)
	it := itemAt(store.SessionKey(token.Hash(tok)), entitySession)
	it.GSI1PK = store.UserPK(userID)
	it.GSI1SK = store.SessionGSI1SK(id)
	it.ExpiresAt = now.Add(s.cfg.SessionTTL).Unix()
	return sessionItem{
		Item:      it,
		ID:        id,
		UserID:    userID,
		AuthEpoch: epoch,
		CreatedAt: store.FormatTime(now),
		IP:        client.IP,
		UserAgent: truncate(client.UserAgent, maxUserAgentLength),
	}, tok
}

// Authenticate returns the user and session of a session token.
//
// Errors: Unauthorized (invalid_session) for a malformed, unknown, expired
// or revoked token, including one issued before the last password change.
func (s *Service) Authenticate(ctx context.Context, tok string) (User, sessionItem, error) {
	rest, ok := strings.CutPrefix(tok, SessionTokenPrefix)
	if !ok || len(rest) != sessionTokenChars || !token.IsBase62(rest) {
		return User{}, sessionItem{}, invalidSession()
	}

	var sess sessionItem
	if err := s.store.Get(ctx, store.SessionKey(token.Hash(tok)), &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return User{}, sessionItem{}, invalidSession()
		}
		return User{}, sessionItem{}, fmt.Errorf("authenticate session: %w", err)
	}
	if s.now().Unix() >= sess.ExpiresAt {
		return User{}, sessionItem{}, invalidSession()
	}

	user, err := s.getUser(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, sessionItem{}, invalidSession()
	}
	if err != nil {
		return User{}, sessionItem{}, fmt.Errorf("authenticate session %s: %w", sess.ID, err)
	}
	if user.AuthEpoch != sess.AuthEpoch {
		return User{}, sessionItem{}, invalidSession()
	}
	return user.user(), sess, nil
}

// Logout ends the session whose token hash is given.
func (s *Service) Logout(ctx context.Context, sessionHash string) error {
	if err := s.store.Delete(ctx, store.SessionKey(sessionHash)); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// GetUser returns a user.
//
// Errors: NotFound.
func (s *Service) GetUser(ctx context.Context, userID string) (User, error) {
	u, err := s.getUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, apperr.New(apperr.NotFound, "User %s was not found.", userID)
	}
	if err != nil {
		return User{}, err
	}
	return u.user(), nil
}

func (s *Service) getUser(ctx context.Context, userID string) (userItem, error) {
	var u userItem
	if err := s.store.Get(ctx, store.UserKey(userID), &u); err != nil {
		return userItem{}, fmt.Errorf("get user %s: %w", userID, err)
	}
	return u, nil
}

func (s *Service) userByEmail(ctx context.Context, email string) (userItem, error) {
	var claim emailClaimItem
	if err := s.store.Get(ctx, store.EmailKey(email), &claim); err != nil {
		return userItem{}, fmt.Errorf("get email claim: %w", err)
	}
	return s.getUser(ctx, claim.UserID)
}

func itemAt(k store.Key, entity string) store.Item {
	return store.Item{PK: k.PK, SK: k.SK, Entity: entity}
}

func invalidCredentials() error {
	return &apperr.Error{Code: apperr.Unauthorized, Reason: "invalid_credentials",
		Message: "The email address or password is incorrect."}
}

func invalidSession() error {
	return &apperr.Error{Code: apperr.Unauthorized, Reason: "invalid_session",
		Message: "The session token is invalid, expired or revoked; log in again."}
}

func emailTaken(field, email string) error {
	return &apperr.Error{Code: apperr.Conflict, Reason: "email_taken", Field: field,
		Message: fmt.Sprintf("Email address %q is already in use by another account.", email)}
}
