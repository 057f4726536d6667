package jobspec

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// The schema check walks the document tree against the Go type of a job and
// reports every unknown field and wrong type with its path and line, before
// the real decoders run. The decoders' own messages name neither the field
// (yaml.v3: "cannot unmarshal !!str into int") nor the line (encoding/json),
// which is not good enough for a file a person wrote.

var (
	durationType = reflect.TypeFor[structs.Duration]()
	anyType      = reflect.TypeFor[any]()
)

// hints add the unit to type errors on fields where the unit is the usual
// mistake.
var hints = map[string]string{
	"resources.cpu":       " of millicores (1000 = one core), e.g. 250",
	"resources.memory_mb": " of MiB, e.g. 128",
	"priority":            " from 1 to 100",
	"count":               ", the number of copies",
}

type checker struct {
	json  bool // JSON scalars are typed strictly; YAML strings accept any scalar
	probs []Problem
	// lines records the line of every field present, for annotating
	// validation errors that come later.
	lines map[string]int
}

const maxProblems = 20

func (c *checker) add(path string, line int, format string, args ...any) {
	if len(c.probs) < maxProblems {
		c.probs = append(c.probs, Problem{Field: path, Line: line, Rule: fmt.Sprintf(format, args...)})
	}
}

func (c *checker) check(n *node, t reflect.Type, path string) {
	if path != "" {
		c.lines[path] = n.line
	}
	if n.kind == kindNull {
		return // null means "not set": the zero value, then defaults
	}
	if t == durationType {
		c.duration(n, path)
		return
	}
	if t == anyType {
		c.free(n, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional block (periodic, parameterized, network)
		c.check(n, t.Elem(), path)
	case reflect.Struct:
		c.object(n, t, path)
	case reflect.Map:
		if n.kind != kindMap {
			c.add(path, n.line, "expected a mapping of names to values, got %s", n.describe())
			return
		}
		for _, e := range n.entries {
			kp := join(path, e.key)
			if !e.keyIsString {
				c.add(kp, e.keyLine, "key %s must be a string; quote it", e.key)
				continue
			}
			c.check(e.value, t.Elem(), kp)
		}
		c.duplicates(n, path)
	case reflect.Slice:
		if n.kind != kindSeq {
			c.add(path, n.line, "expected a list, got %s", n.describe())
			return
		}
		for i, it := range n.items {
			c.check(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.kind != kindScalar || n.stype == scalarOther || (c.json && n.stype != scalarString) {
			c.add(path, n.line, "expected a string, got %s", n.describe())
		}
	case reflect.Bool:
		var b bool
		if n.kind != kindScalar || (c.json && n.stype != scalarBool) || n.raw(&b) != nil {
			c.add(path, n.line, "expected true or false, got %s", n.describe())
		}
	case reflect.Int, reflect.Int64:
		c.integer(n, path)
	default:
		c.add(path, n.line, "unsupported field type %s", t)
	}
}

func (c *checker) integer(n *node, path string) {
	want := "an integer" + hints[path]
	if n.kind != kindScalar || (n.stype != scalarInt && n.stype != scalarFloat) {
		c.add(path, n.line, "expected %s, got %s", want, n.describe())
		return
	}
	if n.stype == scalarFloat {
		// yaml.v3 would silently truncate 2.5 to 2.
		why := "not a whole number"
		if f, err := strconv.ParseFloat(n.text, 64); err == nil && f == math.Trunc(f) {
			why = "write it without a fraction or exponent"
		}
		c.add(path, n.line, "expected %s, got %s (%s)", want, n.describe(), why)
		return
	}
	var v int64
	if err := n.raw(&v); err != nil {
		c.add(path, n.line, "%s is out of range", n.text)
	}
}

func (c *checker) duration(n *node, path string) {
	if n.kind != kindScalar {
		c.add(path, n.line, "expected a duration such as \"10s\" or \"1m\", got %s", n.describe())
		return
	}
	if !c.json && n.stype == scalarInt {
		// A bare YAML integer means seconds; refuse values that would
		// overflow a time.Duration rather than wrap around.
		secs, err := strconv.ParseInt(n.text, 0, 64)
		if err != nil || secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			c.add(path, n.line, "duration %s seconds is out of range", n.text)
			return
		}
	}
	var d structs.Duration
	if err := n.raw(&d); err != nil {
		msg := err.Error()
		if c.json && n.stype != scalarString && n.stype != scalarInt {
			msg = "expected a duration string such as \"10s\" or an integer number of nanoseconds, got " + n.describe()
		}
		c.add(path, n.line, "%s", stripLinePrefix(msg))
	}
}

// free checks a value of type any (the driver config): anything goes, but it
// must have a JSON form, because that is how it travels to the server.
func (c *checker) free(n *node, path string) {
	switch n.kind {
	case kindMap:
		for _, e := range n.entries {
			kp := join(path, e.key)
			if !e.keyIsString {
				c.add(kp, e.keyLine, "key %s must be a string; quote it", e.key)
				continue
			}
			c.check(e.value, anyType, kp)
		}
		c.duplicates(n, path)
	case kindSeq:
		for i, it := range n.items {
			c.check(it, anyType, fmt.Sprintf("%s[%d]", path, i))
		}
	case kindScalar:
		switch n.stype {
		case scalarFloat:
			var f float64
			if err := n.raw(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				c.add(path, n.line, "%s is not a finite number", n.text)
			}
		case scalarOther:
			c.add(path, n.line, "value %s has a YAML type with no JSON form; quote it to make it a string", n.describe())
		}
	}
}

func (c *checker) object(n *node, t reflect.Type, path string) {
	if n.kind != kindMap {
		what := "fields"
		if path == "" {
			what = "job fields (name, type, count, resources, driver ...)"
		}
		c.add(path, n.line, "expected a mapping of %s, got %s", what, n.describe())
		return
	}
	fields := docFields(t)
	for _, e := range n.entries {
		kp := join(path, e.key)
		f, ok := fields[e.key]
		if !ok || !e.keyIsString {
			c.add(kp, e.keyLine, "unknown field (valid fields%s: %s)%s", in(path), strings.Join(sortedKeys(fields), ", "), suggest(e.key, fields))
			continue
		}
		c.check(e.value, f.Type, kp)
	}
	c.duplicates(n, path)
}

func in(path string) string {
	if path == "" {
		return ""
	}
	return " of " + path
}

func (c *checker) duplicates(n *node, path string) {
	seen := map[string]int{}
	for _, e := range n.entries {
		if first, dup := seen[e.key]; dup {
			c.add(join(path, e.key), e.keyLine, "given twice (first on line %d)", first)
			continue
		}
		seen[e.key] = e.keyLine
	}
}

// docFields maps the document names (yaml tags) of a struct's fields; fields
// tagged "-" are server-managed and not part of a job document.
func docFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// suggest names the closest valid field for a likely typo.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	key = strings.ToLower(key)
	for _, name := range sortedKeys(fields) {
		d := editDistance(key, name)
		if len(key) > len(name) && strings.HasPrefix(key, name) {
			d = min(d, 2) // "operator" for "op", "memory" for "memory_mb"
		}
		if len(name) > len(key) && len(key) >= 3 && strings.HasPrefix(name, key) {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// stripLinePrefix removes "line N: " that structs.Duration adds to YAML
// errors, since Problem carries the line itself.
func stripLinePrefix(s string) string {
	if strings.HasPrefix(s, "line ") {
		if _, rest, ok := strings.Cut(s, ": "); ok {
			return rest
		}
	}
	return s
}
