// Command routegen writes what the route table implies: one
// functions/<name>/main.go per route, and the per-route function resources
// between the "# BEGIN ROUTE FUNCTIONS" and "# END ROUTE FUNCTIONS" lines of
// template.yaml. Run it with `make routes` after changing the route table;
// a test fails while the files and the table disagree.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/signsecure/signsecure/pkg/app"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()

	routes, err := app.RouteTable()
	if err != nil {
		log.Fatalf("routegen: %v", err)
	}

	var section bytes.Buffer
	for _, rt := range routes {
		dir := filepath.Join(*root, "functions", rt.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Fatalf("routegen: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(app.FunctionMain(rt)), 0o644); err != nil {
			log.Fatalf("routegen: %v", err)
		}
		section.WriteString(app.FunctionResource(rt))
	}

	path := filepath.Join(*root, "template.yaml")
	tmpl, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("routegen: %v", err)
	}
	out, err := replaceSection(string(tmpl), section.String())
	if err != nil {
		log.Fatalf("routegen: %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		log.Fatalf("routegen: %v", err)
	}
	fmt.Printf("routegen: %d routes written to functions/ and template.yaml\n", len(routes))
}

func replaceSection(tmpl, section string) (string, error) {
	begin := strings.Index(tmpl, app.RoutesBeginMarker)
	end := strings.Index(tmpl, app.RoutesEndMarker)
	if begin < 0 || end < begin {
		return "", fmt.Errorf("markers %q and %q not found in order", app.RoutesBeginMarker, app.RoutesEndMarker)
	}
	begin += len(app.RoutesBeginMarker)
	lineStart := strings.LastIndex(tmpl[:end], "\n") + 1
	return tmpl[:begin] + "\n" + section + tmpl[lineStart:], nil
}
