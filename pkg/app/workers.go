package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/creditalerts"
	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/notify"
	"github.com/signsecure/signsecure/pkg/webhooks"
)

// Workers holds the asynchronous functions: the stream dispatcher and the
// email sender. The local runner and the Lambda mains build them here.
type Workers struct {
	Dispatcher *notify.Dispatcher
	Emails     *email.Sender
	Webhooks   *webhooks.Sender
}

// WorkerDeps are the clients and settings of the workers.
type WorkerDeps struct {
	SQS            *sqs.Client
	SES            *sesv2.Client
	EmailsQueueURL string
	Email          email.Config
}

// NewWorkers builds the dispatcher and the email sender over the app's
// store.
func (a *App) NewWorkers(cfg Config, deps WorkerDeps) (*Workers, error) {
	links, err := email.EnvelopeSigningLinks(cfg.Envelopes.SigningKey, cfg.Envelopes.SigningBaseURL)
	if err != nil {
		return nil, fmt.Errorf("build workers: %w", err)
	}
	sender, err := email.NewSender(a.Store, deps.SES, deps.Email, links, a.Logger, a.now)
	if err != nil {
		return nil, fmt.Errorf("build workers: %w", err)
	}
	dispatcher := notify.NewEventDispatcher(a.Store, deps.SQS, notify.DispatcherConfig{EmailsQueueURL: deps.EmailsQueueURL, InvitationCodeKey: cfg.Envelopes.SigningKey}, a.Logger, a.now, a.fanouts()...)
	return &Workers{Dispatcher: dispatcher, Emails: sender, Webhooks: webhooks.NewSender(a.Webhooks)}, nil
}

// fanouts returns the extra event consumers the dispatcher calls, after
// notifications and emails.
func (a *App) fanouts() []notify.Fanout {
	return []notify.Fanout{webhooks.NewFanout(a.Webhooks)}
}

// StartDispatcher is the whole main of the event dispatcher function,
// which the table's stream invokes.
func StartDispatcher() {
	w := workersFromEnvironment()
	lambda.Start(w.Dispatcher.Handle)
}

// StartWebhookSender is the whole main of the webhook delivery function,
// which the webhook deliveries queue invokes.
func StartWebhookSender() {
	w := workersFromEnvironment()
	lambda.Start(w.Webhooks.Handle)
}

// StartEmailSender is the whole main of the email function, which the
// emails queue invokes.
func StartEmailSender() {
	w := workersFromEnvironment()
	lambda.Start(w.Emails.Handle)
}

func workersFromEnvironment() *Workers {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	fail := func(err error) {
		logger.Error("start function", "error", err.Error())
		os.Exit(1)
	}

	ctx := context.Background()
	a, err := fromEnvironment(ctx, logger)
	if err != nil {
		fail(err)
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		fail(err)
	}
	emailCfg, err := email.ConfigFromEnv()
	if err != nil {
		fail(err)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail(fmt.Errorf("load AWS configuration: %w", err))
	}
	w, err := a.NewWorkers(cfg, WorkerDeps{
		SQS:            sqs.NewFromConfig(awsCfg),
		SES:            sesv2.NewFromConfig(awsCfg),
		EmailsQueueURL: os.Getenv("EMAILS_QUEUE_URL"),
		Email:          emailCfg,
	})
	if err != nil {
		fail(err)
	}
	return w
}

// NewCreditAlerts builds the scheduled credit alert handler; its metrics
// go to out as embedded metric format log lines.
func (a *App) NewCreditAlerts(out io.Writer) *creditalerts.Handler {
	return creditalerts.NewHandler(a.Store, out, a.now, a.Logger)
}

// StartCreditAlerts is the whole main of the credit alerts function, which
// an EventBridge schedule invokes.
func StartCreditAlerts() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	a, err := fromEnvironment(context.Background(), logger)
	if err != nil {
		logger.Error("start function", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(a.NewCreditAlerts(os.Stdout).Handle)
}
