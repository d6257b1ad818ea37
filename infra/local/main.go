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
//
// exec passes the emulators' addresses to CMD in SIGNSECURE_DYNAMODB_ENDPOINT,
// SIGNSECURE_AWS_ENDPOINT and SIGNSECURE_SES_ENDPOINT, and exits with CMD's
// exit code; `make test` runs `go test` this way.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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
	"syscall"
	"time"

	"github.com/signsecure/signsecure/pkg/app"
	"github.com/signsecure/signsecure/pkg/email"
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

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "address the API listens on; keep it on loopback")
	dataDir := fs.String("data", ".local", "folder for DynamoDB data, emulator logs and local secrets, kept between runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	repo, err := root()
	if err != nil {
		return err
	}
	data := *dataDir
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
		return err
	}
	defer func() {
		if err := emu.Stop(); err != nil {
			logger.Error("stop emulators", "error", err.Error())
		}
	}()

	clients := localstack.NewClients(emu.Endpoints())
	tmpl, err := localstack.OpenTemplate(filepath.Join(repo, "template.yaml"))
	if err != nil {
		return err
	}
	res, err := localstack.Provision(ctx, clients, tmpl, "signsecure-local-")
	if err != nil {
		return err
	}

	cursorKey, err := localSecret(filepath.Join(data, "cursor-signing.key"))
	if err != nil {
		return err
	}
	signingKey, err := localSecret(filepath.Join(data, "signing-token.key"))
	if err != nil {
		return err
	}
	cfg := app.DefaultConfig(res.Tables["Table"], res.Buckets["DocumentsBucket"], cursorKey, signingKey)
	cfg.Envelopes.SigningBaseURL = "http://" + *addr + "/v1/signing"
	if raw := os.Getenv("SESSION_TTL"); raw != "" {
		ttl, err := time.ParseDuration(raw)
		if err != nil || ttl < time.Minute {
			return fmt.Errorf("SESSION_TTL=%q must be a Go duration of at least 1m, such as 168h", raw)
		}
		cfg.Accounts.SessionTTL = ttl
	}
	a, err := app.New(cfg, app.Deps{DynamoDB: clients.DynamoDB, S3: clients.S3, Logger: logger})
	if err != nil {
		return err
	}
	h, err := a.Handler(a.Routes(), nil)
	if err != nil {
		return err
	}

	workers, err := a.NewWorkers(cfg, app.WorkerDeps{
		SQS:            clients.SQS,
		SES:            clients.SES,
		EmailsQueueURL: res.Queues["EmailsQueue"].URL,
		Email:          email.Config{From: "SignSecure <no-reply@signsecure.example>", AppURL: "http://" + *addr},
	})
	if err != nil {
		return err
	}
	if err := startEventSources(ctx, logger, clients, res, workers); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	logger.Info("SignSecure is running",
		"api", "http://"+ln.Addr().String(),
		"routes", len(a.Routes()),
		"table", cfg.TableName,
		"sent_mail", emu.Endpoints().SES,
		"data", data)
	fmt.Fprintf(os.Stderr, "\nSignSecure API:  http://%s (routes under /v1)\nSent mail (SES): %s\nData and logs:   %s\nPress Ctrl-C to stop.\n\n", ln.Addr(), emu.Endpoints().SES, data)

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

	for name, run := range map[string]func(context.Context) error{"stream": stream.Run, "emails queue": emails.Run} {
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
