package apidoc_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/httpapi"
)

// sourceCode is a problem code that the source can produce, with the
// apperr code that selects its HTTP status. A code that ends in "*" is a
// prefix that the source completes at run time, such as "envelope_*".
type sourceCode struct {
	Code  apperr.Code
	Value string
}

// codeByName maps the names of the apperr code constants to their values.
var codeByName = map[string]apperr.Code{
	"Invalid":            apperr.Invalid,
	"Unauthorized":       apperr.Unauthorized,
	"InsufficientCredit": apperr.InsufficientCredit,
	"Forbidden":          apperr.Forbidden,
	"NotFound":           apperr.NotFound,
	"MethodNotAllowed":   apperr.MethodNotAllowed,
	"Conflict":           apperr.Conflict,
	"TooLarge":           apperr.TooLarge,
	"Unprocessable":      apperr.Unprocessable,
	"RateLimited":        apperr.RateLimited,
	"Internal":           apperr.Internal,
}

// codeScanner collects the problem codes of a package's non-test source.
// They are the Reason of each apperr.Error literal and the reason of each
// apperr.InvalidField call and of each WithReason call on apperr.New. An
// apperr.New call or Error literal without a reason gives its bare code.
type codeScanner struct {
	funcs      map[string]*ast.FuncDecl
	files      []*ast.File
	fset       *token.FileSet
	found      map[sourceCode]bool
	unresolved []string
}

func scanPackageCodes(dir string) (map[sourceCode]bool, []string, error) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	s := &codeScanner{funcs: map[string]*ast.FuncDecl{}, fset: fset, found: map[sourceCode]bool{}}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return nil, nil, err
		}
		s.files = append(s.files, f)
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				s.funcs[fd.Name.Name] = fd
			}
		}
	}
	for _, f := range s.files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				s.scanFunc(fd)
			}
		}
	}
	return s.found, s.unresolved, nil
}

func isApperr(e ast.Expr, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "apperr" && sel.Sel.Name == name
}

// apperrCode returns the code named by an expression such as
// apperr.Conflict.
func apperrCode(e ast.Expr) (apperr.Code, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "apperr" {
		return "", false
	}
	c, ok := codeByName[sel.Sel.Name]
	return c, ok
}

func (s *codeScanner) scanFunc(fd *ast.FuncDecl) {
	handled := map[*ast.CallExpr]bool{}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "WithReason" || len(call.Args) != 1 {
			return true
		}
		inner, ok := sel.X.(*ast.CallExpr)
		if !ok || !isApperr(inner.Fun, "New") || len(inner.Args) == 0 {
			s.unresolvedAt(call, "WithReason on something other than apperr.New")
			return true
		}
		handled[inner] = true
		code, ok := apperrCode(inner.Args[0])
		if !ok {
			s.unresolvedAt(call, "apperr.New with a code that is not an apperr constant")
			return true
		}
		s.addValues(fd, call.Args[0], code)
		return true
	})
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch {
			case isApperr(n.Fun, "InvalidField") && len(n.Args) >= 2:
				s.addValues(fd, n.Args[1], apperr.Invalid)
			case isApperr(n.Fun, "New") && !handled[n] && len(n.Args) > 0:
				code, ok := apperrCode(n.Args[0])
				if !ok {
					s.unresolvedAt(n, "apperr.New with a code that is not an apperr constant")
					return true
				}
				s.found[sourceCode{Code: code, Value: string(code)}] = true
			}
		case *ast.CompositeLit:
			if !isApperr(n.Type, "Error") {
				return true
			}
			var code apperr.Code
			var reason ast.Expr
			for _, elt := range n.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch kv.Key.(*ast.Ident).Name {
				case "Code":
					c, ok := apperrCode(kv.Value)
					if !ok {
						s.unresolvedAt(n, "apperr.Error with a Code that is not an apperr constant")
						return true
					}
					code = c
				case "Reason":
					reason = kv.Value
				}
			}
			if code == "" {
				// An Error without a Code is completed elsewhere, such as
				// in the fallback of WriteError, so it is no problem code.
				return true
			}
			if reason == nil {
				s.found[sourceCode{Code: code, Value: string(code)}] = true
				return true
			}
			s.addValues(fd, reason, code)
		}
		return true
	})
}

// addValues records the code values that e can take: a string literal, a
// literal prefix followed by a run-time value, a local variable assigned
// such values, or a parameter that the package's callers pass such values.
func (s *codeScanner) addValues(fd *ast.FuncDecl, e ast.Expr, code apperr.Code) {
	values, ok := s.values(fd, e, 0)
	if !ok {
		s.unresolvedAt(e, "reason that is not a literal, a literal prefix, a local variable or a parameter")
		return
	}
	for _, v := range values {
		s.found[sourceCode{Code: code, Value: v}] = true
	}
}

func (s *codeScanner) values(fd *ast.FuncDecl, e ast.Expr, depth int) ([]string, bool) {
	if depth > 3 {
		return nil, false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		v, err := strconv.Unquote(e.Value)
		return []string{v}, err == nil
	case *ast.BinaryExpr:
		if lit, ok := e.X.(*ast.BasicLit); ok && e.Op == token.ADD {
			v, err := strconv.Unquote(lit.Value)
			return []string{v + "*"}, err == nil
		}
	case *ast.Ident:
		if idx := paramIndex(fd, e.Name); idx >= 0 {
			return s.argumentValues(fd.Name.Name, idx, depth)
		}
		var out []string
		ok := true
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			as, isAssign := n.(*ast.AssignStmt)
			if !isAssign || len(as.Lhs) != len(as.Rhs) {
				return true
			}
			for i, lhs := range as.Lhs {
				if id, isIdent := lhs.(*ast.Ident); isIdent && id.Name == e.Name {
					v, resolved := s.values(fd, as.Rhs[i], depth+1)
					ok = ok && resolved
					out = append(out, v...)
				}
			}
			return true
		})
		return out, ok && len(out) > 0
	}
	return nil, false
}

