package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/shim"
	"github.com/gantry-project/gantry/internal/durable"
	"github.com/gantry-project/gantry/internal/structs"
)

// Files in the data dir.
const (
	nodeIDFile = "node-id"
	stateDir   = "state"
	allocsDir  = "allocs"
)

var nodeIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// loadNodeID returns the node ID saved in dataDir, creating it on first
// use, so a restarted agent is the same node.
func loadNodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !nodeIDRE.MatchString(id) {
			return "", fmt.Errorf("node ID file %s holds %q, not a UUID; fix or delete it", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading node ID: %w", err)
	}
	id := structs.NewUUID()
	if err := durable.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("saving node ID: %w", err)
	}
	return id, nil
}

// Phases of an allocation in the local state. They decide what a restarted
// agent does with it.
const (
	// phaseReceived: never started; start it if the server still wants it.
	phaseReceived = "received"
	// phaseStarting: a driver Start was in flight. Without a handle, the
	// task may or may not run: the alloc is reported lost, never started
	// again.
	phaseStarting = "starting"
	// phaseRunning: a task runs under Handle; re-attach to it.
	phaseRunning = "running"
	// phaseRestartWait: between an exit and a restart in place; nothing
	// runs, so starting again is safe.
	phaseRestartWait = "restart-wait"
	// phaseDone: finished for good; report, never run again.
	phaseDone = "done"
)

// allocRecord is what the agent remembers of one allocation.
type allocRecord struct {
	Alloc             *structs.Allocation `json:"alloc"`
	Phase             string              `json:"phase"`
	Handle            *driver.Handle      `json:"handle,omitempty"`
	ClientStatus      string              `json:"client_status"`
	ClientDescription string              `json:"client_description,omitempty"`
	TaskState         structs.TaskState   `json:"task_state"`
	// RestartTimes are unix nanoseconds of recent restarts, for the
	// restart policy's interval.
	RestartTimes []int64 `json:"restart_times,omitempty"`
	// Tasks are the allocation's extra tasks (task groups), by name.
	Tasks map[string]*taskRecord `json:"tasks,omitempty"`
	// Health is the copy's last verdict (health.go); replaced, never
	// changed in place, so copies of the record may share it.
	Health *structs.AllocHealth `json:"health,omitempty"`
}

// report is the record as the agent reports it to the servers.
func (r *allocRecord) report() *structs.AllocClientUpdate {
	return &structs.AllocClientUpdate{ID: r.Alloc.ID, ClientStatus: r.ClientStatus,
		ClientDescription: r.ClientDescription, TaskState: r.TaskState, TaskStates: r.taskStates(), Health: r.Health}
}

// taskRecord is what the agent remembers of one extra task.
type taskRecord struct {
	// Handle is set while the task runs, to re-attach after a restart.
	Handle       *driver.Handle    `json:"handle,omitempty"`
	State        structs.TaskState `json:"state"`
	RestartTimes []int64           `json:"restart_times,omitempty"`
}

func (r *allocRecord) copy() *allocRecord {
	c := *r
	c.TaskState.Events = append([]structs.TaskEvent(nil), r.TaskState.Events...)
	c.RestartTimes = append([]int64(nil), r.RestartTimes...)
	if r.Tasks != nil {
		c.Tasks = make(map[string]*taskRecord, len(r.Tasks))
		for k, t := range r.Tasks {
			tc := *t
			tc.State.Events = append([]structs.TaskEvent(nil), t.State.Events...)
			tc.RestartTimes = append([]int64(nil), t.RestartTimes...)
			c.Tasks[k] = &tc
		}
	}
	return &c
}

// taskStates is the report of the extra tasks' states (nil without any).
func (r *allocRecord) taskStates() map[string]structs.TaskState {
	if len(r.Tasks) == 0 {
		return nil
	}
	out := make(map[string]structs.TaskState, len(r.Tasks))
	for k, t := range r.Tasks {
		out[k] = t.State
	}
	return out
}

// task returns the record of an extra task, creating it.
func (r *allocRecord) task(name string) *taskRecord {
	if r.Tasks == nil {
		r.Tasks = map[string]*taskRecord{}
	}
	t := r.Tasks[name]
	if t == nil {
		t = &taskRecord{State: structs.TaskState{State: structs.TaskStatePending}}
		r.Tasks[name] = t
	}
	return t
}

// stateStore is the agent's local allocation state: one JSON file per
// allocation in <data-dir>/state/, written atomically on every transition.
// One file each keeps a transition's cost independent of how many
// allocations the node holds.
type stateStore struct {
	dir  string
	mu   sync.Mutex
	recs map[string]*allocRecord
}

func openState(dataDir string) (*stateStore, error) {
	s := &stateStore{dir: filepath.Join(dataDir, stateDir), recs: map[string]*allocRecord{}}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("local state: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("reading local state: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue // temp files of an interrupted write are ignored
		}
		path := filepath.Join(s.dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading local state: %w", err)
		}
		var r allocRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("local state %s is corrupt: %w", path, err)
		}
		id := strings.TrimSuffix(name, ".json")
		if r.Alloc == nil || r.Alloc.ID != id {
			return nil, fmt.Errorf("local state %s: record is not for allocation %q", path, id)
		}
		s.recs[id] = &r
	}
	return s, nil
}

func (s *stateStore) path(id string) string { return filepath.Join(s.dir, id+".json") }

// all returns copies of every record.
func (s *stateStore) all() []*allocRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*allocRecord, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, r.copy())
	}
	return out
}

func (s *stateStore) get(id string) *allocRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recs[id]; r != nil {
		return r.copy()
	}
	return nil
}

// put stores a record and writes its file.
func (s *stateStore) put(r *allocRecord) error {
	id := r.Alloc.ID
	if !validFileID(id) {
		return fmt.Errorf("allocation ID %q cannot name a state file", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[id] = r.copy()
	if err := shim.WriteJSONAtomic(s.path(id), r); err != nil {
		return fmt.Errorf("saving local state of %s: %w", id, err)
	}
	return nil
}

func (s *stateStore) delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[id]; !ok {
		return nil
	}
	delete(s.recs, id)
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing local state of %s: %w", id, err)
	}
	return nil
}

// validFileID refuses IDs that would escape the state or allocs directory.
func validFileID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}
