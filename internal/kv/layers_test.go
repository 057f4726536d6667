package kv

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestLayers keeps the imports of the data store's packages pointing one
// way (docs/kv.md, "Code"): rdbcodec <- keyspace <- command <- aof, repl <- kv, and
// script (Lua, given commands through an interface) <- kv. A
// package may import only the gantry packages listed for it (none above
// it, no cycle), and the two lower layers no network or file packages.
func TestLayers(t *testing.T) {
	const gantry = "github.com/gantry-project/gantry/internal/"
	tests := []struct {
		dir       string
		allowed   []string // gantry packages, without the prefix
		forbidden []string // standard packages
	}{
		// decoders of Redis's DUMP payloads: pure functions of bytes
		{"rdbcodec", nil, []string{"net", "os", "log", "time", "io"}},
		{"keyspace", []string{"kv/rdbcodec"}, []string{"net", "os", "log", "time", "io"}},
		{"command", []string{"kv/keyspace", "resp"}, []string{"net", "os", "log"}},
		{"aof", []string{"kv/keyspace", "kv/command", "resp", "durable"}, []string{"net"}},
		{"repl", []string{"kv/keyspace", "kv/command", "resp", "durable"}, nil},
		{"acl", []string{"kv/command"}, []string{"net"}},
		// scripts run commands through the Caller the server gives them
		{"script", []string{"resp"}, []string{"net", "os", "log", "io/fs"}},
		// uring: batched socket I/O for the event loops, a leaf (x/sys only)
		{".", []string{"kv/keyspace", "kv/command", "kv/aof", "kv/repl", "kv/acl", "kv/script", "resp", "uring"}, nil},
	}
	for _, tt := range tests {
		name := strings.TrimSuffix("internal/kv/"+tt.dir, "/.")
		pkg, err := build.ImportDir(tt.dir, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, imp := range pkg.Imports {
			if rest, ok := strings.CutPrefix(imp, gantry); ok {
				if !slices.Contains(tt.allowed, rest) {
					t.Errorf("%s imports %s: not below it (allowed: %v)", name, imp, tt.allowed)
				}
				continue
			}
			if slices.Contains(tt.forbidden, imp) {
				t.Errorf("%s imports %s: that layer does no I/O of this kind", name, imp)
			}
		}
	}
}
