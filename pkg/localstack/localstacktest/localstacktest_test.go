package localstacktest_test

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/localstack"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// fatalRecorder wraps a testing.TB and records the Fatalf call of New
// instead of failing the test.
type fatalRecorder struct {
	testing.TB
	message string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.message = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNewFailsWhenEmulatorsAreDown(t *testing.T) {
	closed := closedPortURL(t)
	t.Setenv(localstack.EnvDynamoDBEndpoint, closed)
	t.Setenv(localstack.EnvAWSEndpoint, closed)
	t.Setenv(localstack.EnvSESEndpoint, closed)

	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		localstacktest.New(rec)
	}()
	<-done

	if rec.message == "" {
		t.Fatal("New did not fail the test with the emulators down")
	}
	for _, want := range []string{"make emulators", "make test", closed} {
		if !strings.Contains(rec.message, want) {
			t.Errorf("failure message %q does not contain %q", rec.message, want)
		}
	}
}

func TestNewProvisionsFreshResources(t *testing.T) {
	var first, second *localstacktest.Env
	t.Run("provision", func(t *testing.T) {
		first = localstacktest.New(t)
		second = localstacktest.New(t)

		if first.Prefix == second.Prefix {
			t.Errorf("two calls of New returned the same prefix %q", first.Prefix)
		}
		for _, env := range []*localstacktest.Env{first, second} {
			if !strings.HasPrefix(env.TableName, env.Prefix) {
				t.Errorf("table name %q does not start with prefix %q", env.TableName, env.Prefix)
			}
			if !strings.HasPrefix(env.BucketName, env.Prefix) {
				t.Errorf("bucket name %q does not start with prefix %q", env.BucketName, env.Prefix)
			}
			for _, id := range []string{"WebhookDeliveriesQueue", "WebhookDeliveriesDeadLetterQueue", "EmailsQueue", "EmailsDeadLetterQueue"} {
				if env.Queues[id].URL == "" {
					t.Errorf("prefix %s: queue %s has no URL", env.Prefix, id)
				}
			}
			_, err := env.Clients.DynamoDB.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(env.TableName)})
			if err != nil {
				t.Errorf("DescribeTable(%s): %v", env.TableName, err)
			}
		}
	})

	// The subtest's cleanup has deleted both sets of resources.
	if first == nil || second == nil {
		t.Fatal("provision subtest did not finish")
	}
	for _, env := range []*localstacktest.Env{first, second} {
		_, err := env.Clients.DynamoDB.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(env.TableName)})
		var notFound *ddbtypes.ResourceNotFoundException
		if !errors.As(err, &notFound) {
			t.Errorf("DescribeTable(%s) after cleanup: err = %v, want ResourceNotFoundException", env.TableName, err)
		}
	}
}

// closedPortURL returns the URL of a loopback port that nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	return url
}
