package state

import (
	"fmt"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// Snapshot is a consistent read-only view of the store at one moment. It
// implements scheduler.State; internal/server, which joins the two, asserts
// it, so the store imports nothing of gantry's but structs. Objects it
// returns are shared with the store and must not be modified. Every read
// takes an optional memdb.WatchSet (nil to not watch) so blocking queries
// learn what to wait on.
type Snapshot struct {
	txn       *memdb.Txn
	allocs    *allocTable
	abandonCh <-chan struct{}
	store     *Store
}

// Index is the highest Raft index that changed any table in this view.
func (s *Snapshot) Index() uint64 {
	return s.TableIndex(TableNodes, TableJobs, TableAllocs, TablePlacementFailures)
}

// TableIndex returns the highest index that changed any of the tables.
func (s *Snapshot) TableIndex(tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		raw, err := s.txn.First(tableIndex, "id", t)
		if err == nil && raw != nil && raw.(*IndexEntry).Value > max {
			max = raw.(*IndexEntry).Value
		}
	}
	return max
}

// watchAbandon adds the store's abandon channel, which fires on Restore.
func (s *Snapshot) watchAbandon(ws memdb.WatchSet) {
	if ws != nil {
		ws.Add(s.abandonCh)
	}
}

func (s *Snapshot) first(ws memdb.WatchSet, table, index string, args ...any) any {
	ch, raw, err := s.txn.FirstWatch(table, index, args...)
	if err != nil {
		// Only a schema mistake (unknown table or index) gets here.
		panic(fmt.Sprintf("state: %s.%s: %v", table, index, err))
	}
	if ws != nil {
		ws.Add(ch)
	}
	return raw
}

func (s *Snapshot) iter(ws memdb.WatchSet, table, index string, args ...any) memdb.ResultIterator {
	it, err := s.txn.Get(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("state: %s.%s: %v", table, index, err))
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	return it
}

// --- scheduler.State ---

// Nodes returns every node, ordered by ID.
func (s *Snapshot) Nodes() []*structs.Node { return s.NodesWatch(nil) }

// NodeByID returns a node or nil.
func (s *Snapshot) NodeByID(id string) *structs.Node { return s.NodeByIDWatch(nil, id) }

// JobByID returns a job or nil.
func (s *Snapshot) JobByID(id string) *structs.Job { return s.JobByIDWatch(nil, id) }

// AllocsByNode returns every allocation on a node, terminal ones too.
func (s *Snapshot) AllocsByNode(nodeID string) []*structs.Allocation {
	return s.AllocsByNodeWatch(nil, nodeID)
}

// AllocsByJob returns every allocation of a job, terminal ones too.
func (s *Snapshot) AllocsByJob(jobID string) []*structs.Allocation {
	return s.AllocsByJobWatch(nil, jobID)
}

// --- watchable reads ---

// NodesWatch returns every node, ordered by ID.
func (s *Snapshot) NodesWatch(ws memdb.WatchSet) []*structs.Node {
	s.watchAbandon(ws)
	var out []*structs.Node
	it := s.iter(ws, TableNodes, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Node))
	}
	return out
}

// NodeByIDWatch returns a node or nil.
func (s *Snapshot) NodeByIDWatch(ws memdb.WatchSet, id string) *structs.Node {
	s.watchAbandon(ws)
	if raw := s.first(ws, TableNodes, "id", id); raw != nil {
		return raw.(*structs.Node)
	}
	return nil
}

// JobsWatch returns every job, ordered by ID.
func (s *Snapshot) JobsWatch(ws memdb.WatchSet) []*structs.Job {
	s.watchAbandon(ws)
	var out []*structs.Job
	it := s.iter(ws, TableJobs, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Job))
	}
	return out
}

// Jobs returns every job, ordered by ID.
func (s *Snapshot) Jobs() []*structs.Job { return s.JobsWatch(nil) }

// JobByIDWatch returns a job or nil.
func (s *Snapshot) JobByIDWatch(ws memdb.WatchSet, id string) *structs.Job {
	s.watchAbandon(ws)
	if raw := s.first(ws, TableJobs, "id", id); raw != nil {
		return raw.(*structs.Job)
	}
	return nil
}

// watchAllocs adds to ws the channel of an allocation key: it fires on the
// next commit that touches the key (at once if one did since the snapshot).
func (s *Snapshot) watchAllocs(ws memdb.WatchSet, kind watchKind, key string) {
	if ws == nil {
		return
	}
	ws.Add(s.store.watches.register(s.allocs, s.store.allocs.Load, kind, key))
}

