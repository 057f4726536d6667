package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/backup"
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
	// Policy, Token and Namespace are written by builds with ACLs and
	// namespaces; earlier snapshots have none.
	Policy    *structs.ACLPolicy `json:"acl_policy,omitempty"`
	Token     *structs.ACLToken  `json:"acl_token,omitempty"`
	Namespace *structs.Namespace `json:"namespace,omitempty"`
	// JobVersion is a row of a job's history (job_versions.go), written
	// by builds with job versions.
	JobVersion *structs.Job `json:"job_version,omitempty"`
	// Deployment is written by builds with rolling updates.
	Deployment *structs.Deployment `json:"deployment,omitempty"`
}

// Persist writes snap as a bare stream of JSON records, the form of
// Raft's own snapshots. Raft calls it from its snapshot goroutine while
// writes continue; snap does not change. Raft's file snapshot store keeps a
// CRC-64 and the size of each snapshot and checks both before handing one
// to Restore, and a follower installing one from the leader checks the
// size it received; the stream needs no trailer of its own there (and a
// server of the previous build, during a rolling upgrade, reads only this
// form). Backups use PersistBackup.
func (snap *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := snap.persist(func(r *record) error { return enc.Encode(r) }); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// PersistBackup writes snap as a backup (package backup: a header naming
// snap's index and now, the records, a trailer with their count and
// checksum), the form GET /v1/operator/snapshot serves.
func (snap *Snapshot) PersistBackup(w io.Writer, now int64) error {
	bw, err := backup.NewWriter(w, backup.Header{Index: snap.Index(), Time: now})
	if err != nil {
		return err
	}
	if err := snap.persist(func(r *record) error { return bw.Encode(r) }); err != nil {
		return err
	}
	return bw.Close()
}

// persist hands every record of snap to encode: nodes and jobs before
// allocations (Restore links allocations to them).
func (snap *Snapshot) persist(encode func(*record) error) error {
	tables := []string{TableNodes, TableNamespaces, TableJobs, TableJobVersions, TableAllocs, TablePlacementFailures, TableServers,
		TableACLPolicies, TableACLTokens, TableDeployments, tableIndex}
	for _, t := range tables {
		if t == TableAllocs {
			var err error
			snap.allocs.each(func(a *structs.Allocation) bool {
				err = encode(&record{Alloc: a})
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
			case *structs.Job:
				if t == TableJobVersions {
					r.JobVersion = v
				} else {
					r.Job = v
				}
			case *structs.Node:
				r.Node = v
			case *structs.PlacementFailure:
				r.Failure = v
			case *IndexEntry:
				r.Index = v
			case *structs.ServerMember:
				r.Server = v
			case *structs.ACLPolicy:
				r.Policy = v
			case *structs.ACLToken:
				r.Token = v
			case *structs.Namespace:
				r.Namespace = v
			case *structs.Deployment:
				r.Deployment = v
			}
			if err := encode(&r); err != nil {
				return fmt.Errorf("persist %s: %w", t, err)
			}
		}
	}
	return nil
}

// backupPrefix starts a backup; a bare record stream never does.
const backupPrefix = `{"gantry_snapshot":`

// Restore replaces the store's content with the records read from r, as
// Raft's FSM does: a bare record stream (Persist; every Raft snapshot,
// those of earlier builds included), or a backup (PersistBackup), which
// must then be whole (RestoreBackup). The records are loaded into a fresh
// database first, so a bad stream leaves the store unchanged; blocking
// queries on the old content are woken.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(len(backupPrefix)); string(head) == backupPrefix {
		_, err := s.RestoreBackup(br)
		return err
	}
	dec := json.NewDecoder(br)
	l, err := s.load(func(rec *record) error { return dec.Decode(rec) })
	if err != nil {
		return err
	}
	s.install(l)
	return nil
}

// BackupInfo describes a backup RestoreBackup loaded.
type BackupInfo struct {
	Header  backup.Header
	Records uint64
	// Offset and Length locate the records in the backup: the bare
	// stream Persist writes, which Raft's snapshots hold.
	Offset, Length int64
}

