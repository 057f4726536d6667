package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// printData writes v as JSON or YAML when -o asks for it, and reports
// whether it did; table output is the caller's.
func (e *Env) printData(v any) (bool, error) {
	switch e.Format {
	case FormatJSON:
		enc := json.NewEncoder(e.Out)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case FormatYAML:
		b, err := toYAML(v)
		if err != nil {
			return true, err
		}
		_, err = e.Out.Write(b)
		return true, err
	}
	return false, nil
}

// toYAML renders v with its JSON field names, in JSON field order. The
// domain types' yaml tags describe job documents (server fields hidden), so
// YAML output goes through JSON: JSON is YAML, and a yaml.Node keeps order.
func toYAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	return yaml.Marshal(&n)
}

// blockStyle drops JSON's flow and quoting styles so the encoder writes
// ordinary block YAML (it still quotes strings that need it).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// table collects rows and writes them aligned.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) row(cells ...any) {
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = sanitize(fmt.Sprint(c))
	}
	t.rows = append(t.rows, r)
}

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// sanitize keeps a cell on one line and out of the column separators, and
// strips control characters a task or user could use to garble a terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

// kv writes "Key = value" lines aligned, as nomad's status views do.
type kv struct {
	pairs [][2]string
}

func (k *kv) add(key string, value any) {
	k.pairs = append(k.pairs, [2]string{key, sanitize(fmt.Sprint(value))})
}

func (k *kv) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range k.pairs {
		fmt.Fprintf(tw, "%s\t= %s\n", p[0], p[1])
	}
	return tw.Flush()
}
