// Package jobspec reads job documents: the YAML (or JSON) files users write
// to describe a job. It is strict, because a typo in a job file should fail
// loudly at submit time rather than run with a default: unknown fields, wrong
// types and extra documents are errors that name the field and the line.
//
// Parse only decodes. ParseAndValidate also applies the server's defaults
// and rules (structs.Job Canonicalize and Validate), so the CLI can refuse a
// bad file before it reaches the server.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// MaxSize is the largest job document accepted, in bytes. Real documents
// are a few hundred bytes; the limit keeps a mistaken or hostile input from
// costing memory on the server.
const MaxSize = 1 << 20

var (
	// ErrEmpty is returned for a document with no content.
	ErrEmpty = errors.New("job document is empty")
	// ErrTooLarge is returned for a document over MaxSize.
	ErrTooLarge = fmt.Errorf("job document is larger than the %d KiB limit", MaxSize>>10)
)

// Problem is one thing wrong with a job document.
type Problem struct {
	// Field is the path of the field, as "resources.cpu" or
	// "constraints[0].op"; empty for the document as a whole.
	Field string `json:"field,omitempty"`
	// Line and Column are 1-based; 0 when not known (a missing field).
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Rule   string `json:"rule"`
}

func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.Column > 0:
		fmt.Fprintf(&b, "line %d, column %d: ", p.Line, p.Column)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Rule)
	return b.String()
}

// Error lists every problem found in a document, so a user fixes them all in
// one round.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid job document: " + e.Problems[0].String()
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid job document:\n  " + strings.Join(parts, "\n  ")
}

// Parse decodes a job document, YAML or JSON (a document whose first
// non-space character is '{' is read as JSON). It does not apply defaults or
// validate values; see ParseAndValidate.
func Parse(data []byte) (*structs.Job, error) {
	job, _, err := parse(data)
	return job, err
}

// ParseAndValidate decodes a job document, applies defaults
// (Canonicalize) and checks it (Validate, with the config rules of every
// driver registered in driverschema.Default: the gantry binary links them
// all). Validation errors are returned as *Error with the line of each
// field that is present. In a program that registers no driver, the driver
// and its config are left for the server to check.
func ParseAndValidate(data []byte) (*structs.Job, error) {
	var drivers structs.DriverRules
	if len(driverschema.Default.Names()) > 0 {
		drivers = driverschema.Default
	}
	return parseAndValidate(data, drivers)
}

// parseAndValidate is ParseAndValidate with the driver rules given (nil
// skips the driver checks).
func parseAndValidate(data []byte, drivers structs.DriverRules) (*structs.Job, error) {
	job, lines, err := parse(data)
	if err != nil {
		return nil, err
	}
	job.Canonicalize()
	if err := job.Validate(drivers); err != nil {
		var ve *structs.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		out := &Error{}
		for _, fe := range ve.Errors {
			out.Problems = append(out.Problems, Problem{Field: fe.Field, Line: lineOf(lines, fe.Field), Rule: fe.Rule})
		}
		return nil, out
	}
	return job, nil
}

// lineOf finds the line of a field, or of its nearest parent present in the
// document.
func lineOf(lines map[string]int, field string) int {
	for f := field; f != ""; {
		if l, ok := lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

var jobType = reflect.TypeFor[structs.Job]()

func parse(data []byte) (*structs.Job, map[string]int, error) {
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("%w (got %d KiB)", ErrTooLarge, len(data)>>10)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, ErrEmpty
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		line, col := lineCol(data, int64(off))
		return nil, nil, &Error{Problems: []Problem{{Line: line, Column: col, Rule: "the document is not valid UTF-8 text"}}}
	}
	isJSON := trimmed[0] == '{'
	var tree *node
	var err error
	if isJSON {
		tree, err = jsonTree(data)
	} else {
		tree, err = yamlTree(data)
	}
	if err != nil {
		return nil, nil, err
	}
	if tree.kind == kindNull {
		return nil, nil, ErrEmpty
	}
	c := &checker{json: isJSON, lines: map[string]int{}}
	c.check(tree, jobType, "")
	if len(c.probs) > 0 {
		return nil, nil, &Error{Problems: c.probs}
	}

	// The check passed; the real decoders now fill the struct. They run
	// strict too, as a safety net should the check and they ever disagree.
	job := &structs.Job{}
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(job)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		err = dec.Decode(job)
	}
	if err != nil {
		return nil, nil, &Error{Problems: []Problem{{Rule: err.Error()}}}
	}
	if err := normalize(job); err != nil {
		return nil, nil, err
	}
	return job, c.lines, nil
}

