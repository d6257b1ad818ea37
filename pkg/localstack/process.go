package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one emulator: either a child process that Start launched, or
// a server that already responded on the emulator's port (reused).
type process struct {
	name    string
	url     string
	logPath string
	reused  bool

	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's result; read only after done is closed
}

// start launches cmd in its own process group, so that stop can signal it
// and any children it has, with its output appended to p.logPath.
func (p *process) start(cmd *exec.Cmd) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "---- %s: %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(cmd.Args, " "))

	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}

	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return nil
}

// waitReady polls p.url until it responds to HTTP, the process exits, ctx
// ends or timeout passes.
func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()

	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited before it responded on %s (%v); end of %s:\n%s",
				p.url, p.waitErr, p.logPath, logTail(p.logPath))
		default:
		}
		if ping(ctx, p.url) == nil {
			return nil
		}

		select {
		case <-p.done:
			// Reported at the top of the loop.
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for a response on %s; see %s", timeout, p.url, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", p.url, ctx.Err())
		}
	}
}

// stop sends SIGTERM to the process group, and SIGKILL when the process is
// still running after timeout. It reports whether the process was running.
func (p *process) stop(timeout time.Duration, logger *slog.Logger) (bool, error) {
	select {
	case <-p.done:
		return false, nil
	default:
	}

	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("send SIGTERM to process group %d: %w", pgid, err)
	}

	select {
	case <-p.done:
	case <-time.After(timeout):
		logger.Warn("emulator still running after SIGTERM, sending SIGKILL", "emulator", p.name, "pid", pgid, "timeout", timeout)
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return true, fmt.Errorf("send SIGKILL to process group %d: %w", pgid, err)
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			return true, fmt.Errorf("process %d still running 5s after SIGKILL", pgid)
		}
	}

	// The group leader has exited; kill anything it left in its group.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("send SIGKILL to the rest of process group %d: %w", pgid, err)
	}
	return true, nil
}

// logTail returns the last lines of the log file at path, for error
// messages.
func logTail(path string) string {
	const maxBytes = 2048
	const maxLines = 15

	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(cannot read log: %v)", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}

	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
