// Package state is the server's state store: nodes, jobs, placement
// failures and servers in go-memdb tables, allocations in a copy-on-write
// table of its own (alloctable.go), changed only by the Raft FSM (each
// write carries the log index) in transactions that cover both, read
// through consistent O(1) snapshots, and watched by blocking queries.
//
// Objects stored are never modified in place: writes insert copies, and
// objects returned by reads are shared and must not be modified.
package state

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// Sentinel errors callers branch on (the HTTP layer maps them to 404/400).
var (
	ErrNotFound  = errors.New("not found")
	ErrAmbiguous = errors.New("ambiguous prefix")
)

// Store holds the cluster state. Writes are serialized by the FSM; reads may
// run concurrently with them.
type Store struct {
	mu sync.RWMutex
	db *memdb.MemDB // guarded by mu (replaced by Restore)
	// allocs is the published allocation table (alloctable.go). It is
	// stored under mu together with the commit of db's transaction, so a
	// snapshot sees both or neither; watch registration reads it alone.
	allocs  atomic.Pointer[allocTable]
	watches allocWatches
	seq     atomic.Uint64 // numbers write transactions (ownership marks)
	// aclGen moves after every commit that changes ACL policies or tokens
	// and after Restore (ACLGeneration).
	aclGen atomic.Uint64
	// abandonCh is closed when Restore replaces db, so blocking queries
	// watching the old db wake up and read the new one.
	abandonCh chan struct{} // guarded by mu
	// versionsKept is how many versions of each job the history keeps
	// (0 = DefaultJobVersionsKept); see job_versions.go.
	versionsKept atomic.Int64
	// writes, when set, receives the allocations each committed write
	// stores (RecordAllocWrites).
	writes atomic.Pointer[AllocWrites]
}

// AllocWrites is what write transactions stored in the allocation table,
// for a caller that reads those allocations right after (the event
// stream derives its events from them instead of looking each one up).
type AllocWrites struct {
	// Allocs are the stored versions, in the order written; an
	// allocation written twice appears twice.
	Allocs []*structs.Allocation
	// Again is set when a transaction wrote an allocation it had written
	// already (the same modify index): Allocs then holds an intermediate
	// version, and a caller wanting each allocation once reads the table.
	Again bool
}

// RecordAllocWrites makes every write committed from now on append what
// it stored to w (nil stops recording). Meant for the single writer (the
// FSM), set around one write; a write that fails records nothing.
func (s *Store) RecordAllocWrites(w *AllocWrites) { s.writes.Store(w) }

// New returns an empty store.
func New() (*Store, error) {
	db, err := newDB()
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, abandonCh: make(chan struct{})}
	s.allocs.Store(newAllocTable())
	return s, nil
}

func (s *Store) current() (*memdb.MemDB, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db, s.abandonCh
}

// Snapshot returns a consistent read-only view of the current state. It is
// O(1): memdb's radix trees and the allocation table are immutable, a
// snapshot pins their roots.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &Snapshot{txn: s.db.Txn(false), allocs: s.allocs.Load(), abandonCh: s.abandonCh, store: s}
}

// writeTxn is a write transaction on the memdb tables and the allocation
// table together.
type writeTxn struct {
	*memdb.Txn
	allocs *allocTxn
	// aclChanged says the transaction wrote ACL policies or tokens.
	aclChanged bool
	// versionsKept bounds each job's history (job_versions.go).
	versionsKept int
}

// write runs fn in one write transaction, committed only if fn succeeds.
// memdb's writer lock serializes writes; the allocation table of the
// transaction starts from the table published when it took the lock.
func (s *Store) write(fn func(txn *writeTxn) error) error {
	db, _ := s.current()
	mtx := db.Txn(true)
	defer mtx.Abort()
	txn := &writeTxn{Txn: mtx, allocs: newAllocTxn(s.allocs.Load(), s.seq.Add(1)), versionsKept: s.JobVersionsKept()}
	rec := s.writes.Load()
	txn.allocs.record = rec != nil
	if err := fn(txn); err != nil {
		return err
	}
	s.mu.Lock()
	// A Restore that ran meanwhile replaced db: the transaction commits
	// into the abandoned database, as it did before allocations had their
	// own table, and its allocations are dropped with it.
	publish := txn.allocs.changed() && s.db == db
	if publish {
		s.allocs.Store(txn.allocs.result())
	}
	mtx.Commit()
	s.mu.Unlock()
	if txn.aclChanged {
		s.aclGen.Add(1)
	}
	if publish {
		s.watches.notify(txn.allocs)
		if rec != nil {
			rec.Allocs = append(rec.Allocs, txn.allocs.written...)
			rec.Again = rec.Again || txn.allocs.again
		}
	}
	return nil
}

