// Package apidoc holds SignSecure's API reference, an OpenAPI 3.1 document
// written by hand in openapi.yaml, and serves it as JSON at
// GET /v1/openapi.json.
//
// The document describes every route of the route table with its
// parameters, request body, and the responses of each status the handler
// returns, problem+json errors included, and, under webhooks, the body of
// each webhook delivery. Validator checks real responses and webhook
// bodies against it, so the tests of this package and the end-to-end
// suite hold the document to what the API sends.
package apidoc

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var source []byte

// documentJSON converts the embedded YAML once.
var documentJSON = sync.OnceValues(func() ([]byte, error) {
	return yamlToJSON(source)
})

// Document returns the OpenAPI document as JSON, a new copy on each call.
// It panics if the embedded YAML cannot be converted, which the
// package's tests rule out for every build.
func Document() []byte {
	doc, err := documentJSON()
	if err != nil {
		panic("apidoc: " + err.Error())
	}
	return bytes.Clone(doc)
}

// Handler returns the handler of GET /v1/openapi.json, which serves
// Document.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		doc := Document()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(doc)
	})
}

// yamlToJSON converts a YAML document whose mapping keys are all strings
// to compact JSON. Anchors, aliases and merge keys are resolved.
func yamlToJSON(in []byte) ([]byte, error) {
	var tree any
	if err := yaml.Unmarshal(in, &tree); err != nil {
		return nil, fmt.Errorf("decode openapi.yaml: %w", err)
	}
	if err := checkStringKeys(tree, "$"); err != nil {
		return nil, fmt.Errorf("decode openapi.yaml: %w", err)
	}
	out, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("encode openapi.yaml as JSON: %w", err)
	}
	return append(out, '\n'), nil
}

// checkStringKeys returns an error naming the first mapping with a key that
// is not a string, such as an unquoted status code, which JSON cannot hold.
func checkStringKeys(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if err := checkStringKeys(child, path+"."+k); err != nil {
				return err
			}
		}
	case map[any]any:
		for k := range v {
			if _, ok := k.(string); !ok {
				return fmt.Errorf("mapping %s has the key %v of type %T; quote it", path, k, k)
			}
		}
		return fmt.Errorf("mapping %s has keys that are not all strings; quote them", path)
	case []any:
		for i, child := range v {
			if err := checkStringKeys(child, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
