package acl

import (
	"bytes"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileNamespaces(t *testing.T) {
	a := Compile(
		mustParse(t, `
namespace "*"      { policy = "read" }
namespace "team-*" { capabilities = ["submit"] }
namespace "team-a" { policy = "write" }
namespace "prod"   { policy = "deny" }`),
		mustParse(t, `
namespace "team-*" { capabilities = ["read"] }
namespace "prod"   { policy = "write" }`),
	)
	for _, tc := range []struct {
		ns   string
		want Capability
	}{
		{"default", CapRead}, // "*"
		{"team-a", CapRead | CapSubmit | CapScale | CapLogs | CapAllocExec | CapAllocLifecycle}, // exact beats the prefix
		{"team-b", CapRead | CapSubmit}, // the prefix, both policies
		{"team-", CapRead | CapSubmit},  // a prefix matches itself
		{"prod", 0},                     // deny wins over write
		{"tea", CapRead},                // not the prefix: "*"
	} {
		if got := a.Namespace(tc.ns); got != tc.want {
			t.Errorf("Namespace(%q) = %v, want %v", tc.ns, got, tc.want)
		}
	}
	if !a.AllowNamespace("team-b", CapRead|CapSubmit) || a.AllowNamespace("team-b", CapRead|CapScale) {
		t.Error("AllowNamespace must ask for every capability in want")
	}
	if !a.AllowAnyNamespace(CapScale) || a.AllowAnyNamespace(CapDeny) {
		t.Error("AllowAnyNamespace: scale is granted in team-a; deny is never a grant")
	}
	if a.AllowNode(LevelRead) || a.AllowOperator(LevelRead) {
		t.Error("no node or operator block: nothing granted")
	}
}

func TestCompileLevels(t *testing.T) {
	for _, tc := range []struct {
		policies        []string
		read, write     bool
		opRead, opWrite bool
	}{
		{[]string{`node { policy = "read" }`}, true, false, false, false},
		{[]string{`node { policy = "write" }`}, true, true, false, false},
		{[]string{`node { policy = "read" }`, `node { policy = "write" }`}, true, true, false, false},
		{[]string{`node { policy = "write" }`, `node { policy = "deny" }`}, false, false, false, false},
		{[]string{`operator { policy = "write" }`}, false, false, true, true},
		{[]string{`operator { policy = "read" }`, `namespace "*" { policy = "write" }`}, false, false, true, false},
	} {
		var ps []*Policy
		for _, s := range tc.policies {
			ps = append(ps, mustParse(t, s))
		}
		a := Compile(ps...)
		got := [4]bool{a.AllowNode(LevelRead), a.AllowNode(LevelWrite), a.AllowOperator(LevelRead), a.AllowOperator(LevelWrite)}
		if want := [4]bool{tc.read, tc.write, tc.opRead, tc.opWrite}; got != want {
			t.Errorf("%s: node read/write, operator read/write = %v, want %v", strings.Join(tc.policies, " + "), got, want)
		}
	}
}

func TestManagementAndDenyAll(t *testing.T) {
	if !Management.AllowNamespace("any", capAll) || !Management.AllowNode(LevelWrite) ||
		!Management.AllowOperator(LevelWrite) || !Management.AllowAnyNamespace(CapLogs) || !Management.IsManagement() {
		t.Error("a management ACL must allow everything")
	}
	if DenyAll.AllowNamespace("default", CapRead) || DenyAll.AllowNode(LevelRead) ||
		DenyAll.AllowOperator(LevelRead) || DenyAll.AllowAnyNamespace(CapRead) || DenyAll.IsManagement() {
		t.Error("DenyAll must allow nothing")
	}
	if Compile().Namespace("default") != 0 {
		t.Error("no policies: no capabilities")
	}
}

func TestNewIDAndHash(t *testing.T) {
	// Injected randomness: the ID is a v4 UUID of exactly those bytes.
	id, err := NewID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if id != "ffffffff-ffff-4fff-bfff-ffffffffffff" {
		t.Errorf("NewID = %s", id)
	}
	if _, err := NewID(bytes.NewReader(nil)); err == nil {
		t.Error("NewID with no randomness must fail")
	}
	a, _ := NewID(nil)
	b, _ := NewID(nil)
	if a == b || len(a) != 36 {
		t.Errorf("two IDs from crypto/rand: %s %s", a, b)
	}
	if h := HashSecret("s"); len(h) != 64 || h != HashSecret("s") || h == HashSecret("t") {
		t.Errorf("HashSecret: %s", h)
	}
}

// BenchmarkAllowNamespace is the check a request makes once its token's
// ACL is cached: a map lookup and a bit test.
func BenchmarkAllowNamespace(b *testing.B) {
	a := Compile(mustParse(b, `
namespace "default" { policy = "read" }
namespace "team-*"  { policy = "write" }
namespace "*"       { policy = "deny" }
node { policy = "write" }`))
	b.ReportAllocs()
	for b.Loop() {
		if !a.AllowNamespace("team-b", CapSubmit) || !a.AllowNode(LevelWrite) {
			b.Fatal("denied")
		}
	}
}
