package localstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// TemplateFile is the name of the SAM template at the module root.
const TemplateFile = "template.yaml"

// FindModuleRoot returns the nearest folder at or above dir that contains
// a go.mod file.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for start := dir; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or any folder above it", start)
		}
		dir = parent
	}
}

// OpenTemplate parses the CloudFormation or SAM template at path (YAML, or
// JSON when the name ends in .json) for [Provision].
//
// goformation (v7.14.9) resolves Ref to parameters' defaults, and turns a
// Ref to a resource and every Fn::GetAtt into null. OpenTemplate keeps them
// as strings instead: "Ref:HttpApi" and "Fn::GetAtt:Table.StreamArn". So
// Provision can replace a queue's !GetAtt DeadLetterQueue.Arn with the ARN
// of the local queue, and tests can check which resource a property names.
func OpenTemplate(path string) (*cloudformation.Template, error) {
	tmpl, err := goformation.OpenWithOptions(path, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Fn::GetAtt": getAttReference,
			"Ref":        refReference,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", path, err)
	}
	return tmpl, nil
}

// refPrefix starts the strings that replace a Ref to a resource in a
// template that OpenTemplate parsed: "Ref:" followed by the logical id.
const refPrefix = "Ref:"

// refReference is a goformation intrinsic handler for Ref. It resolves
// parameters and pseudo parameters as goformation does, and turns any other
// name into a reference string.
func refReference(name string, input interface{}, template interface{}) interface{} {
	if v := intrinsics.Ref(name, input, template); v != nil {
		return v
	}
	s, ok := input.(string)
	if !ok || s == "AWS::NoValue" {
		return nil
	}
	return refPrefix + s
}

// getAttPrefix starts the strings that replace Fn::GetAtt in a template
// that OpenTemplate parsed: "Fn::GetAtt:" followed by "LogicalID.Attribute".
const getAttPrefix = "Fn::GetAtt:"

// getAttReference is a goformation intrinsic handler for Fn::GetAtt. Its
// input is either "LogicalID.Attribute" (the YAML short form) or the list
// [LogicalID, Attribute].
func getAttReference(_ string, input interface{}, _ interface{}) interface{} {
	switch v := input.(type) {
	case string:
		return getAttPrefix + v
	case []interface{}:
		parts := make([]string, 0, len(v))
		for _, part := range v {
			s, ok := part.(string)
			if !ok {
				return nil
			}
			parts = append(parts, s)
		}
		return getAttPrefix + strings.Join(parts, ".")
	}
	return nil
}

// parseGetAtt splits a reference made by getAttReference into the logical
// id and the attribute. ok is false for any other string.
func parseGetAtt(s string) (logicalID, attribute string, ok bool) {
	ref, found := strings.CutPrefix(s, getAttPrefix)
	if !found {
		return "", "", false
	}
	logicalID, attribute, found = strings.Cut(ref, ".")
	if !found || logicalID == "" || attribute == "" {
		return "", "", false
	}
	return logicalID, attribute, true
}