func bumpIndex(txn *writeTxn, index uint64, tables ...string) error {
	for _, t := range tables {
		raw, err := txn.First(tableIndex, "id", t)
		if err != nil {
			return fmt.Errorf("index of %s: %w", t, err)
		}
		if raw != nil && raw.(*IndexEntry).Value >= index {
			continue
		}
		if err := txn.Insert(tableIndex, &IndexEntry{Key: t, Value: index}); err != nil {
			return fmt.Errorf("index of %s: %w", t, err)
		}
	}
	return nil
}

// UpsertNode inserts or replaces a node. CreateIndex and the operator's
// drain flag survive re-registration.
func (s *Store) UpsertNode(index uint64, node *structs.Node) error {
	if node == nil || node.ID == "" {
		return errors.New("upsert node: node ID is required")
	}
	return s.write(func(txn *writeTxn) error {
		n := node.Copy()
		raw, err := txn.First(TableNodes, "id", n.ID)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
		n.CreateIndex = index
		if raw != nil {
			old := raw.(*structs.Node)
			n.CreateIndex = old.CreateIndex
			n.Drain = old.Drain
			n.DrainDeadline = old.DrainDeadline
		}
		n.ModifyIndex = index
		if err := txn.Insert(TableNodes, n); err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
		return bumpIndex(txn, index, TableNodes)
	})
}

// UpdateNodeStatus sets a node's status. A node going down loses its live
// allocations: client status lost, desired status stop.
func (s *Store) UpdateNodeStatus(index uint64, nodeID string, status structs.NodeStatus, now int64) error {
	return s.write(func(txn *writeTxn) error {
		n, err := nodeForUpdate(txn, nodeID)
		if err != nil {
			return err
		}
		n.Status = status
		n.StatusUpdatedAt = now
		n.ModifyIndex = index
		if err := txn.Insert(TableNodes, n); err != nil {
			return fmt.Errorf("node %s: %w", nodeID, err)
		}
		tables := []string{TableNodes}
		if status == structs.NodeStatusDown {
			lost, err := markNodeAllocsLost(txn, index, nodeID, now)
			if err != nil {
				return err
			}
			if lost > 0 {
				tables = append(tables, TableAllocs)
			}
		}
		return bumpIndex(txn, index, tables...)
	})
}

func markNodeAllocsLost(txn *writeTxn, index uint64, nodeID string, now int64) (int, error) {
	var lost []*structs.Allocation
	for _, a := range txn.allocs.view().nodeGroup(nodeID).list() {
		if a.ClientTerminal() {
			continue
		}
		c := a.Copy()
		c.ClientStatus = structs.AllocClientLost
		c.ClientDescription = "node down"
		if c.DesiredStatus == structs.AllocDesiredRun {
			c.DesiredStatus = structs.AllocDesiredStop
			c.DesiredDescription = "node down"
		}
		c.ModifyTime = now
		c.ModifyIndex = index
		c.AllocModifyIndex = index
		lost = append(lost, c)
	}
	for _, c := range lost {
		if err := txn.allocs.put(c); err != nil {
			return 0, err
		}
	}
	if len(lost) > 0 {
		if err := (nodeBumper{nodeID: true}).write(txn.allocs, index); err != nil {
			return 0, err
		}
	}
	return len(lost), nil
}

// UpdateNodeDrain turns draining on or off, with no deadline.
func (s *Store) UpdateNodeDrain(index uint64, nodeID string, drain bool, now int64) error {
	return s.UpdateNodeDrainDeadline(index, nodeID, drain, 0, now)
}

