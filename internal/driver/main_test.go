package driver

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/driver/cgroups"
	"github.com/gantry-project/gantry/internal/driver/shim"
)

// The test binary doubles as the task shim (GANTRY_TASK_SHIM=1) and as a
// short-lived "agent" that starts a task and exits (GANTRY_TEST_LAUNCH), so
// tests can check that the shim outlives its parent.
func TestMain(m *testing.M) {
	if os.Getenv(shim.EnvMarker) == "1" {
		os.Exit(shim.Main())
	}
	if spec := os.Getenv("GANTRY_TEST_LAUNCH"); spec != "" {
		os.Exit(launch(spec))
	}
	goleak.VerifyTestMain(m)
}

// launchSpec is what the launcher process starts.
type launchSpec struct {
	Task       TaskConfig `json:"task"`
	HandleFile string     `json:"handle_file"`
}

func launch(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ls launchSpec
	if err := json.Unmarshal(b, &ls); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := NewExec(ExecOptions{ShimCommand: []string{os.Args[0]}, Cgroups: cgroups.Disabled("test")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	t, err := d.Start(&ls.Task)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	t.Detach()
	if err := shim.WriteJSONAtomic(ls.HandleFile, t.Handle()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Exit without waiting for the task: the shim must survive us.
	return 0
}
