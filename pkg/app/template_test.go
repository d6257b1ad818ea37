package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/cloudformation/serverless"

	"github.com/signsecure/signsecure/pkg/localstack"
)

// repoRoot returns the folder of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := localstack.FindModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func templateFunctions(t *testing.T) map[string]*serverless.Function {
	t.Helper()
	tmpl, err := localstack.OpenTemplate(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	return tmpl.GetAllServerlessFunctionResources()
}

func TestTemplateMatchesRouteTable(t *testing.T) {
	routes, err := RouteTable()
	if err != nil {
		t.Fatal(err)
	}
	functions := templateFunctions(t)

	// Every route has its function, with exactly one HttpApi event of the
	// route's method and path.
	for _, rt := range routes {
		id := LogicalID(rt.Name)
		fn, ok := functions[id]
		if !ok {
			t.Errorf("route %s (%s): template.yaml has no function %s; run make routes", rt.Name, rt.Pattern(), id)
			continue
		}
		if fn.CodeUri == nil || fn.CodeUri.String == nil || strings.TrimSuffix(*fn.CodeUri.String, "/") != "functions/"+rt.Name {
			t.Errorf("%s: CodeUri is not functions/%s/", id, rt.Name)
		}
		var apiEvents []*serverless.Function_HttpApiEvent
		for _, ev := range fn.Events {
			if ev.Type == "HttpApi" && ev.Properties != nil && ev.Properties.HttpApiEvent != nil {
				apiEvents = append(apiEvents, ev.Properties.HttpApiEvent)
			}
		}
		if len(apiEvents) != 1 {
			t.Errorf("%s: %d HttpApi events; want exactly 1", id, len(apiEvents))
			continue
		}
		ev := apiEvents[0]
		if ev.Method == nil || *ev.Method != rt.Method || ev.Path == nil || *ev.Path != rt.Path {
			t.Errorf("%s: HttpApi event %v %v; want %s %s", id, deref(ev.Method), deref(ev.Path), rt.Method, rt.Path)
		}
	}

	// Every function with an HttpApi event serves a route of the table.
	byID := map[string]bool{}
	for _, rt := range routes {
		byID[LogicalID(rt.Name)] = true
	}
	for id, fn := range functions {
		for _, ev := range fn.Events {
			if ev.Type == "HttpApi" && !byID[id] {
				t.Errorf("template function %s has an HttpApi event but no route in the route table", id)
			}
		}
	}
}

func TestFunctionFoldersMatchRouteTable(t *testing.T) {
	routes, err := RouteTable()
	if err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
	for _, rt := range routes {
		path := filepath.Join(root, "functions", rt.Name, "main.go")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("route %s: %v; run make routes", rt.Name, err)
			continue
		}
		if string(got) != FunctionMain(rt) {
			t.Errorf("%s is not what the route table generates; run make routes", path)
		}
	}
}

func TestFunctionsBuildForLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function; skipped with -short")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", t.TempDir()+"/", "./functions/...")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build functions for linux/arm64: %v\n%s", err, out)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestBucketAccessNamesRoutes(t *testing.T) {
	routes, err := RouteTable()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, rt := range routes {
		names[rt.Name] = true
	}
	for name := range bucketAccess {
		if !names[name] {
			t.Errorf("bucketAccess names %q, which is not a route", name)
		}
	}
}
