package acl

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want Policy
	}{
		{name: "empty", src: "", want: Policy{}},
		{name: "comments only", src: "# nothing\n// still nothing\n/* and\nnothing */\n", want: Policy{}},
		{
			name: "nomad shape",
			src: `
# team A
namespace "team-a" {
  policy = "write"
}
namespace "*" {
  policy       = "read"
  capabilities = ["logs",]
}
node { policy = "read" }
operator {
  policy = "write" // raft and snapshots
}`,
			want: Policy{
				Namespaces: []NamespaceRule{
					{Pattern: "team-a", Policy: "write", Capabilities: CapRead | CapSubmit | CapScale | CapLogs | CapAllocExec | CapAllocLifecycle},
					{Pattern: "*", Policy: "read", Capabilities: CapRead | CapLogs},
				},
				Node: LevelRead, Operator: LevelWrite,
			},
		},
		{
			name: "capabilities only",
			src:  `namespace "ci-*" { capabilities = ["submit", "read"] }`,
			want: Policy{Namespaces: []NamespaceRule{{Pattern: "ci-*", Capabilities: CapRead | CapSubmit}}},
		},
		{
			name: "deny",
			src:  `namespace "prod" { policy = "deny" } node { policy = "deny" }`,
			want: Policy{Namespaces: []NamespaceRule{{Pattern: "prod", Policy: "deny", Capabilities: CapDeny}}, Node: LevelDeny},
		},
		{
			name: "scale shorthand",
			src:  `namespace "default" { policy = "scale" }`,
			want: Policy{Namespaces: []NamespaceRule{{Pattern: "default", Policy: "scale", Capabilities: CapRead | CapScale}}},
		},
		{
			name: "escapes in a comment-free string",
			src:  "namespace \"a\" {\n\tpolicy = \"read\"\r\n}\n",
			want: Policy{Namespaces: []NamespaceRule{{Pattern: "a", Policy: "read", Capabilities: CapRead}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.Equal(&tc.want) {
				t.Fatalf("Parse = %+v, want %+v", got, tc.want)
			}
			again, err := Parse(got.Format())
			if err != nil || !again.Equal(got) {
				t.Fatalf("Format round trip: %v, %+v\n%s", err, again, got.Format())
			}
		})
	}
}

// TestParseErrors: every rule a document can break is refused with the
// line and column of the problem and words that say what to do.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{`nmespace "a" { policy = "read" }`, 1, 1, `unknown block "nmespace"`},
		{`namespace { policy = "read" }`, 1, 11, `expected string naming the namespace`},
		{`namespace "a b" { policy = "read" }`, 1, 11, `may hold only letters`},
		{`namespace "a*b" { policy = "read" }`, 1, 11, `only at its end`},
		{`namespace "" { policy = "read" }`, 1, 11, `is empty`},
		{`namespace "a" { policy = "admin" }`, 1, 26, `unknown namespace policy "admin"`},
		{`namespace "a" { capabilities = ["read", "exec"] }`, 1, 41, `unknown capability "exec"`},
		{`namespace "a" { capabilities = "read" }`, 1, 17, `as a list of strings`},
		{`namespace "a" { policy = ["read"] }`, 1, 17, `as one string`},
		{"namespace \"a\" {\n  policy = \"read\"\n  policy = \"write\"\n}", 3, 3, `given once`},
		{`namespace "a" { }`, 1, 11, `grants nothing`},
		{`namespace "a" { policy = "read" } namespace "a" { policy = "write" }`, 1, 45, `second block for namespace "a"`},
		{`namespace "a" { colour = "red" }`, 1, 17, `unknown attribute "colour"`},
		{`namespace "a" { policy "read" }`, 1, 24, `expected '=' after policy`},
		{`namespace "a" { policy = "read"`, 1, 32, `closing the namespace a block`},
		{`namespace "a" { capabilities = ["read" "logs"] }`, 1, 40, `expected ',' or ']'`},
		{`node { policy = "admin" }`, 1, 17, `unknown node policy "admin"`},
		{`node { }`, 1, 1, `needs a policy`},
		{`node { policy = "read" } node { policy = "write" }`, 1, 26, `second node block`},
		{`operator { mode = "read" }`, 1, 12, `unknown attribute "mode"`},
		{"namespace \"a\" { policy = \"read\n\" }", 1, 26, `not closed on its line`},
		{`namespace "a\q" { policy = "read" }`, 1, 13, `unknown escape \q`},
		{`namespace "a" { policy = "read" } /* open`, 1, 35, `not closed with */`},
		{`namespace "a" { policy = "read" } @`, 1, 35, `unexpected character '@'`},
		{"\xff", 1, 1, `not valid UTF-8`},
		{strings.Repeat(" ", MaxPolicyBytes+1), 1, 1, `at most`},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			_, err := Parse(tc.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tc.src, err)
			}
			if se.Line != tc.line || se.Col != tc.col || !strings.Contains(se.Msg, tc.msg) {
				t.Fatalf("Parse(%q) = %q at %d:%d, want %q at %d:%d", tc.src, se.Msg, se.Line, se.Col, tc.msg, tc.line, tc.col)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxNamespaceRules; i++ {
		b.WriteString("namespace \"ns-" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + itoa(i) + "\" { policy = \"read\" }\n")
	}
	if _, err := Parse(b.String()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("%d namespace blocks: %v, want refused", MaxNamespaceRules+1, err)
	}
	list := `namespace "a" { capabilities = [` + strings.Repeat(`"read",`, maxListLen+1) + `] }`
	if _, err := Parse(list); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a list of %d values: %v, want refused", maxListLen+1, err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
