package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestStartFailureReported: a task whose command cannot be started reports
// the start error (events and description), and its last attempt has no
// start time, PID or exit code, even after an earlier attempt ran.
func TestStartFailureReported(t *testing.T) {
	dir := t.TempDir()
	vanishing := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(vanishing, []byte("#!/bin/sh\nrm -f \"$0\"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		config   map[string]any
		attempts int
		want     string
	}{
		{"not in PATH", map[string]any{"command": "nosuch"}, 0, `task failed to start: exec: "nosuch": executable file not found in $PATH`},
		{"gone after a first run", map[string]any{"command": vanishing}, 1, "no such file or directory"},
	}
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			al := testAlloc(a.NodeID(), structs.JobTypeBatch, "exec", tc.config)
			al.Job.Restart.Attempts = tc.attempts
			fs.addAlloc(al)
			got := fs.waitStatus(al.ID, structs.AllocClientFailed)
			ts := got.TaskState
			if !strings.Contains(got.ClientDescription, tc.want) {
				t.Errorf("description %q does not report the start error %q", got.ClientDescription, tc.want)
			}
			if ts.StartedAt != 0 || ts.PID != 0 || ts.ExitCode != 0 || !ts.Failed || ts.State != structs.TaskStateDead {
				t.Errorf("task state = %+v, want dead and failed with no start, PID or exit code", ts)
			}
			var failures []string
			for _, ev := range ts.Events {
				if ev.Type == EventDriverFailure {
					failures = append(failures, ev.Message)
				}
			}
			if len(failures) == 0 || !strings.Contains(failures[len(failures)-1], tc.want) {
				t.Errorf("Driver Failure events %q do not report %q", failures, tc.want)
			}
		})
	}
}
