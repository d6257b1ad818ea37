package accounts

import (
	"context"
	"strings"

	"github.com/signsecure/signsecure/pkg/store"
)

type userContextKey struct{}

// withUser keeps the user that session authentication read, so handlers
// do not read it again.
func withUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userContextKey{}, u)
}

func userFromContext(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userContextKey{}).(User)
	return u, ok
}

func isSessionToken(tok string) bool { return strings.HasPrefix(tok, SessionTokenPrefix) }

func sessionHashOf(s sessionItem) string {
	return strings.TrimPrefix(s.PK, store.SessionKey("").PK)
}
