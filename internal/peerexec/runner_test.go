package peerexec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

type updates struct {
	mu  sync.Mutex
	got map[string][]structs.TaskState
	st  map[string]string
}

func (u *updates) update(id, status string, ts structs.TaskState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got[id] = append(u.got[id], ts)
	u.st[id] = status
}

func (u *updates) status(id string) (string, structs.TaskState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.got[id]
	if len(l) == 0 {
		return "", structs.TaskState{}
	}
	return u.st[id], l[len(l)-1]
}

// TestRunnerReattach: a runner that goes away without stopping its tasks
// (a crash) leaves their records; a new runner on the same directory
// re-attaches to them instead of starting them again.
func TestRunnerReattach(t *testing.T) {
	dir := t.TempDir()
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Driver: "mock", Count: 1}
	a := &structs.Allocation{ID: "a1", JobID: "web", Job: job, Resources: structs.Resources{CPU: 10}}
	u1 := &updates{got: map[string][]structs.TaskState{}, st: map[string]string{}}
	r1 := NewDriverRunner([]driver.Driver{driver.NewMock(nil)}, dir, u1.update)
	if err := r1.Start(a); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "running", 5*time.Second, func() bool { s, _ := u1.status("a1"); return s == structs.AllocClientRunning })
	_, ts1 := u1.status("a1")
	r1.Detach() // the peer crashed: the task runs on
	// a mock task writes nothing in its directory: none is made
	if _, err := os.Stat(filepath.Join(dir, "a1")); !os.IsNotExist(err) {
		t.Fatalf("a directory for a mock task: %v", err)
	}

	// a broken record file (as peers wrote them before the record log)
	// is dropped with an error naming it
	if err := os.MkdirAll(filepath.Join(dir, "bad"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad", taskRecordFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}

	u2 := &updates{got: map[string][]structs.TaskState{}, st: map[string]string{}}
	r2 := NewDriverRunner([]driver.Driver{driver.NewMock(nil)}, dir, u2.update)
	defer r2.Close()
	var adopted []string
	errs := r2.Recover(func(a *structs.Allocation, _ *driver.Handle) { adopted = append(adopted, a.ID) })
	if len(adopted) != 1 || adopted[0] != "a1" {
		t.Fatalf("adopted %v, want [a1]", adopted)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad") {
		t.Fatalf("errors %v, want one naming the bad record", errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad", taskRecordFile)); !os.IsNotExist(err) {
		t.Fatal("the bad record was kept")
	}
	waitUntil(t, "re-attached", 5*time.Second, func() bool { s, _ := u2.status("a1"); return s == structs.AllocClientRunning })
	_, ts2 := u2.status("a1")
	if ts2.StartedAt != ts1.StartedAt {
		t.Fatalf("started at %d, want the first start %d (not started again)", ts2.StartedAt, ts1.StartedAt)
	}
	last := ts2.Events[len(ts2.Events)-1]
	if last.Type != "Reattached" {
		t.Fatalf("last event %+v, want Reattached", last)
	}
	// stopped by its owner: its record ends with it
	r2.Stop("a1")
	waitUntil(t, "stopped", 5*time.Second, func() bool { s, _ := u2.status("a1"); return s == structs.AllocClientComplete })
	waitUntil(t, "record ended", 5*time.Second, func() bool { return !r2.log.has("a1") })
	r2.Close()
	if got, lines, report := loadAll(t, filepath.Join(dir, recordLogFile)); len(got) != 0 || lines != "" || report != nil {
		t.Fatalf("records after the stop: %q, notices %q, report %v", got, lines, report)
	}
}

// TestRunnerAdoptsRecordFiles: a record file a peer before the record
// log left is re-attached, folded into the log and removed; its task's
// end then ends it in the log.
func TestRunnerAdoptsRecordFiles(t *testing.T) {
	dir := t.TempDir()
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Driver: "mock", Count: 1}
	a := &structs.Allocation{ID: "a2", JobID: "web", Job: job, NodeID: "p1"}
	mock := driver.NewMock(nil)
	task, err := mock.Start(&driver.TaskConfig{AllocID: a.ID, JobID: a.JobID, JobType: job.Type, AllocDir: filepath.Join(dir, a.ID)})
	if err != nil {
		t.Fatal(err)
	}
	task.Detach()
	b, err := json.Marshal(taskRecord{Alloc: a, Handle: task.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, a.ID, taskRecordFile)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	u := &updates{got: map[string][]structs.TaskState{}, st: map[string]string{}}
	r := NewDriverRunner([]driver.Driver{mock}, dir, u.update)
	var adopted []string
	if errs := r.Recover(func(a *structs.Allocation, _ *driver.Handle) { adopted = append(adopted, a.ID) }); len(errs) != 0 {
		t.Fatal(errs)
	}
	if !slices.Equal(adopted, []string{"a2"}) || !r.log.has("a2") {
		t.Fatalf("adopted %v, in the log: %v", adopted, r.log.has("a2"))
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the record file was kept: %v", err)
	}
	waitUntil(t, "re-attached", 5*time.Second, func() bool { s, _ := u.status("a2"); return s == structs.AllocClientRunning })
	r.Close() // stops it: its record ends
	if got, _, _ := loadAll(t, filepath.Join(dir, recordLogFile)); len(got) != 0 {
		t.Fatalf("records after the stop: %q", got)
	}
}

func TestAdoptLocal(t *testing.T) {
	e, err := New(DefaultConfig("a"), func(string, *Message) {}, NewMemStore(), &nopRunner{})
	if err != nil {
		t.Fatal(err)
	}
	job := &structs.Job{ID: "web", Name: "web", Type: structs.JobTypeService, Driver: "mock", Count: 1}
	e.AdoptLocal(time.Unix(1, 0), &structs.Allocation{ID: "a1", JobID: "web", Job: job, NodeID: "old"})
	got := e.LocalTask("a1")
	if got == nil || got.NodeID != "a" || got.ClientStatus != structs.AllocClientRunning || e.LocalTasks() != 1 {
		t.Fatalf("adopted task %+v", got)
	}
}
