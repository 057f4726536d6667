package acl

import (
	"errors"
	"testing"
)

// FuzzParsePolicy: no document makes Parse panic or loop; a refused one
// is refused with a *SyntaxError at a position inside the document; an
// accepted one formats to a document that parses to the same policy and
// compiles without trouble. The seed corpus (f.Add below and
// testdata/fuzz/FuzzParsePolicy) runs in every `go test`; `make fuzz` runs
// the fuzzer.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		``,
		`namespace "default" { policy = "read" }`,
		`namespace "*" { policy = "write" capabilities = ["logs", "deny"] }`,
		`namespace "team-*" { capabilities = ["submit","scale",] }`,
		"node {\n  policy = \"write\"\n}\noperator { policy = \"read\" } # done",
		"/* block\ncomment */ namespace \"a\" { policy = \"deny\" } // end",
		`namespace "a\"b" { policy = "read" }`,
		`namespace "a" { capabilities = [] }`,
		`namespace "a" { policy = "read"`,
		`node { policy = "read" } node { policy = "read" }`,
		"namespace \"\t\" { policy = \"\\t\" }",
		"\x00{}[]=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T %v, want *SyntaxError", src, err, err)
			}
			if se.Line < 1 || se.Col < 1 || se.Line > len(src)+1 || se.Col > len(src)+1 {
				t.Fatalf("Parse(%q): position %d:%d outside the document", src, se.Line, se.Col)
			}
			return
		}
		out := p.Format()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its Format does not parse: %v\n%s", src, err, out)
		}
		if !again.Equal(p) {
			t.Fatalf("Parse(%q) = %+v, its Format parses to %+v", src, p, again)
		}
		a := Compile(p)
		for _, r := range p.Namespaces {
			_ = a.Namespace(r.Pattern)
		}
	})
}