// AllocsWatch returns every allocation, ordered by ID.
func (s *Snapshot) AllocsWatch(ws memdb.WatchSet) []*structs.Allocation {
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchTable, "")
	if s.allocs.len() == 0 {
		return nil
	}
	out := make([]*structs.Allocation, 0, s.allocs.len())
	s.allocs.each(func(a *structs.Allocation) bool {
		out = append(out, a)
		return true
	})
	return out
}

// Allocs returns every allocation, ordered by ID.
func (s *Snapshot) Allocs() []*structs.Allocation { return s.AllocsWatch(nil) }

// AllocByID returns an allocation or nil.
func (s *Snapshot) AllocByID(id string) *structs.Allocation { return s.allocs.get(id) }

// AllocByIDWatch returns an allocation or nil.
func (s *Snapshot) AllocByIDWatch(ws memdb.WatchSet, id string) *structs.Allocation {
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchID, id)
	return s.allocs.get(id)
}

// AllocsByNodeWatch returns every allocation on a node, ordered by ID.
func (s *Snapshot) AllocsByNodeWatch(ws memdb.WatchSet, nodeID string) []*structs.Allocation {
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchNode, nodeID)
	return s.allocs.nodeGroup(nodeID).list()
}

// AllocsByJobWatch returns every allocation of a job, ordered by ID.
func (s *Snapshot) AllocsByJobWatch(ws memdb.WatchSet, jobID string) []*structs.Allocation {
	s.watchAbandon(ws)
	s.watchAllocs(ws, watchJob, jobID)
	return s.allocs.jobGroup(jobID).list()
}

// PlacementFailure returns a job's stored placement failure or nil.
func (s *Snapshot) PlacementFailure(jobID string) *structs.PlacementFailure {
	return s.PlacementFailureWatch(nil, jobID)
}

// PlacementFailureWatch returns a job's stored placement failure or nil.
func (s *Snapshot) PlacementFailureWatch(ws memdb.WatchSet, jobID string) *structs.PlacementFailure {
	s.watchAbandon(ws)
	if raw := s.first(ws, TablePlacementFailures, "id", jobID); raw != nil {
		return raw.(*structs.PlacementFailure)
	}
	return nil
}

// PlacementFailures returns every stored placement failure.
func (s *Snapshot) PlacementFailures() []*structs.PlacementFailure {
	var out []*structs.PlacementFailure
	it := s.iter(nil, TablePlacementFailures, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.PlacementFailure))
	}
	return out
}

// --- lookups for the API ---

// NodeByPrefix finds a node by exact ID, unique ID prefix or name.
func (s *Snapshot) NodeByPrefix(ws memdb.WatchSet, ref string) (*structs.Node, error) {
	s.watchAbandon(ws)
	if n := s.NodeByIDWatch(ws, ref); n != nil {
		return n, nil
	}
	if ref != "" {
		var ids []string
		var found *structs.Node
		it := s.iter(ws, TableNodes, "id_prefix", ref)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			found = raw.(*structs.Node)
			ids = append(ids, found.ID)
		}
		if len(ids) == 1 {
			return found, nil
		}
		if len(ids) > 1 {
			return nil, ambiguous("node", ref, ids)
		}
	}
	var ids []string
	var found *structs.Node
	it := s.iter(ws, TableNodes, "name", ref)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		found = raw.(*structs.Node)
		ids = append(ids, found.ID)
	}
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("node %q: %w", ref, ErrNotFound)
	case 1:
		return found, nil
	}
	return nil, fmt.Errorf("node name %q is used by several nodes (%s); use an ID: %w",
		ref, strings.Join(ids, ", "), ErrAmbiguous)
}

// AllocByPrefix finds an allocation by exact ID or unique ID prefix.
func (s *Snapshot) AllocByPrefix(ws memdb.WatchSet, ref string) (*structs.Allocation, error) {
	s.watchAbandon(ws)
	if a := s.AllocByIDWatch(ws, ref); a != nil {
		return a, nil
	}
	if ref == "" {
		return nil, fmt.Errorf("allocation %q: %w", ref, ErrNotFound)
	}
	// A prefix lookup watches the whole table: any new allocation may
	// match it.
	s.watchAllocs(ws, watchTable, "")
	var ids []string
	var found *structs.Allocation
	s.allocs.eachWithPrefix(ref, func(a *structs.Allocation) bool {
		found = a
		ids = append(ids, a.ID)
		return len(ids) <= 5
	})
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("allocation %q: %w", ref, ErrNotFound)
	case 1:
		return found, nil
	}
	return nil, ambiguous("allocation", ref, ids)
}

func ambiguous(kind, ref string, ids []string) error {
	sort.Strings(ids)
	more := ""
	if len(ids) > 5 {
		ids, more = ids[:5], ", ..."
	}
	return fmt.Errorf("%s prefix %q matches several: %s%s; give more characters: %w",
		kind, ref, strings.Join(ids, ", "), more, ErrAmbiguous)
}
