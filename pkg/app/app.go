// Package app wires SignSecure together: it builds the services from a
// configuration and AWS clients, and holds the route table, which is the
// single source of truth for the API's routes and their Lambda functions.
package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/accounts"
	"github.com/signsecure/signsecure/pkg/apidoc"
	"github.com/signsecure/signsecure/pkg/apikeys"
	"github.com/signsecure/signsecure/pkg/billing"
	"github.com/signsecure/signsecure/pkg/envelopes"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/idempotency"
	"github.com/signsecure/signsecure/pkg/notify"
	"github.com/signsecure/signsecure/pkg/orgs"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/webhooks"
)

// Deps are the clients and hooks the app is built from.
type Deps struct {
	// DynamoDB is the DynamoDB client.
	DynamoDB store.DynamoDB
	// S3 stores envelope documents and invoices.
	S3 *s3.Client
	// SQS sends webhook deliveries that a user asks for (tests and
	// redeliveries).
	SQS *sqs.Client
	// Resolver looks up webhook host names; nil means the system resolver.
	Resolver webhooks.Resolver
	// HTTPClient calls the payment provider; nil means a client with a
	// 15-second timeout.
	HTTPClient *http.Client
	// Logger receives the request logs.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// App holds the services of one SignSecure deployment.
type App struct {
	Store     *store.Store
	Accounts  *accounts.Service
	Orgs      *orgs.Service
	APIKeys   *apikeys.Service
	Billing   *billing.Service
	Envelopes *envelopes.Service
	Webhooks  *webhooks.Service
	Logger    *slog.Logger
	now       func() time.Time
}

// New builds the services.
func New(cfg Config, deps Deps) (*App, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	st, err := store.New(deps.DynamoDB, cfg.TableName, cfg.CursorKey)
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	provider, err := billing.NewProvider(cfg.Billing, deps.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	bill, err := billing.NewService(cfg.Billing, billing.Deps{
		Store: st, Provider: provider, Documents: deps.S3, Bucket: cfg.DocumentsBucket, Now: deps.Now, Logger: deps.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}

	// Every new workspace, personal or organization, gets its wallet in
	// the transaction that creates it.
	acc, err := accounts.NewService(st, cfg.Accounts, deps.Now, bill.NewWalletItems)
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	env, err := envelopes.NewService(cfg.Envelopes, envelopes.Deps{
		Store: st, Wallet: bill, Objects: deps.S3, Bucket: cfg.DocumentsBucket, Now: deps.Now, Logger: deps.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	hooks, err := webhooks.NewService(cfg.Webhooks, webhooks.Deps{
		Store: st, SQS: deps.SQS, Resolver: deps.Resolver, Logger: deps.Logger, Now: deps.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	return &App{
		Webhooks:  hooks,
		now:       deps.Now,
		Envelopes: env,
		Store:     st,
		Accounts:  acc,
		Orgs:      orgs.NewService(st, deps.Now, bill.NewWalletItems, orgs.WithInvitationCodeKey(cfg.Envelopes.SigningKey)),
		Billing:   bill,
		APIKeys:   apikeys.NewService(st, deps.Now),
		Logger:    deps.Logger,
	}, nil
}

// Routes returns the route table. Each route becomes one Lambda function
// named after the route; template.yaml is checked against this table.
func (a *App) Routes() []httpapi.Route {
	acc := accounts.Handlers{Service: a.Accounts}
	auth := authenticator{accounts: acc, roles: a.Orgs, keys: a.APIKeys, idem: idempotency.New(a.Store, a.now)}
	session, sessionOrKey := auth.session, auth.any

	routes := []httpapi.Route{
		{Name: "auth-signup", Method: http.MethodPost, Path: "/v1/auth/signup", Handler: httpapi.HandlerFunc(acc.Signup)},
		{Name: "auth-login", Method: http.MethodPost, Path: "/v1/auth/login", Handler: httpapi.HandlerFunc(acc.Login)},
		{Name: "auth-logout", Method: http.MethodPost, Path: "/v1/auth/logout", Handler: session(httpapi.HandlerFunc(acc.Logout))},
		{Name: "me-get", Method: http.MethodGet, Path: "/v1/me", Handler: session(httpapi.HandlerFunc(acc.GetMe))},
		{Name: "me-update", Method: http.MethodPatch, Path: "/v1/me", Handler: session(httpapi.HandlerFunc(acc.UpdateMe))},
		{Name: "me-password", Method: http.MethodPost, Path: "/v1/me/password", Handler: session(httpapi.HandlerFunc(acc.ChangePassword))},
		{Name: "me-sessions-list", Method: http.MethodGet, Path: "/v1/me/sessions", Handler: session(httpapi.HandlerFunc(acc.ListSessions))},
		{Name: "me-sessions-revoke", Method: http.MethodDelete, Path: "/v1/me/sessions/{id}", Handler: session(httpapi.HandlerFunc(acc.RevokeSession))},
		{Name: "workspace-get", Method: http.MethodGet, Path: "/v1/workspace", Handler: sessionOrKey(httpapi.HandlerFunc(getWorkspace))},
		{Name: "openapi-get", Method: http.MethodGet, Path: "/v1/openapi.json", Handler: apidoc.Handler()},
	}
	routes = append(routes, orgs.Routes(orgs.Handlers{Service: a.Orgs}, session, sessionOrKey)...)
	routes = append(routes, apikeys.Routes(apikeys.Handlers{Service: a.APIKeys}, session, sessionOrKey)...)
	routes = append(routes, billing.Routes(billing.Handlers{Service: a.Billing}, session, sessionOrKey)...)
	routes = append(routes, envelopes.Routes(envelopes.Handlers{Service: a.Envelopes}, session, sessionOrKey)...)
	routes = append(routes, webhooks.Routes(webhooks.Handlers{Service: a.Webhooks}, session, sessionOrKey)...)
	routes = append(routes, notify.Routes(notify.Handlers{Service: notify.NewService(a.Store, a.now)}, session, sessionOrKey)...)
	return auth.markAuth(routes)
}

// Handler returns the routes behind the shared middleware.
func (a *App) Handler(routes []httpapi.Route, upstream httpapi.RequestIDFunc) (http.Handler, error) {
	mux, err := httpapi.NewMux(routes)
	if err != nil {
		return nil, err
	}
	return httpapi.Wrap(mux, a.Logger, upstream), nil
}

// Route returns the route with the name.
func (a *App) Route(name string) (httpapi.Route, bool) {
	for _, rt := range a.Routes() {
		if rt.Name == name {
			return rt, true
		}
	}
	return httpapi.Route{}, false
}
