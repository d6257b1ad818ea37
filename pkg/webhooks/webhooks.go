// Package webhooks sends a workspace's events to the HTTPS endpoints it
// registers, signed as Standard Webhooks specifies.
//
// An endpoint belongs to one workspace and subscribes to event types of
// the catalogue (never security.* types) or to all of them with "*". Its
// signing secret, "whsec_" and the base64 of 32 random bytes, is shown at
// creation, by the secret route and after a rotation. For
// Config.RotationOverlap after a rotation, the previous secret signs each
// delivery too.
//
// The event dispatcher hands each event to Fanout. Fanout writes one
// delivery item per subscribed, enabled endpoint and sends one message
// with the ids to the deliveries queue. A delivery's id is derived from
// the event and endpoint ids, so a repeated stream record adds nothing.
// Sender consumes the deliveries queue. Each receive of a message is one attempt. After a failed
// attempt the sender sets the message's visibility timeout to the next
// retry delay and reports the message as failed. The queue's redrive
// policy (maxReceiveCount equal to Config.MaxAttempts) moves the message
// to the dead-letter queue after the last attempt. A 410 Gone response
// disables the endpoint. Repeated failed deliveries disable it too (see
// Config.DisableAfterFailures), and either way the workspace's owners and
// admins, or the user of a personal workspace, get an in-app notification.
//
// URLs are checked against an AddressPolicy when an endpoint is created or
// changed, and again on every attempt by the dialer, which connects only
// to addresses it has checked.
package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/store"
)

// SQS is the part of *sqs.Client that the package uses.
type SQS interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Deps are the clients a Service uses.
type Deps struct {
	Store *store.Store
	SQS   SQS
	// Resolver looks up endpoint host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Logger may be nil for slog.Default().
	Logger *slog.Logger
	// Now may be nil for time.Now.
	Now func() time.Time
}

// Service manages endpoints and their deliveries.
type Service struct {
	store  *store.Store
	sqs    SQS
	cfg    Config
	policy AddressPolicy
	client *http.Client
	logger *slog.Logger
	now    func() time.Time
}

// NewService returns a service. It returns an error for an invalid
// configuration.
func NewService(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.SQS == nil {
		return nil, fmt.Errorf("new webhooks service: the store and the SQS client are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	policy := AddressPolicy{AllowInsecureLoopback: cfg.AllowInsecureLoopback, Resolver: deps.Resolver}
	return &Service{
		store:  deps.Store,
		sqs:    deps.SQS,
		cfg:    cfg,
		policy: policy,
		client: newHTTPClient(policy, cfg.Timeout),
		logger: deps.Logger,
		now:    deps.Now,
	}, nil
}

// newHTTPClient returns the client that posts deliveries. It uses no proxy
// (a proxy would connect to addresses the policy never checked), dials
// through the policy, opens a new connection for every request so each
// attempt resolves and checks the host again, and follows no redirect.
func newHTTPClient(policy AddressPolicy, timeout time.Duration) *http.Client {
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            policy.DialContext,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// requireManage returns a Forbidden error unless the caller may change the
// workspace's endpoints or read their secrets. action names the operation
// in the message.
func requireManage(caller *authn.Caller, action string) error {
	if caller.CanManage() {
		return nil
	}
	if caller.Kind != authn.KindSession {
		return &apperr.Error{Code: apperr.Forbidden, Reason: "session_required",
			Message: fmt.Sprintf("API keys cannot %s; log in and use a session token.", action)}
	}
	role := caller.Role
	if role == "" {
		role = "none"
	}
	return &apperr.Error{Code: apperr.Forbidden, Reason: "insufficient_role",
		Message: fmt.Sprintf("Only owners and admins can %s for organization %s; your role is %s.", action, caller.WorkspaceID, role),
		Extra:   map[string]any{"role": caller.Role}}
}

// workspaceOf returns the caller's workspace id. An id that is neither a
// user nor an organization id is a wiring bug.
func workspaceOf(caller *authn.Caller) (string, error) {
	if store.WorkspacePK(caller.WorkspaceID) == "" {
		return "", fmt.Errorf("webhooks: caller workspace %q is not a user or organization id", caller.WorkspaceID)
	}
	return caller.WorkspaceID, nil
}