// UpdateNodeDrainDeadline turns draining on or off; deadline (unix ns, 0:
// none) is when copies still waiting to move in waves are stopped.
func (s *Store) UpdateNodeDrainDeadline(index uint64, nodeID string, drain bool, deadline, now int64) error {
	return s.write(func(txn *writeTxn) error {
		n, err := nodeForUpdate(txn, nodeID)
		if err != nil {
			return err
		}
		n.Drain = drain
		n.DrainDeadline = 0
		if drain {
			n.DrainDeadline = deadline
		}
		n.StatusUpdatedAt = now
		n.ModifyIndex = index
		if err := txn.Insert(TableNodes, n); err != nil {
			return fmt.Errorf("node %s: %w", nodeID, err)
		}
		return bumpIndex(txn, index, TableNodes)
	})
}

func nodeForUpdate(txn *writeTxn, nodeID string) (*structs.Node, error) {
	raw, err := txn.First(TableNodes, "id", nodeID)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, ErrNotFound)
	}
	return raw.(*structs.Node).Copy(), nil
}

// UpsertJob inserts or replaces a job, keeping its CreateIndex.
func (s *Store) UpsertJob(index uint64, job *structs.Job) error {
	return s.write(func(txn *writeTxn) error {
		if err := upsertJobTxn(txn, index, job); err != nil {
			return err
		}
		return bumpIndex(txn, index, TableJobs)
	})
}

func upsertJobTxn(txn *writeTxn, index uint64, job *structs.Job) error {
	if job == nil || job.ID == "" {
		return errors.New("upsert job: job ID is required")
	}
	j := job.Copy()
	if j.Namespace == "" {
		// Written before namespaces existed.
		j.Namespace = structs.DefaultNamespace
	}
	raw, err := txn.First(TableJobs, "id", j.ID)
	if err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	j.CreateIndex = index
	if raw != nil {
		j.CreateIndex = raw.(*structs.Job).CreateIndex
	}
	j.ModifyIndex = index
	if err := txn.Insert(TableJobs, j); err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	if err := endDeploymentsTxn(txn, index, j.ID, j.Version, fmt.Sprintf("job updated to version %d", j.Version), j.SubmitTime); err != nil {
		return err
	}
	return recordJobVersion(txn, j)
}

// StopJob marks a job stopped (Stop, status dead) and asks every allocation
// still wanted to stop.
func (s *Store) StopJob(index uint64, jobID string, now int64) error {
	return s.write(func(txn *writeTxn) error {
		if err := stopJobTxn(txn, index, jobID, now); err != nil {
			return err
		}
		return bumpIndex(txn, index, TableJobs, TableAllocs)
	})
}

func stopJobTxn(txn *writeTxn, index uint64, jobID string, now int64) error {
	raw, err := txn.First(TableJobs, "id", jobID)
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if raw == nil {
		return fmt.Errorf("job %s: %w", jobID, ErrNotFound)
	}
	j := raw.(*structs.Job).Copy()
	j.Stop = true
	j.Status = structs.JobStatusDead
	j.StopTime = now
	j.ModifyIndex = index
	if err := txn.Insert(TableJobs, j); err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if err := endDeploymentsTxn(txn, index, jobID, 0, "job stopped", now); err != nil {
		return err
	}
	var stopped []*structs.Allocation
	for _, a := range txn.allocs.view().jobGroup(jobID).list() {
		if a.DesiredStatus != structs.AllocDesiredRun {
			continue
		}
		c := a.Copy()
		c.DesiredStatus = structs.AllocDesiredStop
		c.DesiredDescription = "job stopped"
		c.ModifyTime = now
		c.ModifyIndex = index
		c.AllocModifyIndex = index
		stopped = append(stopped, c)
	}
	nodes := nodeBumper{}
	for _, c := range stopped {
		if err := txn.allocs.put(c); err != nil {
			return err
		}
		nodes.add(c.NodeID)
	}
	return nodes.write(txn.allocs, index)
}