func paramIndex(fd *ast.FuncDecl, name string) int {
	i := 0
	for _, field := range fd.Type.Params.List {
		for _, n := range field.Names {
			if n.Name == name {
				return i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1
}

// argumentValues returns the values that the package's calls of the
// function pass at position idx.
func (s *codeScanner) argumentValues(funcName string, idx, depth int) ([]string, bool) {
	var out []string
	ok := true
	for _, f := range s.files {
		for _, d := range f.Decls {
			caller, isFunc := d.(*ast.FuncDecl)
			if !isFunc || caller.Body == nil {
				continue
			}
			ast.Inspect(caller.Body, func(n ast.Node) bool {
				call, isCall := n.(*ast.CallExpr)
				if !isCall || idx >= len(call.Args) {
					return true
				}
				name := ""
				switch fun := call.Fun.(type) {
				case *ast.Ident:
					name = fun.Name
				case *ast.SelectorExpr:
					name = fun.Sel.Name
				}
				if name != funcName {
					return true
				}
				v, resolved := s.values(caller, call.Args[idx], depth+1)
				ok = ok && resolved
				out = append(out, v...)
				return true
			})
		}
	}
	return out, ok && len(out) > 0
}

func (s *codeScanner) unresolvedAt(n ast.Node, problem string) {
	s.unresolved = append(s.unresolved, fmt.Sprintf("%s: %s", s.fset.Position(n.Pos()), problem))
}

// problemPackages are the packages whose errors reach HTTP responses.
var problemPackages = []string{"accounts", "orgs", "apikeys", "billing", "envelopes", "notify", "webhooks", "httpapi", "authn", "idempotency", "app"}

// documentedCodes returns the code enum of each ProblemNNN schema, by
// status.
func documentedCodes(t *testing.T, doc *openapi3.T) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	for name, ref := range doc.Components.Schemas {
		status, err := strconv.Atoi(strings.TrimPrefix(name, "Problem"))
		if err != nil {
			continue
		}
		for _, part := range ref.Value.AllOf {
			code, ok := part.Value.Properties["code"]
			if !ok {
				continue
			}
			for _, v := range code.Value.Enum {
				out[status] = append(out[status], v.(string))
			}
		}
		if len(out[status]) == 0 {
			t.Errorf("schema %s has no code enum", name)
		}
	}
	return out
}

// matches reports whether a documented code is the source value, or
// completes it when the source value is a prefix ending in "*".
func matches(documented, source string) bool {
	if prefix, ok := strings.CutSuffix(source, "*"); ok {
		return strings.HasPrefix(documented, prefix) && len(documented) > len(prefix)
	}
	return documented == source
}

func TestProblemCodesMatchSource(t *testing.T) {
	documented := documentedCodes(t, loadDocument(t))
	found := map[sourceCode]bool{}
	for _, pkg := range problemPackages {
		codes, unresolved, err := scanPackageCodes(filepath.Join("..", pkg))
		if err != nil {
			t.Fatalf("scan package %s: %v", pkg, err)
		}
		for _, u := range unresolved {
			t.Errorf("cannot tell the problem code at %s", u)
		}
		for c := range codes {
			found[c] = true
		}
	}

	used := map[int]map[string]bool{}
	for c := range found {
		status := httpapi.StatusOf(c.Code)
		if used[status] == nil {
			used[status] = map[string]bool{}
		}
		matched := false
		for _, d := range documented[status] {
			if matches(d, c.Value) {
				matched = true
				used[status][d] = true
			}
		}
		if !matched {
			t.Errorf("code %q (status %d) is produced by the source but not in the document's Problem%d", c.Value, status, status)
		}
	}
	for status, codes := range documented {
		for _, d := range codes {
			if !used[status][d] {
				t.Errorf("code %q of Problem%d is not produced by any source with status %d", d, status, status)
			}
		}
	}
}

// TestCodeScannerFindsKnownCodes guards the scanner itself: each form of
// error construction that it must understand is found.
func TestCodeScannerFindsKnownCodes(t *testing.T) {
	cases := []struct {
		pkg  string
		want sourceCode
	}{
		{"accounts", sourceCode{apperr.Conflict, "email_taken"}},        // apperr.Error literal
		{"accounts", sourceCode{apperr.Invalid, "invalid_password"}},    // apperr.InvalidField
		{"accounts", sourceCode{apperr.NotFound, "not_found"}},          // apperr.New without a reason
		{"httpapi", sourceCode{apperr.Invalid, "malformed_json"}},       // WithReason on apperr.New
		{"envelopes", sourceCode{apperr.Conflict, "envelope_*"}},        // literal prefix
		{"envelopes", sourceCode{apperr.Conflict, "envelope_not_sent"}}, // local variable
		{"envelopes", sourceCode{apperr.Invalid, "invalid_title"}},      // parameter passed by callers
		{"idempotency", sourceCode{apperr.Unprocessable, "idempotency_key_reused"}},
	}
	for _, tc := range cases {
		codes, _, err := scanPackageCodes(filepath.Join("..", tc.pkg))
		if err != nil {
			t.Fatalf("scan package %s: %v", tc.pkg, err)
		}
		if !codes[tc.want] {
			t.Errorf("package %s: %s %q not found", tc.pkg, tc.want.Code, tc.want.Value)
		}
	}
}
