package localstack_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/localstack"
)

// These tests start their own emulators on free ports, so they do not
// touch emulators that other tests or `make run` use on the default ports.

func TestEmulatorsStartReuseStop(t *testing.T) {
	opts := freePortOptions(t)
	ctx := t.Context()

	first, err := localstack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { first.Stop() })
	endpoints := first.Endpoints()
	if want := fmt.Sprintf("http://127.0.0.1:%d", opts.DynamoDBPort); endpoints.DynamoDB != want {
		t.Errorf("DynamoDB endpoint = %s, want %s", endpoints.DynamoDB, want)
	}
	if endpoints.SQS != endpoints.S3 {
		t.Errorf("SQS endpoint %s and S3 endpoint %s differ, want both served by fauxqs", endpoints.SQS, endpoints.S3)
	}
	if err := endpoints.Ping(ctx); err != nil {
		t.Fatalf("Ping after Start: %v", err)
	}
	clients := localstack.NewClients(endpoints)
	if _, err := clients.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Errorf("DynamoDB ListTables: %v", err)
	}
	if _, err := clients.SQS.ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("SQS ListQueues: %v", err)
	}
	for _, name := range []string{"dynamodb.log", "fauxqs.log", "ses.log"} {
		info, err := os.Stat(filepath.Join(opts.LogDir, name))
		if err != nil {
			t.Errorf("log file: %v", err)
		} else if info.Size() == 0 {
			t.Errorf("log file %s is empty", name)
		}
	}

	// A second Start on the same ports reuses the running emulators, and
	// its Stop leaves them running.
	reuseOpts := opts
	reuseOpts.LogDir = t.TempDir()
	second, err := localstack.Start(ctx, reuseOpts)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if logs, _ := os.ReadDir(reuseOpts.LogDir); len(logs) != 0 {
		t.Errorf("second Start wrote %d log files, want none because it started nothing", len(logs))
	}
	if err := second.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := endpoints.Ping(ctx); err != nil {
		t.Errorf("Ping after the reusing Stop: %v, want the emulators still running", err)
	}

	if err := first.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for _, port := range []int{opts.DynamoDBPort, opts.AWSPort, opts.SESPort} {
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still accepts connections after Stop", port)
		}
	}
	if err := first.Stop(); err != nil {
		t.Errorf("second call of Stop: %v, want nil", err)
	}
}

func TestEmulatorsKeepDynamoDBData(t *testing.T) {
	opts := freePortOptions(t)
	root, err := localstack.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(root, "infra", "local")
	// A relative data folder must resolve against the working directory.
	workDir := t.TempDir()
	t.Chdir(workDir)
	opts.DynamoDBDataDir = "dynamodb"
	ctx := t.Context()

	first, err := localstack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { first.Stop() })
	_, err = localstack.NewClients(first.Endpoints()).DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("kept"),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(workDir, "dynamodb", "shared-local-instance.db")); err != nil {
		t.Errorf("DynamoDB data file: %v", err)
	}

	second, err := localstack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	t.Cleanup(func() { second.Stop() })
	_, err = localstack.NewClients(second.Endpoints()).DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("kept")})
	if err != nil {
		t.Errorf("DescribeTable after restart: %v, want the table kept in %s", err, opts.DynamoDBDataDir)
	}
}

func TestStartReportsMissingPrerequisites(t *testing.T) {
	java, javaErr := exec.LookPath("java")
	tests := []struct {
		name    string
		path    func(t *testing.T) string // PATH for the test; "" keeps it
		dir     func(t *testing.T) string // Options.Dir; "" keeps the default
		logDir  bool
		wantErr string
	}{
		{
			name:    "no log folder",
			wantErr: "Options.LogDir is empty",
		},
		{
			name:    "no java",
			path:    func(t *testing.T) string { return t.TempDir() },
			logDir:  true,
			wantErr: "java not found on PATH",
		},
		{
			name: "no node",
			path: func(t *testing.T) string {
				if javaErr != nil {
					t.Skip("java is not installed")
				}
				dir := t.TempDir()
				if err := os.Symlink(java, filepath.Join(dir, "java")); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			logDir:  true,
			wantErr: "node not found on PATH",
		},
		{
			name:    "no node_modules",
			dir:     func(t *testing.T) string { return t.TempDir() },
			logDir:  true,
			wantErr: "run `make install`",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := freePortOptions(t)
			if !tt.logDir {
				opts.LogDir = ""
			}
			if tt.path != nil {
				t.Setenv("PATH", tt.path(t))
			}
			if tt.dir != nil {
				opts.Dir = tt.dir(t)
			}

			e, err := localstack.Start(t.Context(), opts)
			if err == nil {
				e.Stop()
				t.Fatalf("Start succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.wantErr)
			}
			// Whatever Start launched before the error must be stopped.
			for _, port := range []int{opts.DynamoDBPort, opts.AWSPort, opts.SESPort} {
				if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
					conn.Close()
					t.Errorf("port %d accepts connections after the failed Start", port)
				}
			}
		})
	}
}

// freePortOptions returns Options with three ports that were free a moment
// ago, a log folder and the test's log output.
func freePortOptions(t *testing.T) localstack.Options {
	t.Helper()
	var ports []int
	var listeners []net.Listener
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range listeners {
		l.Close()
	}

	return localstack.Options{
		LogDir:       t.TempDir(),
		DynamoDBPort: ports[0],
		AWSPort:      ports[1],
		SESPort:      ports[2],
		Logger:       slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
}
