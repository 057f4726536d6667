package agent

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestRestartBackoff: a task that keeps exiting is restarted in place
// after waits that grow as the restart policy's delay_function says, up to
// max_delay, then fails. The policy is written as in a job document.
func TestRestartBackoff(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	al := testAlloc(a.NodeID(), structs.JobTypeService, "mock", map[string]any{"run_for": "1ms", "exit_code": 1})
	policy := `{"attempts":3,"interval":"0s","delay":"1ms","delay_function":"exponential","max_delay":"3ms"}`
	al.Job.Restart = structs.RestartPolicy{}
	if err := json.Unmarshal([]byte(policy), &al.Job.Restart); err != nil {
		t.Fatal(err)
	}
	fs.addAlloc(al)
	final := fs.waitStatus(al.ID, structs.AllocClientFailed)
	// Three restarts fit in the last MaxTaskEvents events.
	var got []string
	for _, ev := range final.TaskState.Events {
		if ev.Type == EventRestarting {
			msg, _, _ := strings.Cut(ev.Message, " (")
			got = append(got, msg)
		}
	}
	var want []string
	for i, wait := range []string{"1ms", "2ms", "3ms"} {
		want = append(want, fmt.Sprintf("restart %d of 3 within 0s, in %s", i+1, wait))
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") || final.TaskState.Restarts != 3 {
		t.Fatalf("restarts %d, events:\n  %s\nwant:\n  %s", final.TaskState.Restarts, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