// PurgeJob deletes a job, its allocations and its placement failure.
// Purging an unknown job is not an error (the entry may be replayed).
func (s *Store) PurgeJob(index uint64, jobID string) error {
	return s.write(func(txn *writeTxn) error {
		if err := purgeJobTxn(txn, index, jobID); err != nil {
			return err
		}
		return bumpIndex(txn, index, TableJobs, TableAllocs, TablePlacementFailures)
	})
}

func purgeJobTxn(txn *writeTxn, index uint64, jobID string) error {
	if _, err := txn.DeleteAll(TableJobs, "id", jobID); err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if err := deleteJobVersions(txn, jobID); err != nil {
		return err
	}
	if err := deleteDeploymentsTxn(txn, index, jobID); err != nil {
		return err
	}
	nodes := nodeBumper{}
	for _, a := range txn.allocs.view().jobGroup(jobID).list() {
		nodes.add(a.NodeID)
		txn.allocs.remove(a.ID)
	}
	if err := nodes.write(txn.allocs, index); err != nil {
		return err
	}
	if _, err := txn.DeleteAll(TablePlacementFailures, "id", jobID); err != nil {
		return fmt.Errorf("placement failure of job %s: %w", jobID, err)
	}
	return nil
}

// ApplyJobWrites applies a batch of job writes in order, in one
// transaction. A stop of a job that does not exist (purged earlier in the
// batch) is skipped, as a purge of one is; a malformed write fails the
// whole batch.
func (s *Store) ApplyJobWrites(index uint64, writes []structs.JobWrite) error {
	return s.write(func(txn *writeTxn) error {
		tables := []string{TableJobs}
		for i, w := range writes {
			switch {
			case w.Register != nil && w.Deregister == nil:
				if err := upsertJobTxn(txn, index, w.Register.Job); err != nil {
					return err
				}
				if d := w.Register.Deployment; d != nil {
					if err := upsertDeploymentTxn(txn, index, d); err != nil {
						return err
					}
					tables = append(tables, TableDeployments)
				}
			case w.Deregister != nil && w.Register == nil:
				d := w.Deregister
				var err error
				if d.Purge {
					err = purgeJobTxn(txn, index, d.JobID)
					tables = append(tables, TablePlacementFailures)
				} else {
					err = stopJobTxn(txn, index, d.JobID, d.Time)
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				tables = append(tables, TableAllocs)
			default:
				return fmt.Errorf("job write %d of %d: exactly one of register and deregister is required", i+1, len(writes))
			}
		}
		slices.Sort(tables)
		return bumpIndex(txn, index, slices.Compact(tables)...)
	})
}

// UpsertAllocs writes allocations from a committed plan. New ones get
// CreateIndex; for existing ones only the server-owned fields (desired
// status, description, preemption, modify time) are taken, so an agent's
// report applied between the plan check and this entry is not undone.
func (s *Store) UpsertAllocs(index uint64, allocs []*structs.Allocation) error {
	return s.write(func(txn *writeTxn) error {
		if err := upsertAllocsTxn(txn, index, allocs); err != nil {
			return err
		}
		return bumpIndex(txn, index, TableAllocs)
	})
}

func upsertAllocsTxn(txn *writeTxn, index uint64, allocs []*structs.Allocation) error {
	jobs := jobInterner{txn: txn.Txn}
	nodes := nodeBumper{}
	var nodeByID map[string]*structs.Node // read once per transaction
	for _, a := range allocs {
		if a == nil || a.ID == "" {
			return errors.New("upsert alloc: allocation ID is required")
		}
		old := txn.allocs.get(a.ID)
		var c *structs.Allocation
		if old == nil {
			c = a.Copy()
			c.Job = jobs.intern(c)
			c.CreateIndex = index
			// A node that went down after the plan was checked never
			// runs the allocation: it is lost at once, like the node's
			// other allocations.
			n, seen := nodeByID[c.NodeID]
			if !seen {
				if raw, err := txn.First(TableNodes, "id", c.NodeID); err == nil && raw != nil {
					n = raw.(*structs.Node)
				}
				if nodeByID == nil {
					nodeByID = map[string]*structs.Node{}
				}
				nodeByID[c.NodeID] = n
			}
			// Share the node's and the job's strings instead of keeping
			// the decoded copies (memory per allocation, docs/bench.md).
			if n != nil {
				c.NodeID = n.ID
				if c.NodeName == n.Name {
					c.NodeName = n.Name
				}
			}
			if c.Job != nil && c.JobID == c.Job.ID {
				c.JobID = c.Job.ID
			}
			if n != nil && n.Status == structs.NodeStatusDown && !c.ClientTerminal() {
				c.ClientStatus, c.ClientDescription = structs.AllocClientLost, "node down"
				c.DesiredStatus, c.DesiredDescription = structs.AllocDesiredStop, "node down"
			}
			internAlloc(c)
		} else {
			c = old.Copy()
			c.DesiredStatus = intern(a.DesiredStatus)
			c.DesiredDescription = intern(a.DesiredDescription)
			c.PreemptedBy = a.PreemptedBy
			c.ModifyTime = a.ModifyTime
		}
		c.ModifyIndex = index
		c.AllocModifyIndex = index
		if err := txn.allocs.put(c); err != nil {
			return err
		}
		nodes.add(c.NodeID)
	}
	return nodes.write(txn.allocs, index)
}

// UpdateAllocsFromClient applies an agent's reports. Reports for unknown
// allocations, or for allocations placed on another node, are ignored: the
// allocation may have been purged, and a node may only speak for itself.
// It returns the allocations that became client-terminal with this update.
func (s *Store) UpdateAllocsFromClient(index uint64, nodeID string, updates []*structs.AllocClientUpdate, now int64) ([]*structs.Allocation, error) {
	return s.UpdateAllocsFromClientBatch(index, []structs.AllocClientUpdateRequest{{NodeID: nodeID, Updates: updates, Time: now}})
}

// UpdateAllocsFromClientBatch applies several nodes' reports in one
// transaction, with the rules of UpdateAllocsFromClient for each.
func (s *Store) UpdateAllocsFromClientBatch(index uint64, reqs []structs.AllocClientUpdateRequest) ([]*structs.Allocation, error) {
	var terminal []*structs.Allocation
	err := s.write(func(txn *writeTxn) error {
		changed := false
		for _, req := range reqs {
			t, c, err := updateAllocsFromClientTxn(txn, index, req.NodeID, req.Updates, req.Time)
			if err != nil {
				return err
			}
			terminal = append(terminal, t...)
			changed = changed || c
		}
		if !changed {
			return nil
		}
		return bumpIndex(txn, index, TableAllocs)
	})
	return terminal, err
}

func updateAllocsFromClientTxn(txn *writeTxn, index uint64, nodeID string, updates []*structs.AllocClientUpdate, now int64) ([]*structs.Allocation, bool, error) {
	var terminal []*structs.Allocation
	changed := false
	for _, u := range updates {
		if u == nil {
			continue
		}
		old := txn.allocs.get(u.ID)
		if old == nil {
			continue
		}
		if nodeID != "" && old.NodeID != nodeID {
			continue
		}
		c := old.Copy()
		c.ClientStatus = intern(u.ClientStatus)
		c.ClientDescription = intern(u.ClientDescription)
		c.TaskState = u.TaskState
		if ev := c.TaskState.Events; len(ev) > structs.MaxTaskEvents {
			c.TaskState.Events = append([]structs.TaskEvent(nil), ev[len(ev)-structs.MaxTaskEvents:]...)
		} else {
			c.TaskState.Events = append([]structs.TaskEvent(nil), ev...)
		}
		internTaskState(&c.TaskState)
		c.Health = u.Health.Copy() // nil: not known (an agent before health checks)
		c.TaskStates = nil
		var gj *structs.Job // the allocation's group of its job (its tasks)
		if len(u.TaskStates) > 0 && c.Job != nil {
			gj = c.GroupJob()
		}
		for name, ts := range u.TaskStates {
			// Only the job's own extra tasks, each as bounded as the main
			// task's state: a report cannot grow the allocation.
			if (c.Job != nil && (gj == nil || !gj.HasTask(name))) || len(c.TaskStates) >= structs.MaxTasks {
				continue
			}
			if c.TaskStates == nil {
				c.TaskStates = make(map[string]structs.TaskState, len(u.TaskStates))
			}
			ev := ts.Events
			ts.Events = append([]structs.TaskEvent(nil), ev[max(0, len(ev)-structs.MaxTaskEvents):]...)
			internTaskState(&ts)
			c.TaskStates[name] = ts
		}
		c.ModifyTime = now
		c.ModifyIndex = index
		if err := txn.allocs.put(c); err != nil {
			return nil, false, err
		}
		changed = true
		if c.ClientTerminal() && !old.ClientTerminal() {
			terminal = append(terminal, c)
		}
	}
	return terminal, changed, nil
}

// UpsertPlacementFailure stores why copies of a job are pending.
func (s *Store) UpsertPlacementFailure(index uint64, f *structs.PlacementFailure) error {
	if f == nil || f.JobID == "" {
		return errors.New("upsert placement failure: job ID is required")
	}
	return s.write(func(txn *writeTxn) error {
		if err := upsertFailureTxn(txn, f); err != nil {
			return err
		}
		return bumpIndex(txn, index, TablePlacementFailures)
	})
}

func upsertFailureTxn(txn *writeTxn, f *structs.PlacementFailure) error {
	c := *f
	c.NodesFiltered = copyCounts(f.NodesFiltered)
	c.NodesExhausted = copyCounts(f.NodesExhausted)
	if err := txn.Insert(TablePlacementFailures, &c); err != nil {
		return fmt.Errorf("placement failure of job %s: %w", f.JobID, err)
	}
	return nil
}

// DeletePlacementFailure removes a job's placement failure, if any.
func (s *Store) DeletePlacementFailure(index uint64, jobID string) error {
	return s.write(func(txn *writeTxn) error {
		n, err := txn.DeleteAll(TablePlacementFailures, "id", jobID)
		if err != nil {
			return fmt.Errorf("placement failure of job %s: %w", jobID, err)
		}
		if n == 0 {
			return nil
		}
		return bumpIndex(txn, index, TablePlacementFailures)
	})
}

// ApplyPlan commits the checked part of a plan in one transaction: the
// allocations and the job's placement failure record.
func (s *Store) ApplyPlan(index uint64, req *structs.ApplyPlanRequest) error {
	_, err := s.ApplyPlans(index, []*structs.ApplyPlanRequest{req})
	return err
}

// ApplyPlans commits several checked plans, in order, in one transaction
// (a batch the plan applier put in one Raft entry). It returns the jobs
// whose placements were dropped because the job changed after the check
// (see ApplyPlanRequest.JobVersion).
func (s *Store) ApplyPlans(index uint64, reqs []*structs.ApplyPlanRequest) ([]string, error) {
	var dropped []string
	err := s.write(func(txn *writeTxn) error {
		dropped = dropped[:0]
		var tables []string
		for i, req := range reqs {
			if req == nil {
				return fmt.Errorf("apply plan %d of %d: empty plan", i+1, len(reqs))
			}
			t, drop, err := applyPlanTxn(txn, index, req)
			if err != nil {
				return err
			}
			if drop && !slices.Contains(dropped, req.JobID) {
				dropped = append(dropped, req.JobID)
			}
			for _, tb := range t {
				if !slices.Contains(tables, tb) {
					tables = append(tables, tb)
				}
			}
		}
		return bumpIndex(txn, index, tables...)
	})
	return dropped, err
}

// isNewPlacement reports whether a plan's allocation is a new placement
// (the applier copies the existing allocations it stops or evicts, with
// their CreateIndex and a desired status other than run).
func isNewPlacement(a *structs.Allocation) bool {
	return a.CreateIndex == 0 && a.DesiredStatus == structs.AllocDesiredRun
}

// planJobChanged reports whether the job a plan was checked against is
// gone, stopped or at another version now.
func planJobChanged(txn *writeTxn, req *structs.ApplyPlanRequest) (bool, error) {
	if req.JobVersion == 0 {
		return false, nil
	}
	raw, err := txn.First(TableJobs, "id", req.JobID)
	if err != nil {
		return false, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	if raw == nil {
		return true, nil
	}
	j := raw.(*structs.Job)
	return j.Stop || j.Version != req.JobVersion, nil
}

// applyPlanTxn writes one plan and returns the tables it changed and
// whether its placements were dropped.
func applyPlanTxn(txn *writeTxn, index uint64, req *structs.ApplyPlanRequest) ([]string, bool, error) {
	tables := []string{}
	allocs := req.Allocs
	changed, err := planJobChanged(txn, req)
	if err != nil {
		return nil, false, err
	}
	// A plan's changes to allocations (stops, evictions) apply only to
	// allocations that exist: one placed by an earlier entry that did not
	// apply is not created as a stopped record.
	missing := false
	for _, a := range allocs {
		if a != nil && !isNewPlacement(a) {
			if txn.allocs.get(a.ID) == nil {
				missing = true
				break
			}
		}
	}
	if missing {
		kept := make([]*structs.Allocation, 0, len(allocs))
		for _, a := range allocs {
			if a != nil && !isNewPlacement(a) {
				if txn.allocs.get(a.ID) == nil {
					continue
				}
			}
			kept = append(kept, a)
		}
		allocs = kept
	}
	if changed {
		// Keep the stops; drop new placements and the evictions made for
		// them.
		all := allocs
		allocs = nil
		for _, a := range all {
			if a == nil || a.DesiredStatus == structs.AllocDesiredEvict && a.PreemptedBy != "" {
				continue
			}
			if txn.allocs.get(a.ID) != nil {
				allocs = append(allocs, a)
			}
		}
	}
	if len(allocs) > 0 {
		if err := upsertAllocsTxn(txn, index, allocs); err != nil {
			return nil, false, err
		}
		tables = append(tables, TableAllocs)
	}
	switch {
	case req.Failure != nil:
		f := *req.Failure
		if f.JobID == "" {
			f.JobID = req.JobID
		}
		if f.JobID == "" {
			return nil, false, errors.New("apply plan: placement failure without a job ID")
		}
		if err := upsertFailureTxn(txn, &f); err != nil {
			return nil, false, err
		}
		tables = append(tables, TablePlacementFailures)
	case req.ClearFailure && req.JobID != "" && !changed:
		n, err := txn.DeleteAll(TablePlacementFailures, "id", req.JobID)
		if err != nil {
			return nil, false, fmt.Errorf("placement failure of job %s: %w", req.JobID, err)
		}
		if n > 0 {
			tables = append(tables, TablePlacementFailures)
		}
	}
	return tables, changed, nil
}

func copyCounts(m map[string]int) map[string]int {
	if m == nil {
		return nil
	}
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// jobKey identifies one stored version of a job: equal keys mean equal
// jobs, since stored jobs are never modified in place.
type jobKey struct {
	id            string
	version, mods uint64
}

// jobInterner makes allocations share one job object instead of each
// holding its own decoded copy (a job is ~1 KB; a million allocations of
// one job would otherwise hold a million copies).
type jobInterner struct {
	txn    *memdb.Txn
	seen   map[jobKey]*structs.Job
	stored map[string]*structs.Job // job ID -> stored job (nil: none), read once
}

// intern returns the job object a new allocation should hold: the stored
// job when it is the same version (or when the plan left the job out, as
// the plan applier does to keep Raft entries small), else one shared copy
// per distinct version.
func (in *jobInterner) intern(a *structs.Allocation) *structs.Job {
	stored, ok := in.stored[a.JobID]
	if !ok {
		if raw, err := in.txn.First(TableJobs, "id", a.JobID); err == nil && raw != nil {
			stored = raw.(*structs.Job)
		}
		if in.stored == nil {
			in.stored = map[string]*structs.Job{}
		}
		in.stored[a.JobID] = stored
	}
	if a.Job == nil {
		if stored != nil && stored.Version == a.JobVersion {
			return stored
		}
		return nil
	}
	k := jobKey{a.Job.ID, a.Job.Version, a.Job.ModifyIndex}
	if stored != nil && k == (jobKey{stored.ID, stored.Version, stored.ModifyIndex}) {
		return stored
	}
	if j, ok := in.seen[k]; ok {
		return j
	}
	if in.seen == nil {
		in.seen = map[jobKey]*structs.Job{}
	}
	in.seen[k] = a.Job
	return a.Job
}
