package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// record is one line of a persisted store: exactly one field is set.
// Streaming records keeps memory flat for large states.
type record struct {
	Node    *structs.Node             `json:"node,omitempty"`
	Job     *structs.Job              `json:"job,omitempty"`
	Alloc   *structs.Allocation       `json:"alloc,omitempty"`
	Failure *structs.PlacementFailure `json:"failure,omitempty"`
	Index   *IndexEntry               `json:"index,omitempty"`
	Server  *structs.ServerMember     `json:"server,omitempty"`
}

// Persist writes snap as a stream of JSON records. Raft calls it from its
// snapshot goroutine while writes continue; snap does not change.
func (snap *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	tables := []string{TableNodes, TableJobs, TableAllocs, TablePlacementFailures, TableServers, tableIndex}
	for _, t := range tables {
		if t == TableAllocs {
			var err error
			snap.allocs.each(func(a *structs.Allocation) bool {
				err = enc.Encode(&record{Alloc: a})
				return err == nil
			})
			if err != nil {
				return fmt.Errorf("persist %s: %w", t, err)
			}
			continue
		}
		it := snap.iter(nil, t, "id")
		for raw := it.Next(); raw != nil; raw = it.Next() {
			var r record
			switch v := raw.(type) {
			case *structs.Node:
				r.Node = v
			case *structs.Job:
				r.Job = v
			case *structs.PlacementFailure:
				r.Failure = v
			case *IndexEntry:
				r.Index = v
			case *structs.ServerMember:
				r.Server = v
			}
			if err := enc.Encode(&r); err != nil {
				return fmt.Errorf("persist %s: %w", t, err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// Restore replaces the store's content with the records read from r. The
// records are loaded into a fresh database first, so a bad stream leaves
// the store unchanged; blocking queries on the old content are woken.
func (s *Store) Restore(r io.Reader) error {
	db, err := newDB()
	if err != nil {
		return err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	allocs := newAllocTxn(newAllocTable(), s.seq.Add(1))
	jobs := jobInterner{txn: txn}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	for n := 1; ; n++ {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("restore: record %d: %w", n, err)
		}
		if a := rec.Alloc; a != nil {
			a.Job = jobs.intern(a)
			// Share strings as the FSM does for new allocations (nodes
			// and jobs are persisted before allocations).
			if a.Job != nil && a.JobID == a.Job.ID {
				a.JobID = a.Job.ID
			}
			if raw, err := txn.First(TableNodes, "id", a.NodeID); err == nil && raw != nil {
				n := raw.(*structs.Node)
				a.NodeID = n.ID
				if a.NodeName == n.Name {
					a.NodeName = n.Name
				}
			}
			internAlloc(a)
			if err := allocs.put(a); err != nil {
				return fmt.Errorf("restore: record %d: %w", n, err)
			}
			continue
		}
		if err := insertRecord(txn, &rec); err != nil {
			return fmt.Errorf("restore: record %d: %w", n, err)
		}
	}
	rebuildNodeAllocIndex(allocs)
	txn.Commit()

	s.mu.Lock()
	old := s.abandonCh
	s.db = db
	s.allocs.Store(allocs.view())
	s.abandonCh = make(chan struct{})
	s.mu.Unlock()
	close(old)
	s.watches.reset()
	return nil
}

func insertRecord(txn *memdb.Txn, r *record) error {
	switch {
	case r.Node != nil:
		return txn.Insert(TableNodes, r.Node)
	case r.Job != nil:
		return txn.Insert(TableJobs, r.Job)
	case r.Failure != nil:
		return txn.Insert(TablePlacementFailures, r.Failure)
	case r.Index != nil:
		return txn.Insert(tableIndex, r.Index)
	case r.Server != nil:
		return txn.Insert(TableServers, r.Server)
	}
	return errors.New("empty record")
}
