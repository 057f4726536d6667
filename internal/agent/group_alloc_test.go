package agent

import (
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestGroupAlloc: the agent keeps an allocation of a job with groups with
// its group's view (what runs), and leaves a one-group job's as it is.
func TestGroupAlloc(t *testing.T) {
	job := &structs.Job{ID: "shop", Name: "shop", Groups: []structs.TaskGroup{
		{Name: "web", Count: 1, Driver: "exec", Tasks: []structs.Task{{Name: "side", Driver: "mock"}}},
		{Name: "cache", Count: 1, Driver: "mock"},
	}}
	a := &structs.Allocation{ID: "a", JobID: "shop", Group: "web", Job: job}
	got := groupAlloc(a)
	if got == a || got.Job.Group != "web" || got.Job.Driver != "exec" || !got.Job.HasTask("side") || got.Job.HasGroups() {
		t.Fatalf("groupAlloc = %+v (job %+v)", got, got.Job)
	}
	if a.Job != job {
		t.Fatal("groupAlloc changed the server's allocation")
	}
	if again := groupAlloc(got); again != got {
		t.Fatal("groupAlloc of a view is not the view")
	}
	if names := taskNames(got.Job); len(names) != 2 || names[0] != "web" || names[1] != "side" {
		t.Fatalf("task names = %v, want the group's main task first", names)
	}
	flat := &structs.Allocation{ID: "b", Job: &structs.Job{Name: "web", Driver: "exec"}}
	if groupAlloc(flat) != flat {
		t.Fatal("a job without groups is kept as it is")
	}
	if gone := groupAlloc(&structs.Allocation{ID: "c", Group: "db", Job: job}); gone.Job != nil {
		t.Fatal("an allocation of a group the job lacks keeps a job")
	}
}
