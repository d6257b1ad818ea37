// Command local runs SignSecure on one machine without AWS: it starts the
// emulators (DynamoDB Local, fauxqs for SQS and S3, aws-ses-v2-local for
// SES), creates the table, queues and bucket from template.yaml, and serves
// every route of the route table on 127.0.0.1 through the same handlers the
// Lambda functions use.
//
// Usage:
//
//	go run ./infra/local run              start everything; Ctrl-C stops it
//	go run ./infra/local exec -- CMD ...  start the emulators (in memory), run CMD, stop them
//	go run ./infra/local emulators        start only the emulators (in memory) until Ctrl-C
//	go run ./infra/local invoke FUNCTION  run an asynchronous function once with its sample event
//
// exec passes the emulators' addresses to CMD in SIGNSECURE_DYNAMODB_ENDPOINT,
// SIGNSECURE_AWS_ENDPOINT and SIGNSECURE_SES_ENDPOINT, and exits with CMD's
// exit code; `make test` runs `go test` this way.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/creditalerts"
	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	slog.SetDefault(logger)

	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	code := 0
	switch os.Args[1] {
	case "run":
		err = run(ctx, logger, os.Args[2:])
	case "exec":
		code, err = execCommand(ctx, logger, os.Args[2:])
	case "emulators":
		err = emulatorsOnly(ctx, logger)
	case "invoke":
		err = invoke(ctx, logger, os.Args[2:])
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		logger.Error("local runner failed", "error", err.Error())
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  local run [-addr 127.0.0.1:3000] [-data .local]   run the whole product until Ctrl-C
  local exec -- CMD [ARGS...]                       run CMD with the emulators started
  local emulators                                   run only the emulators until Ctrl-C
  local invoke [-data .local] FUNCTION              run credit-alerts, event-dispatcher, email-sender or webhook-sender once with its sample event
`)
}

// root returns the repository root: the folder of go.mod.
func root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return localstack.FindModuleRoot(wd)
}

// stack is the product on the local emulators: the app over the
// provisioned table, queues and bucket, with its workers.
type stack struct {
	emu       *localstack.Emulators
	clients   *localstack.Clients
	resources *localstack.Resources
	cfg       app.Config
	app       *app.App
	workers   *app.Workers
	data      string
}

// startStack starts (or reuses) the emulators with DynamoDB data kept in
// dataDir, provisions the resources of template.yaml and builds the app.
// addr is where the API is served, which the signing links point to.
// defaultPrefix starts the resource names of make run.
const defaultPrefix = "signsecure-local-"

// stackOptions are the local settings that differ from production.
type stackOptions struct {
	// allowLoopbackWebhooks lets webhook endpoints be plain http on
	// 127.0.0.1, for receivers a developer runs on the same machine.
	allowLoopbackWebhooks bool
	// webhookRetryDelays replaces the production attempt schedule, so a
	// developer can watch three attempts within a minute.
	webhookRetryDelays []time.Duration
	// prefix starts the names of the table, queues and bucket, so several
	// runners can share one set of emulators without consuming each
	// other's messages.
	prefix string
}

func startStack(ctx context.Context, logger *slog.Logger, dataDir, addr string, opts stackOptions) (*stack, error) {
	repo, err := root()
	if err != nil {
		return nil, err
	}
	data := dataDir
	if !filepath.IsAbs(data) {
		data = filepath.Join(repo, data)
	}

	emu, err := localstack.Start(ctx, localstack.Options{
		Dir:             filepath.Join(repo, "infra", "local"),
		LogDir:          filepath.Join(data, "logs"),
		DynamoDBDataDir: filepath.Join(data, "dynamodb"),
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	st := &stack{emu: emu, data: data, clients: localstack.NewClients(emu.Endpoints())}
	if err := st.build(ctx, logger, repo, addr, opts); err != nil {
		st.stop(logger)
		return nil, err
	}
	return st, nil
}

func (st *stack) build(ctx context.Context, logger *slog.Logger, repo, addr string, opts stackOptions) error {
	tmpl, err := localstack.OpenTemplate(filepath.Join(repo, "template.yaml"))
	if err != nil {
		return err
	}
	if st.resources, err = localstack.Provision(ctx, st.clients, tmpl, opts.prefix); err != nil {
		return err
	}

	cursorKey, err := localSecret(filepath.Join(st.data, "cursor-signing.key"))
	if err != nil {
		return err
	}
	signingKey, err := localSecret(filepath.Join(st.data, "signing-token.key"))
	if err != nil {
		return err
	}
	cfg := app.DefaultConfig(st.resources.Tables["Table"], st.resources.Buckets["DocumentsBucket"], cursorKey, signingKey)
	cfg.Envelopes.SigningBaseURL = "http://" + addr + "/v1/signing"
	cfg.Webhooks.QueueURL = st.resources.Queues["WebhookDeliveriesQueue"].URL
	cfg.Webhooks.AllowInsecureLoopback = opts.allowLoopbackWebhooks
	if len(opts.webhookRetryDelays) > 0 {
		cfg.Webhooks.RetryDelays = opts.webhookRetryDelays
	}
	if raw := os.Getenv("SESSION_TTL"); raw != "" {
		ttl, err := time.ParseDuration(raw)
		if err != nil || ttl < time.Minute {
			return fmt.Errorf("SESSION_TTL=%q must be a Go duration of at least 1m, such as 168h", raw)
		}
		cfg.Accounts.SessionTTL = ttl
	}
	st.cfg = cfg

	if st.app, err = app.New(cfg, app.Deps{DynamoDB: st.clients.DynamoDB, S3: st.clients.S3, SQS: st.clients.SQS, Logger: logger}); err != nil {
		return err
	}
	st.workers, err = st.app.NewWorkers(cfg, app.WorkerDeps{
		SQS:            st.clients.SQS,
		SES:            st.clients.SES,
		EmailsQueueURL: st.resources.Queues["EmailsQueue"].URL,
		Email:          email.Config{From: "SignSecure <no-reply@signsecure.example>", AppURL: "http://" + addr},
	})
	return err
}

func (st *stack) stop(logger *slog.Logger) {
	if err := st.emu.Stop(); err != nil {
		logger.Error("stop emulators", "error", err.Error())
	}
}

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "address the API listens on; keep it on loopback")
	dataDir := fs.String("data", ".local", "folder for DynamoDB data, emulator logs and local secrets, kept between runs")
	alertsEvery := fs.Duration("alerts-every", time.Minute, "how often the credit alerts schedule fires; 0 turns it off")
	loopback := fs.Bool("allow-loopback-webhooks", true, "accept plain http webhook endpoints on 127.0.0.1 (local development only)")
	retries := fs.String("webhook-retry-delays", "10s,30s", "waits before the second and third webhook attempt (production: 60s,600s)")
	prefix := fs.String("prefix", defaultPrefix, "start of the table, queue and bucket names; give each runner that shares the emulators its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	delays, err := parseDelays(*retries)
	if err != nil {
		return err
	}

	st, err := startStack(ctx, logger, *dataDir, *addr, stackOptions{allowLoopbackWebhooks: *loopback, webhookRetryDelays: delays, prefix: *prefix})
	if err != nil {
		return err
	}
	defer st.stop(logger)

	h, err := st.app.Handler(st.app.Routes(), nil)
	if err != nil {
		return err
	}
	if err := startEventSources(ctx, logger, st.clients, st.resources, st.workers); err != nil {
		return err
	}
	if *alertsEvery > 0 {
		go fireSchedule(ctx, logger, st.app.NewCreditAlerts(os.Stdout), *alertsEvery)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	ses := st.emu.Endpoints().SES
	logger.Info("SignSecure is running", "api", "http://"+ln.Addr().String(), "routes", len(st.app.Routes()),
		"table", st.cfg.TableName, "sent_mail", ses, "data", st.data)
	fmt.Fprintf(os.Stderr, "\nSignSecure API:  http://%s (routes under /v1)\nSent mail (SES): %s (JSON at %s/store)\nData and logs:   %s\nPress Ctrl-C to stop.\n\n", ln.Addr(), ses, ses, st.data)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve API: %w", err)
	}
	logger.Info("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// fireSchedule invokes the credit alerts handler every interval, as the
// EventBridge schedule does on AWS.
func fireSchedule(ctx context.Context, logger *slog.Logger, h *creditalerts.Handler, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			ev := events.EventBridgeEvent{Version: "0", ID: ids.New("sched"), DetailType: "Scheduled Event", Source: "aws.events",
				AccountID: "000000000000", Time: now.UTC(), Region: "us-east-1", Detail: []byte("{}")}
			if _, err := h.Handle(ctx, ev); err != nil && ctx.Err() == nil {
				logger.Error("credit alerts run failed", "error", err.Error())
			}
		}
	}
}

// invokeSamples maps each asynchronous function to its sample event under
// infra/events, as `sam local invoke -e` uses them.
var invokeSamples = map[string]string{
	"credit-alerts":    "credit-alerts-schedule.json",
	"event-dispatcher": "event-dispatcher.json",
	"email-sender":     "email-sender.json",
	"webhook-sender":   "webhook-sender.json",
}

// invoke runs one asynchronous function once with its sample event against
// the data of make run, and prints its result.
func invoke(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	dataDir := fs.String("data", ".local", "the data folder of make run")
	prefix := fs.String("prefix", defaultPrefix, "the resource name prefix of the make run to act on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	name := fs.Arg(0)
	sample, ok := invokeSamples[name]
	if !ok {
		return fmt.Errorf("invoke: unknown function %q; choose one of credit-alerts, event-dispatcher, email-sender, webhook-sender", name)
	}
	repo, err := root()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(repo, "infra", "events", sample))
	if err != nil {
		return err
	}

	st, err := startStack(ctx, logger, *dataDir, "127.0.0.1:3000", stackOptions{allowLoopbackWebhooks: true, prefix: *prefix})
	if err != nil {
		return err
	}
	defer st.stop(logger)

	var result any
	switch name {
	case "credit-alerts":
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode %s: %w", sample, err)
		}
		result, err = st.app.NewCreditAlerts(os.Stdout).Handle(ctx, ev)
	case "event-dispatcher":
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode %s: %w", sample, err)
		}
		result, err = st.workers.Dispatcher.Handle(ctx, ev)
	case "email-sender":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode %s: %w", sample, err)
		}
		result, err = st.workers.Emails.Handle(ctx, ev)
	case "webhook-sender":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decode %s: %w", sample, err)
		}
		result, err = st.workers.Webhooks.Handle(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("invoke %s: %w", name, err)
	}
	out, _ := json.MarshalIndent(result, "", "  ")
	fmt.Printf("%s\n", out)
	return nil
}

func execCommand(ctx context.Context, logger *slog.Logger, args []string) (int, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return 2, errors.New("exec needs a command after --")
	}
	repo, err := root()
	if err != nil {
		return 1, err
	}
	emu, err := localstack.Start(ctx, localstack.Options{
		Dir:    filepath.Join(repo, "infra", "local"),
		LogDir: filepath.Join(repo, ".local", "test-logs"),
		Logger: logger,
	})
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := emu.Stop(); err != nil {
			logger.Error("stop emulators", "error", err.Error())
		}
	}()

	ep := emu.Endpoints()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		localstack.EnvDynamoDBEndpoint+"="+ep.DynamoDB,
		localstack.EnvAWSEndpoint+"="+ep.SQS,
		localstack.EnvSESEndpoint+"="+ep.SES,
	)
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("run %s: %w", args[0], err)
	}
	return 0, nil
}

func emulatorsOnly(ctx context.Context, logger *slog.Logger) error {
	repo, err := root()
	if err != nil {
		return err
	}
	emu, err := localstack.Start(ctx, localstack.Options{
		Dir:    filepath.Join(repo, "infra", "local"),
		LogDir: filepath.Join(repo, ".local", "test-logs"),
		Logger: logger,
	})
	if err != nil {
		return err
	}
	ep := emu.Endpoints()
	fmt.Fprintf(os.Stderr, "Emulators running. For go test in another shell:\n  export %s=%s %s=%s %s=%s\nPress Ctrl-C to stop.\n",
		localstack.EnvDynamoDBEndpoint, ep.DynamoDB, localstack.EnvAWSEndpoint, ep.SQS, localstack.EnvSESEndpoint, ep.SES)
	<-ctx.Done()
	return emu.Stop()
}

// startEventSources runs what the Lambda event source mappings do on AWS:
// the table's stream into the dispatcher, and each work queue into its
// consumer. They stop when ctx is cancelled.
func startEventSources(ctx context.Context, logger *slog.Logger, clients *localstack.Clients, res *localstack.Resources, w *app.Workers) error {
	streamARN, err := localrun.StreamARN(ctx, clients.DynamoDB, res.Tables["Table"])
	if err != nil {
		return err
	}
	stream := localrun.NewStreamPoller(clients.DynamoDBStreams, streamARN, w.Dispatcher.Handle, localrun.StreamOptions{Logger: logger})
	emails := localrun.NewQueuePoller(clients.SQS, res.Queues["EmailsQueue"].URL, w.Emails.Handle, localrun.QueueOptions{Logger: logger})
	hooks := localrun.NewQueuePoller(clients.SQS, res.Queues["WebhookDeliveriesQueue"].URL, w.Webhooks.Handle, localrun.QueueOptions{Logger: logger})

	for name, run := range map[string]func(context.Context) error{"stream": stream.Run, "emails queue": emails.Run, "webhook deliveries queue": hooks.Run} {
		go func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				logger.Error("event source stopped", "source", name, "error", err.Error())
			}
		}()
	}
	select {
	case <-stream.Ready():
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		logger.Warn("stream poller not ready after 10s; events written now may be missed")
	}
	return nil
}

// parseDelays reads a comma-separated list of Go durations.
func parseDelays(list string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(list, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("-webhook-retry-delays %q: %w", list, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// localSecret reads a base64 secret from path, making a new 32-byte one
// the first time, so cursors stay valid across runs of one checkout.
func localSecret(path string) ([]byte, error) {
	if raw, err := os.ReadFile(path); err == nil {
		key, err := base64.StdEncoding.DecodeString(string(raw))
		if err == nil && len(key) >= 32 {
			return key, nil
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("write local secret %s: %w", path, err)
	}
	return key, nil
}