// RestoreBackup replaces the store's content with the backup read from r,
// checking it whole first (package backup: header, every record, the
// trailer's count and checksum, the header's index against the records').
// Errors about the content wrap backup.ErrInvalid; the store is unchanged
// after any error. A server checks an upload by restoring it into a
// scratch store.
func (s *Store) RestoreBackup(r io.Reader) (*BackupInfo, error) {
	rd, err := backup.NewReader(r)
	if err != nil {
		return nil, err
	}
	l, err := s.load(func(rec *record) error {
		line, err := rd.Next()
		if err != nil {
			return err
		}
		return json.Unmarshal(line, rec)
	})
	if err != nil {
		return nil, err
	}
	hdr := rd.Header()
	if l.index != hdr.Index {
		return nil, fmt.Errorf("%w: the header names index %d but the records' highest index is %d", backup.ErrInvalid, hdr.Index, l.index)
	}
	s.install(l)
	off, n := rd.Span()
	return &BackupInfo{Header: hdr, Records: rd.Records(), Offset: off, Length: n}, nil
}

// loaded is a database filled by load, not yet the store's.
type loaded struct {
	db     *memdb.MemDB
	allocs *allocTxn
	// index is the highest index entry of the tables Snapshot.Index
	// covers.
	index uint64
}

// load decodes records with next until it returns io.EOF into a fresh
// database.
func (s *Store) load(next func(*record) error) (*loaded, error) {
	db, err := newDB()
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	l := &loaded{db: db, allocs: newAllocTxn(newAllocTable(), s.seq.Add(1))}
	jobs := jobInterner{txn: txn}
	for n := 1; ; n++ {
		var rec record
		if err := next(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, backup.ErrInvalid) {
				return nil, fmt.Errorf("restore: %w", err)
			}
			return nil, fmt.Errorf("restore: %w: record %d: %w", backup.ErrInvalid, n, err)
		}
		if err := s.loadRecord(txn, l, &jobs, &rec); err != nil {
			return nil, fmt.Errorf("restore: %w: record %d: %w", backup.ErrInvalid, n, err)
		}
	}
	rebuildNodeAllocIndex(l.allocs)
	txn.Commit()
	return l, nil
}

func (s *Store) loadRecord(txn *memdb.Txn, l *loaded, jobs *jobInterner, rec *record) error {
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
		return l.allocs.put(a)
	}
	if e := rec.Index; e != nil {
		switch e.Key {
		case TableNodes, TableJobs, TableAllocs, TablePlacementFailures:
			l.index = max(l.index, e.Value)
		}
	}
	return insertRecord(txn, rec)
}

// install makes l the store's content and wakes every blocking query.
func (s *Store) install(l *loaded) {
	s.mu.Lock()
	old := s.abandonCh
	s.db = l.db
	s.allocs.Store(l.allocs.view())
	s.abandonCh = make(chan struct{})
	s.mu.Unlock()
	s.aclGen.Add(1)
	close(old)
	s.watches.reset()
}

func insertRecord(txn *memdb.Txn, r *record) error {
	switch {
	case r.Node != nil:
		return txn.Insert(TableNodes, r.Node)
	case r.Job != nil:
		if r.Job.Namespace == "" {
			// Persisted before namespaces existed.
			r.Job.Namespace = structs.DefaultNamespace
		}
		return txn.Insert(TableJobs, r.Job)
	case r.JobVersion != nil:
		return txn.Insert(TableJobVersions, r.JobVersion)
	case r.Failure != nil:
		return txn.Insert(TablePlacementFailures, r.Failure)
	case r.Index != nil:
		return txn.Insert(tableIndex, r.Index)
	case r.Server != nil:
		return txn.Insert(TableServers, r.Server)
	case r.Policy != nil:
		return txn.Insert(TableACLPolicies, r.Policy)
	case r.Token != nil:
		return txn.Insert(TableACLTokens, r.Token)
	case r.Namespace != nil:
		return txn.Insert(TableNamespaces, r.Namespace)
	case r.Deployment != nil:
		return txn.Insert(TableDeployments, r.Deployment)
	}
	return errors.New("empty record")
}
