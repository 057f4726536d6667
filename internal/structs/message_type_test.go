package structs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// persistedMessageTypes is every entry type ever written to a Raft log,
// with its value. It only grows: an entry here whose value changes, or
// that disappears, makes servers misread the logs on disk.
var persistedMessageTypes = map[string]MessageType{
	"NodeRegisterRequestType":           1,
	"NodeUpdateStatusRequestType":       2,
	"NodeUpdateDrainRequestType":        3,
	"JobRegisterRequestType":            4,
	"JobDeregisterRequestType":          5,
	"AllocClientUpdateRequestType":      6,
	"ApplyPlanRequestType":              7,
	"ServerMemberUpsertRequestType":     8,
	"ServerMemberDeleteRequestType":     9,
	"AllocClientUpdateBatchRequestType": 64,
	"JobBatchRequestType":               72,
	"ApplyPlanBatchRequestType":         80,
	"ApplyPlanBatchBinaryType":          112,
	"AllocClientUpdateBatchBinaryType":  113,
	"GCRequestType":                     114,
	"ACLBootstrapRequestType":           120,
	"ACLPolicyUpsertRequestType":        121,
	"ACLPolicyDeleteRequestType":        122,
	"ACLTokenUpsertRequestType":         123,
	"ACLTokenDeleteRequestType":         124,
	"NamespaceUpsertRequestType":        125,
	"NamespaceDeleteRequestType":        126,
	"DeploymentUpsertRequestType":       127,
}

// messageTypeConst is one MessageType constant found in the source.
type messageTypeConst struct {
	name, file string
	value      MessageType
}

// declaredMessageTypes parses the package's non-test files and returns
// every constant of type MessageType, wherever it is declared.
func declaredMessageTypes(t *testing.T) []messageTypeConst {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []messageTypeConst
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			// In a const group, a spec without a type inherits the one
			// before it (iota blocks).
			var typ ast.Expr
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if vs.Type != nil || len(vs.Values) > 0 {
					typ = vs.Type
				}
				if id, ok := typ.(*ast.Ident); !ok || id.Name != "MessageType" {
					continue
				}
				for i, name := range vs.Names {
					c := messageTypeConst{name: name.Name, file: f}
					lit, ok := valueAt(vs.Values, i).(*ast.BasicLit)
					if !ok {
						t.Errorf("%s: %s must have a literal value (no iota: values are persisted)", f, name.Name)
						continue
					}
					v, err := strconv.ParseUint(lit.Value, 0, 8)
					if err != nil {
						t.Errorf("%s: %s = %s: %v", f, name.Name, lit.Value, err)
						continue
					}
					c.value = MessageType(v)
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func valueAt(values []ast.Expr, i int) ast.Expr {
	if i < len(values) {
		return values[i]
	}
	return nil
}

// TestMessageTypesOneAppendOnlyBlock keeps every entry type in
// message_type.go, named, with the value it has always had.
func TestMessageTypesOneAppendOnlyBlock(t *testing.T) {
	declared := declaredMessageTypes(t)
	seen := map[string]bool{}
	for _, c := range declared {
		seen[c.name] = true
		if c.file != "message_type.go" {
			t.Errorf("%s is declared in %s: every MessageType belongs in message_type.go's block", c.name, c.file)
		}
		want, ok := persistedMessageTypes[c.name]
		switch {
		case !ok:
			t.Errorf("%s = %d is new: add it to persistedMessageTypes (values are never reused or renumbered)", c.name, c.value)
		case c.value != want:
			t.Errorf("%s = %d, was %d: values are in Raft logs on disk and must never change", c.name, c.value, want)
		}
		if !c.value.Known() {
			t.Errorf("%s (%d) has no name in messageTypeNames", c.name, c.value)
		}
	}
	for name, v := range persistedMessageTypes {
		if !seen[name] {
			t.Errorf("%s (%d) is gone: old logs hold it, keep it", name, v)
		}
	}
	if got := len(MessageTypes()); got != len(declared) {
		t.Errorf("MessageTypes() lists %d types, the source declares %d", got, len(declared))
	}
}

func TestMessageTypeNames(t *testing.T) {
	types := MessageTypes()
	if !slices.IsSorted(types) {
		t.Errorf("MessageTypes() = %v, want ascending", types)
	}
	names := map[string]MessageType{}
	for _, mt := range types {
		name := mt.String()
		if prev, dup := names[name]; dup {
			t.Errorf("types %d and %d are both named %q", prev, mt, name)
		}
		names[name] = mt
	}
	for _, tc := range []struct {
		t    MessageType
		want string
	}{
		{ApplyPlanBatchRequestType, "apply_plan_batch"},
		{0, "type_0"},
		{10, "type_10"},
		{GCRequestType, "gc"},
		{115, "type_115"},
		{128, "type_128"},
		{255, "type_255"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("MessageType(%d).String() = %q, want %q", tc.t, got, tc.want)
		}
		if known := tc.t.Known(); known != (tc.t == ApplyPlanBatchRequestType || tc.t == GCRequestType) {
			t.Errorf("MessageType(%d).Known() = %v", tc.t, known)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = ApplyPlanBatchBinaryType.String() }); n != 0 {
		t.Errorf("String of a known type allocates %v times", n)
	}
}
