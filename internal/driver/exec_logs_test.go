package driver

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestExecLifeline: with a lifeline, the task stops once every write end of
// the pipe is closed (the agent process died), escalating to SIGKILL for a
// task that ignores SIGTERM. Without one nothing happens (TestShimSurvivesParent).
func TestExecLifeline(t *testing.T) {
	cases := []struct {
		name   string
		script string
		signal syscall.Signal
	}{
		{"terminates", "echo ready; sleep 300", syscall.SIGTERM},
		{"kills after the grace", `trap "" TERM; echo ready; sleep 300`, syscall.SIGKILL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			d := newTestExec(t)
			d.opts.Lifeline = r
			d.opts.KillTimeout = 200 * time.Millisecond
			cfg := shTask(t, tc.script)
			task, err := d.Start(cfg)
			if err != nil {
				w.Close()
				t.Fatal(err)
			}
			eventually(t, "task ready", func() bool { return readLog(t, cfg.AllocDir, StdoutFile) == "ready\n" })
			select {
			case <-task.Exited():
				t.Fatalf("task ended with its lifeline intact: %+v", task.Result())
			case <-time.After(100 * time.Millisecond):
			}
			w.Close() // the "agent" dies
			if res := waitExit(t, task); res.Signal != int(tc.signal) || res.Err != nil {
				t.Fatalf("result = %+v, want killed by %v", res, tc.signal)
			}
		})
	}
}

// TestExecLogRotation runs a task that writes about 3 MiB of numbered lines
// under 1 MiB files: every file stays within the limit, no more files than
// allowed are kept, and the kept stream is the exact tail of the output
// (nothing lost or reordered at a rotation).
func TestExecLogRotation(t *testing.T) {
	const lines = 60000
	cases := []struct {
		name     string
		maxFiles int
		wantAll  bool
	}{
		{"room for everything", 10, true},
		{"only the newest kept", 2, false},
	}
	d := newTestExec(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shTask(t, `i=0; while [ $i -lt `+strconv.Itoa(lines)+` ]; do echo "line $i of the task's output, padded to fifty"; i=$((i+1)); done`)
			cfg.Logs = structs.LogConfig{MaxFiles: tc.maxFiles, MaxFileSizeMB: 1}
			task, err := d.Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res := waitExit(t, task); res.ExitCode != 0 {
				t.Fatalf("result = %+v", res)
			}
			names, _ := filepath.Glob(filepath.Join(cfg.AllocDir, StdoutFile+".*"))
			if len(names) > tc.maxFiles || len(names) < 2 {
				t.Fatalf("%d log files %v, want 2..%d", len(names), names, tc.maxFiles)
			}
			for _, n := range names {
				if st, err := os.Stat(n); err != nil || st.Size() > 1<<20 {
					t.Fatalf("%s: %v, size over 1 MiB", n, err)
				}
			}
			got := strings.Split(strings.TrimSuffix(readLog(t, cfg.AllocDir, StdoutFile), "\n"), "\n")
			if tc.wantAll && len(got) != lines {
				t.Fatalf("%d lines read back, want %d", len(got), lines)
			}
			first := lines - len(got)
			for i, l := range got {
				if want := "line " + strconv.Itoa(first+i) + " of the task's output, padded to fifty"; l != want {
					t.Fatalf("line %d of the kept log = %q, want %q", i, l, want)
				}
			}
		})
	}
}
