package notify

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// Handlers serves the notification and preference routes. Notifications
// belong to the user, not to a workspace, so every route acts for the
// session's user whatever workspace the request selects.
type Handlers struct {
	Service *Service
}

// Routes returns the notification routes. session wraps a handler with
// session authentication and workspace resolution (X-Workspace-Id); every
// route here uses it, because notifications belong to a logged-in user.
// sessionOrKey, which accepts an API key as well, is not used.
func Routes(h Handlers, session, sessionOrKey func(http.Handler) http.Handler) []httpapi.Route {
	route := func(name, method, path string, f httpapi.HandlerFunc) httpapi.Route {
		return httpapi.Route{Name: name, Method: method, Path: path, Handler: session(f)}
	}
	return []httpapi.Route{
		route("notifications-list", http.MethodGet, "/v1/notifications", h.List),
		route("notifications-unread-count", http.MethodGet, "/v1/notifications/unread-count", h.UnreadCount),
		route("notifications-read", http.MethodPost, "/v1/notifications/{id}/read", h.MarkRead),
		route("notifications-read-all", http.MethodPost, "/v1/notifications/read-all", h.MarkAllRead),
		route("notification-preferences-get", http.MethodGet, "/v1/notification-preferences", h.GetPreferences),
		route("notification-preferences-update", http.MethodPatch, "/v1/notification-preferences", h.UpdatePreferences),
	}
}

// sessionUser returns the id of the user behind the request's session.
func sessionUser(r *http.Request) (string, error) {
	caller := authn.MustFromContext(r.Context())
	if caller.Kind != authn.KindSession {
		return "", &apperr.Error{Code: apperr.Unauthorized, Reason: "session_required",
			Message: "Notifications need a session token (sess_...) from POST /v1/auth/login; API keys are not accepted here."}
	}
	return caller.UserID, nil
}

// List serves GET /v1/notifications: the user's notifications, newest
// first; only unread ones with unread=true.
func (h Handlers) List(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	limit, cursor, err := httpapi.PageParams(r)
	if err != nil {
		return err
	}
	unreadOnly := false
	switch raw := r.URL.Query().Get("unread"); raw {
	case "", "false":
	case "true":
		unreadOnly = true
	default:
		return apperr.InvalidField("unread", "invalid_unread",
			"Query parameter unread=%q must be true or false.", raw)
	}

	list, next, err := h.Service.List(r.Context(), userID, unreadOnly, limit, cursor)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, httpapi.Page[Notification]{Data: list, NextCursor: next})
	return nil
}

type unreadCountResponse struct {
	Unread int `json:"unread"`
}

// UnreadCount serves GET /v1/notifications/unread-count.
func (h Handlers) UnreadCount(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	n, err := h.Service.UnreadCount(r.Context(), userID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, unreadCountResponse{Unread: n})
	return nil
}

// MarkRead serves POST /v1/notifications/{id}/read and returns the
// notification.
func (h Handlers) MarkRead(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	n, err := h.Service.MarkRead(r.Context(), userID, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, n)
	return nil
}

type readAllResponse struct {
	// Marked is the number of notifications this request marked read.
	Marked int `json:"marked"`
}

// MarkAllRead serves POST /v1/notifications/read-all.
func (h Handlers) MarkAllRead(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	n, err := h.Service.MarkAllRead(r.Context(), userID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, readAllResponse{Marked: n})
	return nil
}

// GetPreferences serves GET /v1/notification-preferences: an object that
// maps every notification type to true (on) or false (off).
func (h Handlers) GetPreferences(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	prefs, err := h.Service.Preferences(r.Context(), userID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, prefs)
	return nil
}

// UpdatePreferences serves PATCH /v1/notification-preferences. The body
// maps notification types to true or false; the response is the
// preferences for every type.
func (h Handlers) UpdatePreferences(w http.ResponseWriter, r *http.Request) error {
	userID, err := sessionUser(r)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := httpapi.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	changes, err := preferenceChanges(body)
	if err != nil {
		return err
	}
	prefs, err := h.Service.UpdatePreferences(r.Context(), userID, changes)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, prefs)
	return nil
}

// preferenceChanges checks that every member of the body names a type and
// holds true or false. Members are checked in sorted order, so the error
// names the same member on every try.
func preferenceChanges(body map[string]json.RawMessage) (map[string]bool, error) {
	names := make([]string, 0, len(body))
	for name := range body {
		names = append(names, name)
	}
	sort.Strings(names)

	changes := make(map[string]bool, len(body))
	for _, name := range names {
		if !KnownType(name) {
			return nil, unknownType(name)
		}
		switch string(body[name]) {
		case "true":
			changes[name] = true
		case "false":
			changes[name] = false
		default:
			return nil, apperr.InvalidField(name, "wrong_type",
				"Field %q must be true or false, not %s.", name, body[name])
		}
	}
	return changes, nil
}
