package peerexec

import (
	"encoding/json"
	"sync"

	"github.com/gantry-project/gantry/internal/structs"
)

// MemStore is a Store in memory, for tests, the simulator and benchmarks:
// records are kept as their JSON, as the data store keeps them.
type MemStore struct {
	mu     sync.Mutex
	jobs   map[string][]byte
	allocs map[string]map[string][]byte // job -> alloc -> JSON
	// OnWrite, when set, sees every write (key kind, job, alloc, JSON;
	// nil JSON deletes): the simulator replicates through it.
	OnWrite func(kind, jobID, allocID string, b []byte)
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{jobs: map[string][]byte{}, allocs: map[string]map[string][]byte{}}
}

// PutJob implements Store.
func (s *MemStore) PutJob(j *structs.Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	s.Apply("job", j.ID, "", b)
	return nil
}

// Sync implements Store.
func (s *MemStore) Sync() error { return nil }

// DeleteJob implements Store.
func (s *MemStore) DeleteJob(id string) error {
	s.Apply("job", id, "", nil)
	return nil
}

// PutAlloc implements Store.
func (s *MemStore) PutAlloc(a *structs.Allocation) error {
	c := *a
	c.Job = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	s.Apply("alloc", a.JobID, a.ID, b)
	return nil
}

// Apply stores one write (also a replicated one).
func (s *MemStore) Apply(kind, jobID, allocID string, b []byte) {
	s.mu.Lock()
	switch {
	case kind == "job" && b == nil:
		delete(s.jobs, jobID)
		delete(s.allocs, jobID)
	case kind == "job":
		s.jobs[jobID] = b
	default:
		if s.allocs[jobID] == nil {
			s.allocs[jobID] = map[string][]byte{}
		}
		s.allocs[jobID][allocID] = b
	}
	hook := s.OnWrite
	s.mu.Unlock()
	if hook != nil {
		hook(kind, jobID, allocID, b)
	}
}

// Load implements Store.
func (s *MemStore) Load(owned func(string) bool) ([]*structs.Job, []*structs.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []*structs.Job
	var allocs []*structs.Allocation
	for _, id := range sortedKeys(s.jobs) {
		if !owned(id) {
			continue
		}
		var j structs.Job
		if err := json.Unmarshal(s.jobs[id], &j); err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, &j)
		for _, aid := range sortedKeys(s.allocs[id]) {
			var a structs.Allocation
			if err := json.Unmarshal(s.allocs[id][aid], &a); err != nil {
				return nil, nil, err
			}
			allocs = append(allocs, &a)
		}
	}
	return jobs, allocs, nil
}
