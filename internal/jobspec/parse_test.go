package jobspec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

const webYAML = `# a service
name: web
type: service
priority: 60
count: 5
constraints:
  - label: zone
    op: "="
    value: a
  - label: attr.os
    op: in
    values: [linux, darwin]
placement: spread
resources:
  cpu: 250
  memory_mb: 64
driver: exec
config:
  command: /bin/sh
  args: ["-c", "while true; do echo hi; sleep 1; done"]
  port: 8080
env:
  PORT: 8080
  MODE: prod
restart:
  attempts: 3
  interval: 5m
  delay: 2
reschedule:
  unlimited: true
  delay: 500ms
`

const webJSON = `{
  "name": "web",
  "type": "service",
  "priority": 60,
  "count": 5,
  "constraints": [
    {"label": "zone", "op": "=", "value": "a"},
    {"label": "attr.os", "op": "in", "values": ["linux", "darwin"]}
  ],
  "placement": "spread",
  "resources": {"cpu": 250, "memory_mb": 64},
  "driver": "exec",
  "config": {"command": "/bin/sh", "args": ["-c", "while true; do echo hi; sleep 1; done"], "port": 8080},
  "env": {"PORT": "8080", "MODE": "prod"},
  "restart": {"attempts": 3, "interval": "5m", "delay": "2s"},
  "reschedule": {"unlimited": true, "delay": 500000000}
}`

