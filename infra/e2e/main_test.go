// Package e2e drives SignSecure only through its HTTP API, as it runs
// under `make run`: it starts the local runner on a free loopback port
// with a fresh data folder, and checks what users, emails and webhook
// receivers see. Every API response is validated against the OpenAPI
// document.
//
// `make e2e` runs it; `make test` runs it with every other package. Set
// SIGNSECURE_E2E_RUNNER to a built runner binary to skip building one.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack"
)

// stack is a running local runner.
type stack struct {
	api string
	ses string
}

var shared *stack

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "^$" {
		// Only benchmarks or nothing selected: the stack is not needed.
		os.Exit(m.Run())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	repo, err := localstack.FindModuleRoot(".")
	if err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "signsecure-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)

	runner := os.Getenv("SIGNSECURE_E2E_RUNNER")
	if runner == "" {
		runner = filepath.Join(tmp, "local")
		build := exec.Command("go", "build", "-o", runner, "./infra/local")
		build.Dir = repo
		if out, err := build.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("build the local runner: %v\n%s", err, out)
		}
	}

	addr, err := freeLoopbackAddr()
	if err != nil {
		return 1, err
	}
	logPath := filepath.Join(tmp, "runner.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return 1, err
	}
	defer logFile.Close()

	prefix := "e2e" + strings.ToLower(ids.New("r"))[len("r_")+16:] + "-"
	cmd := exec.Command(runner, "run", "-addr", addr, "-data", filepath.Join(tmp, "data"), "-prefix", prefix,
		"-alerts-every", "0", "-allow-loopback-webhooks", "-webhook-retry-delays", "2s,2s")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("start the local runner: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()

	shared = &stack{api: "http://" + addr, ses: localstack.EndpointsFromEnv().SES}
	if err := waitReady(shared.api+"/v1/openapi.json", 90*time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		return 1, fmt.Errorf("%w\nrunner log:\n%s", err, tail(log, 4000))
	}

	code := m.Run()
	if code != 0 {
		log, _ := os.ReadFile(logPath)
		fmt.Fprintf(os.Stderr, "runner log (last lines):\n%s\n", tail(log, 6000))
	}
	return code, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the local runner did not answer %s within %s", url, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
