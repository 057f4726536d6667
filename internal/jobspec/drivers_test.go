package jobspec

import (
	"strings"
	"testing"

	// The drivers register their config schemas, as in the gantry binary.
	_ "github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// TestParseAndValidateDrivers: the parser checks the driver and its config
// against the schemas the drivers registered (it does not import them),
// naming the field and its line.
func TestParseAndValidateDrivers(t *testing.T) {
	const res = "resources: {cpu: 100, memory_mb: 32}\n"
	tests := []struct {
		name string
		doc  string
		want []string // problems, in order; nil = valid
	}{
		{"exec", "name: x\ndriver: exec\nconfig: {command: /bin/true, args: [-c]}\n" + res, nil},
		{"mock", "name: x\ndriver: mock\nconfig:\n  run_for: 10s\n  exit_code: 3\n" + res, nil},
		{"unknown driver", "name: x\ndriver: dockr\n" + res,
			[]string{`line 2: driver: unknown driver "dockr" (known: exec, mock)`}},
		{"exec without command", "name: x\ndriver: exec\nconfig:\n  args: [-c]\n" + res,
			[]string{`line 4: config.command: is required (the program to run, e.g. "/bin/sh")`}},
		{"exec typo", "name: x\ndriver: exec\nconfig:\n  comand: /bin/true\n" + res,
			[]string{"line 4: config.comand: unknown option (known: [command args dir])", "line 4: config.command: is required"}},
		{"mock exit code", "name: x\ndriver: mock\nconfig:\n  exit_code: 256\n" + res,
			[]string{"line 4: config.exit_code: must be between 0 and 255 (got 256)"}},
		{"mock run_for", "name: x\ndriver: mock\nconfig:\n  run_for: 10\n" + res,
			[]string{`line 4: config.run_for: must be a duration string like "10s" (got 10)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAndValidate([]byte(tc.doc))
			wantProblems(t, err, tc.want)
		})
	}
}

// TestParseAndValidateWithoutDrivers: in a program that registers no
// driver, the parser leaves the driver to the server rather than refuse
// every job; nil rules skip only the driver checks.
func TestParseAndValidateWithoutDrivers(t *testing.T) {
	doc := []byte("name: x\ndriver: dockr\nresources: {cpu: 100, memory_mb: 32}\n")
	if _, err := parseAndValidate(doc, nil); err != nil {
		t.Fatalf("without driver rules: %v", err)
	}
	if _, err := parseAndValidate(doc, &driverschema.Registry{}); err == nil || !strings.Contains(err.Error(), "no task driver is registered") {
		t.Fatalf("with an empty registry: %v", err)
	}
	if _, err := parseAndValidate([]byte("name: x\ndriver: dockr\nresources: {cpu: 0, memory_mb: 32}\n"), nil); err == nil {
		t.Fatal("without driver rules, the other rules were skipped too")
	}
}
