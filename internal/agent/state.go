package agent

import (
	"crypto/rand"
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
	"github.com/gantry-project/gantry/internal/structs"
)

// Files in the data dir.
const (
	nodeIDFile = "node-id"
	stateFile  = "state.json"
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
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	if err := os.WriteFile(path+".tmp", []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("saving node ID: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
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
}

func (r *allocRecord) copy() *allocRecord {
	c := *r
	c.TaskState.Events = append([]structs.TaskEvent(nil), r.TaskState.Events...)
	c.RestartTimes = append([]int64(nil), r.RestartTimes...)
	return &c
}

// stateStore is the agent's local allocation state: one JSON file written
// atomically on every change. A few hundred allocations per node keep it
// small; the write happens outside the runners' hot path only on
// transitions.
type stateStore struct {
	path string
	mu   sync.Mutex
	recs map[string]*allocRecord
}

type stateFileV1 struct {
	Version int                     `json:"version"`
	Allocs  map[string]*allocRecord `json:"allocs"`
}

func openState(dataDir string) (*stateStore, error) {
	s := &stateStore{path: filepath.Join(dataDir, stateFile), recs: map[string]*allocRecord{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading local state: %w", err)
	}
	var f stateFileV1
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("local state %s is corrupt: %w", s.path, err)
	}
	for id, r := range f.Allocs {
		if r == nil || r.Alloc == nil || r.Alloc.ID != id {
			return nil, fmt.Errorf("local state %s: bad record for allocation %q", s.path, id)
		}
		s.recs[id] = r
	}
	return s, nil
}

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

// put stores a record and writes the file.
func (s *stateStore) put(r *allocRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.Alloc.ID] = r.copy()
	return s.saveLocked()
}

func (s *stateStore) delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[id]; !ok {
		return nil
	}
	delete(s.recs, id)
	return s.saveLocked()
}

func (s *stateStore) saveLocked() error {
	if err := shim.WriteJSONAtomic(s.path, stateFileV1{Version: 1, Allocs: s.recs}); err != nil {
		return fmt.Errorf("saving local state: %w", err)
	}
	return nil
}