// normalize makes a YAML and a JSON document with the same content decode
// to the same job: config values take their JSON form (numbers float64,
// maps map[string]any), which is what the server sees, and empty
// collections are nil, as if left out.
func normalize(job *structs.Job) error {
	if err := normalizeSpec(job, ""); err != nil {
		return err
	}
	normalizeJobKinds(job) // kinds.go
	return normalizeGroups(job)
}

// normalizeSpec normalizes the fields of one group: a one-group job's, or
// a group's carried in a Job; prefix names the group in errors.
func normalizeSpec(job *structs.Job, prefix string) error {
	var err error
	if job.Config, err = normalizeConfig(job.Config, prefix+"config"); err != nil {
		return err
	}
	if len(job.Env) == 0 {
		job.Env = nil
	}
	// Task groups and volumes (tasks.go in structs).
	if len(job.Volumes) == 0 {
		job.Volumes = nil
	}
	if len(job.VolumeMounts) == 0 {
		job.VolumeMounts = nil
	}
	if len(job.Tasks) == 0 {
		job.Tasks = nil
	}
	for i := range job.Tasks {
		t := &job.Tasks[i]
		if t.Config, err = normalizeConfig(t.Config, fmt.Sprintf("%stasks[%d].config", prefix, i)); err != nil {
			return err
		}
		if len(t.Env) == 0 {
			t.Env = nil
		}
		if len(t.VolumeMounts) == 0 {
			t.VolumeMounts = nil
		}
	}
	// Services and checks (health.go in structs).
	if len(job.Services) == 0 {
		job.Services = nil
	}
	for i := range job.Services {
		svc := &job.Services[i]
		if len(svc.Tags) == 0 {
			svc.Tags = nil
		}
		if len(svc.Checks) == 0 {
			svc.Checks = nil
		}
		for k := range svc.Checks {
			if len(svc.Checks[k].Args) == 0 {
				svc.Checks[k].Args = nil
			}
		}
	}
	if len(job.Constraints) == 0 {
		job.Constraints = nil
	}
	if job.Network != nil && len(job.Network.Ports) == 0 {
		job.Network = nil // `network: {}` is the same as leaving it out
	}
	for i := range job.Constraints {
		if len(job.Constraints[i].Values) == 0 {
			job.Constraints[i].Values = nil
		}
	}
	return nil
}

// normalizeGroups does for each group what normalize does for a one-group
// job's fields.
func normalizeGroups(job *structs.Job) error {
	if len(job.Groups) == 0 {
		job.Groups = nil
		return nil
	}
	for i := range job.Groups {
		g := &job.Groups[i]
		v := &structs.Job{Config: g.Config, Env: g.Env, Volumes: g.Volumes, VolumeMounts: g.VolumeMounts,
			Tasks: g.Tasks, Constraints: g.Constraints, Network: g.Network, Services: g.Services}
		if err := normalizeSpec(v, fmt.Sprintf("groups[%d].", i)); err != nil {
			return err
		}
		g.Config, g.Env, g.Volumes, g.VolumeMounts = v.Config, v.Env, v.Volumes, v.VolumeMounts
		g.Tasks, g.Constraints, g.Network, g.Services = v.Tasks, v.Constraints, v.Network, v.Services
	}
	return nil
}

// normalizeConfig gives a driver config block its JSON form (nil when
// empty); field names the block in errors.
func normalizeConfig(config map[string]any, field string) (map[string]any, error) {
	if len(config) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(config)
	if err != nil {
		return nil, &Error{Problems: []Problem{{Field: field, Rule: "has no JSON form: " + err.Error()}}}
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, &Error{Problems: []Problem{{Field: field, Rule: err.Error()}}}
	}
	return out, nil
}
