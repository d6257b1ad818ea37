package accounts

import (
	"time"

	"github.com/signsecure/signsecure/pkg/store"
)

// User is an account holder.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Session is a logged-in client of a user. Its token is never stored.
type Session struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	// Current is true for the session that made the request.
	Current bool `json:"current"`
}

// NewSession is a session at the moment it is made: the only time its
// token exists outside the client.
type NewSession struct {
	Session
	Token string `json:"token"`
}

const (
	entityUser       = "user"
	entityEmailClaim = "email_claim"
	entitySession    = "session"
	entityDevice     = "device"
	entityThrottle   = "login_throttle"
)

// userItem is a user's profile item. AuthEpoch changes with the password;
// a session whose epoch differs is no longer valid.
type userItem struct {
	store.Item
	ID           string `dynamodbav:"id"`
	Name         string `dynamodbav:"name"`
	Email        string `dynamodbav:"email"`
	PasswordHash string `dynamodbav:"password_hash"`
	AuthEpoch    int64  `dynamodbav:"auth_epoch"`
	CreatedAt    string `dynamodbav:"created_at"`
	UpdatedAt    string `dynamodbav:"updated_at"`
}

func (u userItem) user() User {
	return User{ID: u.ID, Name: u.Name, Email: u.Email, CreatedAt: store.ParseTime(u.CreatedAt), UpdatedAt: store.ParseTime(u.UpdatedAt)}
}

// emailClaimItem reserves a lowercased email address for one user.
type emailClaimItem struct {
	store.Item
	UserID string `dynamodbav:"user_id"`
}

// sessionItem is a session, keyed by the SHA-256 of its token.
type sessionItem struct {
	store.Item
	ID        string `dynamodbav:"id"`
	UserID    string `dynamodbav:"user_id"`
	AuthEpoch int64  `dynamodbav:"auth_epoch"`
	CreatedAt string `dynamodbav:"created_at"`
	IP        string `dynamodbav:"ip"`
	UserAgent string `dynamodbav:"user_agent"`
}

func (s sessionItem) session(currentHash string) Session {
	return Session{
		ID:        s.ID,
		CreatedAt: store.ParseTime(s.CreatedAt),
		ExpiresAt: time.Unix(s.ExpiresAt, 0).UTC(),
		IP:        s.IP,
		UserAgent: s.UserAgent,
		Current:   currentHash != "" && s.PK == store.SessionKey(currentHash).PK,
	}
}

// deviceItem records a device and network a user has logged in from.
type deviceItem struct {
	store.Item
	UserAgent   string `dynamodbav:"user_agent"`
	Network     string `dynamodbav:"network"`
	FirstSeenAt string `dynamodbav:"first_seen_at"`
}
