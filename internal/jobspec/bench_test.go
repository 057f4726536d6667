package jobspec

import "testing"

// BenchmarkParse measures a typical job document, as YAML and as JSON
// (the CLI parses once per submit; the figure matters for tools that
// generate and check many documents).
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		doc  string
	}{{"yaml", webYAML}, {"json", webJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			data := []byte(bc.doc)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
