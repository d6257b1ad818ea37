// Package localstacktest gives each test its own freshly provisioned set of
// the resources in template.yaml on the local emulators.
//
// The emulators must already run: `make test` starts them, and
// `make emulators` starts them for running `go test` by hand. Their
// addresses come from the environment variables named in package
// localstack, with the defaults 127.0.0.1:8000 (DynamoDB), 127.0.0.1:4566
// (SQS and S3) and 127.0.0.1:8005 (SES).
package localstacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/localstack"
)

// Env is one test's view of the local AWS services.
type Env struct {
	Endpoints localstack.Endpoints
	Clients   *localstack.Clients

	// Prefix starts the name of every resource provisioned for this test.
	Prefix string

	// Resources maps the template's logical ids to the local resources.
	Resources *localstack.Resources

	TableName  string                      // the template's Table
	BucketName string                      // the template's DocumentsBucket
	Queues     map[string]localstack.Queue // logical id to queue, as in Resources
}

// New connects to the emulators, provisions the resources of the module's
// template.yaml under a random name prefix, and deletes them when the test
// ends. It fails the test when an emulator does not respond or provisioning
// fails.
func New(t testing.TB) *Env {
	t.Helper()

	endpoints := localstack.EndpointsFromEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := endpoints.Ping(ctx); err != nil {
		t.Fatalf("localstacktest: local AWS emulators do not respond: %v\n"+
			"start the emulators with `make emulators` or run `make test`", err)
	}

	templatePath, err := templatePath()
	if err != nil {
		t.Fatalf("localstacktest: %v", err)
	}
	tmpl, err := localstack.OpenTemplate(templatePath)
	if err != nil {
		t.Fatalf("localstacktest: %v", err)
	}

	env := &Env{
		Endpoints: endpoints,
		Clients:   localstack.NewClients(endpoints),
		Prefix:    randomPrefix(),
	}
	res, err := localstack.Provision(ctx, env.Clients, tmpl, env.Prefix)
	if res != nil {
		// Registered before the error check, so that a partial provisioning
		// is removed too.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := localstack.DeleteProvisioned(ctx, env.Clients, res); err != nil {
				t.Errorf("localstacktest: delete resources with prefix %s: %v", env.Prefix, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("localstacktest: provision %s: %v", templatePath, err)
	}

	env.Resources = res
	env.TableName = res.Tables["Table"]
	env.BucketName = res.Buckets["DocumentsBucket"]
	env.Queues = res.Queues
	return env
}

// templatePath returns the path of template.yaml at the root of the module
// that contains the working directory, which is the package folder during
// go test.
func templatePath() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root, err := localstack.FindModuleRoot(wd)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, localstack.TemplateFile), nil
}

// randomPrefix returns a prefix such as "t1a2b3c4d-": a letter, eight hex
// digits and a hyphen.
func randomPrefix() string {
	b := make([]byte, 4)
	rand.Read(b) // Never returns an error since Go 1.24.
	return "t" + hex.EncodeToString(b) + "-"
}
