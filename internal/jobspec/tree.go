package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The two front ends (YAML and JSON) turn a document into the same small
// tree with line numbers, so that one schema check (check.go) reports
// unknown fields and wrong types the same way for both formats.

type nodeKind int

const (
	kindNull nodeKind = iota
	kindScalar
	kindMap
	kindSeq
)

// scalarType is what a scalar resolved to in its own format.
type scalarType int

const (
	scalarString scalarType = iota
	scalarInt
	scalarFloat
	scalarBool
	scalarOther // YAML-only tags such as !!timestamp or !!binary
)

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack;
// real job documents nest four or five levels.
const maxDepth = 64

type node struct {
	kind nodeKind
	line int
	col  int

	// Scalars.
	text  string // YAML: the literal value; JSON: the string value or number text
	tag   string // YAML: the resolved tag, e.g. "!!str", "!!binary"
	stype scalarType
	// raw decodes a scalar into a Go value with the format's own rules
	// (so durations, booleans and numbers mean what the real decoder makes
	// of them).
	raw func(out any) error

	// Mappings, in document order.
	entries []entry
	// Sequences.
	items []*node
}

type entry struct {
	key     string
	keyLine int
	keyCol  int
	// keyIsString is false for YAML keys such as `1:` or `true:`.
	keyIsString bool
	value       *node
}

