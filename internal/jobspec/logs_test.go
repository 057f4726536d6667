package jobspec

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// The logs block is checked like every other field: unknown keys and wrong
// types by the schema walk, limits by the job's rules, with lines.
func TestParseLogsBlock(t *testing.T) {
	const head = "name: x\ndriver: exec\nconfig: {command: /bin/true}\nresources: {cpu: 100, memory_mb: 32}\n"
	cases := []struct {
		name string
		doc  string
		want structs.LogConfig
		err  string
	}{
		{"defaults", head, structs.LogConfig{MaxFiles: 10, MaxFileSizeMB: 10}, ""},
		{"set", head + "logs:\n  max_files: 3\n  max_file_size_mb: 1\n", structs.LogConfig{MaxFiles: 3, MaxFileSizeMB: 1}, ""},
		{"json", `{"name":"x","driver":"exec","config":{"command":"/bin/true"},"resources":{"cpu":1,"memory_mb":1},"logs":{"max_files":2}}`,
			structs.LogConfig{MaxFiles: 2, MaxFileSizeMB: 10}, ""},
		{"typo", head + "logs:\n  max_file: 3\n", structs.LogConfig{}, "line 6: logs.max_file: unknown field"},
		{"not a number", head + "logs:\n  max_files: many\n", structs.LogConfig{}, "line 6: logs.max_files: expected an integer"},
		{"over the limit", head + "logs:\n  max_files: 1000\n", structs.LogConfig{}, "line 6: logs.max_files: must be between 1 and 100"},
		{"negative size", head + "logs:\n  max_file_size_mb: -1\n", structs.LogConfig{}, "line 6: logs.max_file_size_mb: must be between 1 and 10240 MiB (got -1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ParseAndValidate([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if job.Logs != tc.want {
				t.Fatalf("logs = %+v, want %+v", job.Logs, tc.want)
			}
		})
	}
}