func wantWeb() *structs.Job {
	return &structs.Job{
		Name: "web", Type: structs.JobTypeService, Priority: 60, Count: 5,
		Constraints: []structs.Constraint{
			{Label: "zone", Operator: "=", Value: "a"},
			{Label: "attr.os", Operator: "in", Values: []string{"linux", "darwin"}},
		},
		Placement: "spread",
		Resources: structs.Resources{CPU: 250, MemoryMB: 64},
		Driver:    "exec",
		Config: map[string]any{
			"command": "/bin/sh",
			"args":    []any{"-c", "while true; do echo hi; sleep 1; done"},
			"port":    float64(8080),
		},
		Env:        map[string]string{"PORT": "8080", "MODE": "prod"},
		Restart:    structs.RestartPolicy{Attempts: 3, Interval: structs.Duration(5 * time.Minute), Delay: structs.Duration(2 * time.Second)},
		Reschedule: structs.ReschedulePolicy{Unlimited: true, Delay: structs.Duration(500 * time.Millisecond)},
	}
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want *structs.Job
	}{
		{"yaml", webYAML, wantWeb()},
		{"json", webJSON, wantWeb()},
		{"json with leading space and BOM", "\xef\xbb\xbf  \n" + webJSON, wantWeb()},
		{"minimal", "name: x\ndriver: mock\n", &structs.Job{Name: "x", Driver: "mock"}},
		{"explicit document start", "---\nname: x\n", &structs.Job{Name: "x"}},
		{"nulls are unset", "name: x\nconfig:\nenv:\nconstraints:\nrestart:\n", &structs.Job{Name: "x"}},
		{"empty collections are unset", "name: x\nconfig: {}\nenv: {}\nconstraints: []\n", &structs.Job{Name: "x"}},
		{"yaml 1.1 booleans", "name: x\nreschedule:\n  unlimited: yes\n", &structs.Job{Name: "x", Reschedule: structs.ReschedulePolicy{Unlimited: true}}},
		{"json nanosecond duration", `{"name":"x","restart":{"delay":1000}}`, &structs.Job{Name: "x", Restart: structs.RestartPolicy{Delay: 1000}}},
		{"hex integer", "name: x\nresources: {cpu: 0x10}\n", &structs.Job{Name: "x", Resources: structs.Resources{CPU: 16}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	big := "name: x\nconfig:\n  blob: \"" + strings.Repeat("a", MaxSize) + "\"\n"
	cases := []struct {
		name string
		doc  string
		is   error    // a sentinel, when the class has one
		want []string // substrings of the message, in order
	}{
		{"empty", "", ErrEmpty, nil},
		{"only whitespace", " \n\t\n", ErrEmpty, nil},
		{"only comments", "# nothing\n", ErrEmpty, nil},
		{"null document", "---\n~\n", ErrEmpty, nil},
		{"too large", big, ErrTooLarge, []string{"1024 KiB limit"}},
		{"two yaml documents", "name: a\n---\nname: b\n", nil, []string{"line 2: ", "second YAML document"}},
		{"json then more", `{"name":"a"} {"name":"b"}`, nil, []string{"more data after the JSON object"}},
		{"yaml syntax", "name: x\n  count: 3\n", nil, []string{"line 2: YAML syntax: "}},
		{"json syntax", "{\n  \"name\": \"x\",\n  \"count\": 3,,\n}", nil, []string{"line 3, column 14: JSON syntax (a document starting with '{' is read as JSON): invalid character ','"}},
		{"json truncated", `{"name": "x"`, nil, []string{"JSON syntax", "unexpected end"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"line 1: expected a mapping of job fields"}},
		{"scalar document", "hello\n", nil, []string{"expected a mapping of job fields", `"hello"`}},
		{"unknown top-level field", "name: x\ncont: 3\n", nil, []string{"line 2: cont: unknown field (valid fields: config, constraints, count,", `did you mean "count"?`}},
		{"unknown nested field", "name: x\nresources:\n  cpu: 100\n  memroy_mb: 64\n", nil, []string{"line 4: resources.memroy_mb: unknown field (valid fields of resources: cpu, memory_mb)", `did you mean "memory_mb"?`}},
		{"unknown json field", `{"name": "x", "resources": {"cpus": 1}}`, nil, []string{"line 1: resources.cpus: unknown field"}},
		{"server field in document", `{"name": "x", "status": "running"}`, nil, []string{"status: unknown field"}},
		{"unknown constraint field", "constraints:\n  - label: zone\n    operator: =\n", nil, []string{"line 3: constraints[0].operator: unknown field", `did you mean "op"?`}},
		{"string for int", "name: x\ncount: three\n", nil, []string{`line 2: count: expected an integer, the number of copies, got "three"`}},
		{"float for int", "resources:\n  cpu: 1.5\n", nil, []string{"line 2: resources.cpu: expected an integer of millicores (1000 = one core), e.g. 250, got number 1.5 (not a whole number)"}},
		{"exponent for int", "resources:\n  cpu: 1e3\n", nil, []string{"resources.cpu: expected an integer", "got number 1e3 (write it without a fraction or exponent)"}},
		{"yaml flow mapping read as json", "{name: web}", nil, []string{"line 1, column 2: JSON syntax (a document starting with '{' is read as JSON): invalid character 'n'"}},
		{"int out of range", "count: 99999999999999999999\n", nil, []string{"count: expected an integer"}},
		{"json string for int", `{"resources": {"memory_mb": "64"}}`, nil, []string{`resources.memory_mb: expected an integer of MiB, e.g. 128, got "64"`}},
		{"json number for string", `{"name": 5}`, nil, []string{"name: expected a string, got number 5"}},
		{"json number in env", `{"env": {"PORT": 8080}}`, nil, []string{"env.PORT: expected a string, got number 8080"}},
		{"list for string", "name: [a]\n", nil, []string{"name: expected a string, got a list"}},
		{"mapping for list", "constraints:\n  label: zone\n", nil, []string{"line 2: constraints: expected a list, got a mapping"}},
		{"scalar for struct", "resources: 100\n", nil, []string{"resources: expected a mapping of fields, got number 100"}},
		{"bad bool", "reschedule:\n  unlimited: maybe\n", nil, []string{`reschedule.unlimited: expected true or false, got "maybe"`}},
		{"bad duration", "restart:\n  delay: soon\n", nil, []string{`line 2: restart.delay: invalid duration "soon"`}},
		{"duration overflow", "restart:\n  delay: 99999999999999\n", nil, []string{"restart.delay: duration 99999999999999 seconds is out of range"}},
		{"json bool duration", `{"restart": {"delay": true}}`, nil, []string{"restart.delay: expected a duration string"}},
		{"unquoted != is a YAML tag", "constraints:\n  - label: zone\n    op: !=\n    value: a\n", nil, []string{`line 3: constraints[0].op: expected a string, got the YAML tag != (quote values that start with "!", e.g. "!=")`}},
		{"env list", "env:\n  - A=1\n", nil, []string{"env: expected a mapping of names to values, got a list"}},
		{"env nested", "env:\n  A: {b: 1}\n", nil, []string{"env.A: expected a string, got a mapping"}},
		{"duplicate yaml key", "name: a\ncount: 1\ncount: 2\n", nil, []string{"line 3: count: given twice (first on line 2)"}},
		{"duplicate json key", `{"name": "a",` + "\n" + `"name": "b"}`, nil, []string{"line 2: name: given twice (first on line 1)"}},
		{"yaml alias", "env: &e {A: b}\nconfig: *e\n", nil, []string{"anchors and aliases"}},
		{"config non-string key", "config:\n  1: x\n", nil, []string{"config.1: key 1 must be a string"}},
		{"config nan", "config:\n  x: .nan\n", nil, []string{"config.x: .nan is not a finite number"}},
		{"config timestamp", "config:\n  x: !!timestamp 2001-12-14\n", nil, []string{"config.x: value", "no JSON form"}},
		{"too deep", "config:\n  x: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", nil, []string{"nested more than 64 levels"}},
		{"too deep json", `{"config": {"x": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}}", nil, []string{"nested more than 64 levels"}},
		{"several problems at once", "name: x\ncount: a\npriority: b\nfoo: 1\n", nil, []string{"invalid job document:\n  line 2: count", "\n  line 3: priority", "\n  line 4: foo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want an error", job)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %q is not %v", err, tc.is)
			}
			if tc.is == nil {
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("error %q (%T) is not a *jobspec.Error", err, err)
				}
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error message\n%s\ndoes not contain (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestParseAndValidate(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string // substrings of the error, or nil for success
	}{
		{"valid gets defaults", "name: x\ndriver: exec\nconfig: {command: /bin/true}\nresources: {cpu: 100, memory_mb: 32}\n", nil},
		{"rules with lines", "name: x\npriority: 200\ndriver: exec\nconfig: {command: /bin/true}\nresources:\n  cpu: 0\n  memory_mb: 32\n",
			[]string{"line 2: priority: must be between 1 and 100 (got 200)", "line 6: resources.cpu: must be > 0 millicores"}},
		{"missing field has no line", "name: x\nresources: {cpu: 100, memory_mb: 32}\n", []string{"document: driver: is required"}},
		{"constraint line", "name: x\ndriver: exec\nconfig: {command: /bin/true}\nresources: {cpu: 1, memory_mb: 1}\nconstraints:\n  - label: zone\n    op: ~=\n",
			[]string{`line 7: constraints[0].op: must be one of`}},
		{"parse errors come first", "name: x\ncount: lots\n", []string{"count: expected an integer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ParseAndValidate([]byte(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseAndValidate: %v", err)
				}
				if job.ID != job.Name || job.Type != structs.JobTypeService || job.Priority != structs.DefaultPrio {
					t.Fatalf("defaults not applied: %+v", job)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAndValidate succeeded, want error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains("\n"+err.Error(), w) {
					t.Fatalf("error message\n%s\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestExamples keeps the shipped examples parseable and valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseAndValidate(data); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		})
	}
}

// TestParseJobKinds: the blocks of job types parse, in YAML and JSON, and
// their mistakes are reported with the field and line.
func TestParseJobKinds(t *testing.T) {
	yamlDoc := `name: resize
type: batch
meta: {owner: media}
parameterized: {payload: required, meta_required: [size]}
resources: {cpu: 10, memory_mb: 8}
driver: mock
`
	j, err := parseAndValidate([]byte(yamlDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Parameterized == nil || j.Parameterized.Payload != "required" || j.Meta["owner"] != "media" {
		t.Fatalf("job %+v", j)
	}
	jsonDoc := `{"name": "report", "type": "batch", "periodic": {"cron": "0 8 * * *", "time_zone": "Europe/Paris", "prohibit_overlap": true},
	  "resources": {"cpu": 10, "memory_mb": 8}, "driver": "mock"}`
	j, err = parseAndValidate([]byte(jsonDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := j.Periodic; p == nil || p.Cron != "0 8 * * *" || !p.ProhibitOverlap {
		t.Fatalf("periodic %+v", p)
	}
	for doc, want := range map[string]string{
		"name: x\ntype: batch\nperiodic: {crons: x}\nresources: {cpu: 1, memory_mb: 1}\ndriver: mock\n":             "line 3",
		"name: x\ntype: batch\nperiodic: {cron: \"61 * * * *\"}\nresources: {cpu: 1, memory_mb: 1}\ndriver: mock\n": "line 3",
		"name: x\nparameterized: [a]\nresources: {cpu: 1, memory_mb: 1}\ndriver: mock\n":                            "line 2",
	} {
		_, err := parseAndValidate([]byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: %v, want an error at %s", doc, err, want)
		}
	}
}