func (n *node) describe() string {
	switch n.kind {
	case kindNull:
		return "null"
	case kindMap:
		return "a mapping"
	case kindSeq:
		return "a list"
	}
	switch n.stype {
	case scalarInt, scalarFloat:
		return "number " + n.text
	case scalarBool:
		return n.text
	case scalarOther:
		if !strings.HasPrefix(n.tag, "!!") {
			// `op: !=` unquoted: YAML reads a leading "!" as a tag.
			return fmt.Sprintf("the YAML tag %s (quote values that start with \"!\", e.g. \"!=\")", n.tag)
		}
		return n.tag + " " + strconv.Quote(truncate(n.text, 40))
	}
	return strconv.Quote(truncate(n.text, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// --- YAML ---

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlTree parses data as exactly one YAML document.
func yamlTree(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		return nil, yamlSyntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlSyntaxError(err)
	default:
		return nil, &Error{Problems: []Problem{{Line: extra.Line, Rule: "a file holds one job document; found a second YAML document (---)"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, ErrEmpty
		}
		root = root.Content[0]
	}
	var probs []Problem
	t := fromYAML(root, "", 0, &probs)
	if len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return t, nil
}

func yamlSyntaxError(err error) error {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{Problems: []Problem{{Rule: "YAML syntax: " + err.Error()}}}
	}
	line, _ := strconv.Atoi(m[1])
	return &Error{Problems: []Problem{{Line: line, Rule: "YAML syntax: " + m[2]}}}
}

func fromYAML(y *yaml.Node, path string, depth int, probs *[]Problem) *node {
	n := &node{line: y.Line, col: y.Column}
	if depth > maxDepth {
		*probs = append(*probs, Problem{Field: path, Line: y.Line, Rule: fmt.Sprintf("nested more than %d levels deep", maxDepth)})
		return n
	}
	if y.Kind == yaml.AliasNode || y.Anchor != "" {
		// Aliases can expand a small file into a huge value, and a job
		// document has no use for them.
		*probs = append(*probs, Problem{Field: path, Line: y.Line, Rule: "YAML anchors and aliases (&name, *name, <<) are not supported in job documents"})
		return n
	}
	switch y.Kind {
	case yaml.MappingNode:
		n.kind = kindMap
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode || !utf8.ValidString(k.Value) {
				*probs = append(*probs, Problem{Field: path, Line: k.Line, Rule: "mapping keys must be plain names, not lists or mappings"})
				continue
			}
			n.entries = append(n.entries, entry{
				key: k.Value, keyLine: k.Line, keyCol: k.Column,
				keyIsString: k.ShortTag() == "!!str",
				value:       fromYAML(v, join(path, k.Value), depth+1, probs),
			})
		}
	case yaml.SequenceNode:
		n.kind = kindSeq
		for i, c := range y.Content {
			n.items = append(n.items, fromYAML(c, fmt.Sprintf("%s[%d]", path, i), depth+1, probs))
		}
	case yaml.ScalarNode:
		if !utf8.ValidString(y.Value) {
			// Double-quoted YAML escapes ("\xd3") can produce any bytes.
			*probs = append(*probs, Problem{Field: path, Line: y.Line, Rule: "is not valid UTF-8 text"})
		}
		n.text = y.Value
		n.tag = y.ShortTag()
		n.raw = y.Decode
		switch y.ShortTag() {
		case "!!null":
			n.kind = kindNull
		case "!!str":
			n.kind, n.stype = kindScalar, scalarString
		case "!!int":
			n.kind, n.stype = kindScalar, scalarInt
		case "!!float":
			n.kind, n.stype = kindScalar, scalarFloat
		case "!!bool":
			n.kind, n.stype = kindScalar, scalarBool
		default:
			n.kind, n.stype = kindScalar, scalarOther
		}
	default:
		*probs = append(*probs, Problem{Field: path, Line: y.Line, Rule: "unsupported YAML node"})
	}
	return n
}

// --- JSON ---

// jsonTree parses data as exactly one JSON value, keeping the line of every
// token so errors can point at it.
func jsonTree(data []byte) (*node, error) {
	p := &jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	root, err := p.value(tok, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		line, _ := lineCol(data, p.dec.InputOffset())
		return nil, &Error{Problems: []Problem{{Line: line, Rule: "a file holds one job document; found more data after the JSON object"}}}
	}
	return root, nil
}

type jsonParser struct {
	data []byte
	dec  *json.Decoder
}

func (p *jsonParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == nil {
		return tok, nil
	}
	if errors.Is(err, io.EOF) {
		return nil, p.syntax(int64(len(p.data)), "unexpected end of document")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, p.syntax(se.Offset, err.Error())
	}
	return nil, p.syntax(p.dec.InputOffset(), err.Error())
}

func (p *jsonParser) syntax(off int64, msg string) error {
	line, col := lineCol(p.data, off)
	// A YAML flow mapping ({name: web}) also starts with '{'; say why JSON
	// rules apply.
	return &Error{Problems: []Problem{{Line: line, Column: col, Rule: "JSON syntax (a document starting with '{' is read as JSON): " + msg}}}
}

// pos is the position of the token just read: tokens never span lines, so
// its last byte is on its line.
func (p *jsonParser) pos() (int, int) {
	return lineCol(p.data, p.dec.InputOffset()-1)
}

func (p *jsonParser) value(tok json.Token, path string, depth int) (*node, error) {
	line, col := p.pos()
	n := &node{line: line, col: col}
	if depth > maxDepth {
		return nil, &Error{Problems: []Problem{{Field: path, Line: line, Rule: fmt.Sprintf("nested more than %d levels deep", maxDepth)}}}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.kind = kindMap
			seen := map[string]int{}
			for p.dec.More() {
				kt, err := p.token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string) // the decoder guarantees string keys
				kl, kc := p.pos()
				if first, dup := seen[key]; dup {
					return nil, &Error{Problems: []Problem{{Field: join(path, key), Line: kl, Rule: fmt.Sprintf("given twice (first on line %d)", first)}}}
				}
				seen[key] = kl
				vt, err := p.token()
				if err != nil {
					return nil, err
				}
				v, err := p.value(vt, join(path, key), depth+1)
				if err != nil {
					return nil, err
				}
				n.entries = append(n.entries, entry{key: key, keyLine: kl, keyCol: kc, keyIsString: true, value: v})
			}
		case '[':
			n.kind = kindSeq
			for i := 0; p.dec.More(); i++ {
				it, err := p.token()
				if err != nil {
					return nil, err
				}
				v, err := p.value(it, fmt.Sprintf("%s[%d]", path, i), depth+1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		default:
			return nil, p.syntax(p.dec.InputOffset()-1, fmt.Sprintf("unexpected %q", rune(t)))
		}
		if _, err := p.token(); err != nil { // the closing delimiter
			return nil, err
		}
	case nil:
		n.kind = kindNull
	case bool:
		n.kind, n.stype, n.text = kindScalar, scalarBool, strconv.FormatBool(t)
	case json.Number:
		n.kind, n.text = kindScalar, t.String()
		n.stype = scalarFloat
		if _, err := strconv.ParseInt(n.text, 10, 64); err == nil {
			n.stype = scalarInt
		}
	case string:
		n.kind, n.stype, n.text = kindScalar, scalarString, t
	}
	if n.kind == kindScalar {
		raw, _ := json.Marshal(tok)
		n.raw = func(out any) error { return json.Unmarshal(raw, out) }
	}
	return n, nil
}

// lineCol converts a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
