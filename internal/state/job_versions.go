package state

import (
	"cmp"
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// TableJobVersions keeps each job's recent versions: a copy of the job as
// last registered at each version (a count or metadata change updates the
// row of the current version; a spec change starts a new row), at most
// JobVersionsKept per job, oldest dropped first. `gantry job history`
// reads it and `gantry job revert` registers a row again.
const TableJobVersions = "job_versions"

// DefaultJobVersionsKept is Nomad's default (job_tracked_versions).
const DefaultJobVersionsKept = 6

// MaxJobVersionsKept bounds the setting: every version is a whole job in
// memory, in snapshots and in backups.
const MaxJobVersionsKept = 100

func jobVersionsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableJobVersions, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			&memdb.StringFieldIndex{Field: "ID"},
			&memdb.UintFieldIndex{Field: "Version"},
		}}},
	}}
}

// SetJobVersionsKept sets how many versions of each job the history keeps
// from the next write on (n <= 0: DefaultJobVersionsKept; at most
// MaxJobVersionsKept). Every server of a cluster should use the same
// value: the FSM prunes with its own.
func (s *Store) SetJobVersionsKept(n int) {
	s.versionsKept.Store(int64(min(n, MaxJobVersionsKept)))
}

// JobVersionsKept returns the bound SetJobVersionsKept set.
func (s *Store) JobVersionsKept() int {
	if n := int(s.versionsKept.Load()); n > 0 {
		return n
	}
	return DefaultJobVersionsKept
}

// recordJobVersion writes the job's row of its version and drops the
// oldest rows beyond the bound. Jobs holding an external framework's task
// have no history (the framework owns them, one version each).
func recordJobVersion(txn *writeTxn, j *structs.Job) error {
	if j.FrameworkTask != nil {
		return nil
	}
	if err := txn.Insert(TableJobVersions, j); err != nil {
		return fmt.Errorf("job %s version %d: %w", j.ID, j.Version, err)
	}
	keep := txn.versionsKept
	if keep <= 0 {
		keep = DefaultJobVersionsKept
	}
	rows, err := jobVersionRows(txn.Txn, j.ID)
	if err != nil {
		return err
	}
	// Ascending by version: the first rows beyond the bound are the oldest.
	for _, old := range rows[:max(0, len(rows)-keep)] {
		if err := txn.Delete(TableJobVersions, old); err != nil {
			return fmt.Errorf("job %s version %d: %w", old.ID, old.Version, err)
		}
	}
	return nil
}

// deleteJobVersions drops a purged or collected job's history.
func deleteJobVersions(txn *writeTxn, jobID string) error {
	rows, err := jobVersionRows(txn.Txn, jobID)
	if err != nil {
		return err
	}
	for _, v := range rows {
		if err := txn.Delete(TableJobVersions, v); err != nil {
			return fmt.Errorf("job %s version %d: %w", v.ID, v.Version, err)
		}
	}
	return nil
}

// jobVersionRows returns a job's rows in ascending version order. The
// prefix scan also meets jobs whose ID extends this one ("web" and
// "web2"), and the version's encoding (uvarint) does not sort, so both
// are settled here.
func jobVersionRows(txn *memdb.Txn, jobID string) ([]*structs.Job, error) {
	it, err := txn.Get(TableJobVersions, "id_prefix", jobID)
	if err != nil {
		return nil, fmt.Errorf("job %s versions: %w", jobID, err)
	}
	var rows []*structs.Job
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if v := raw.(*structs.Job); v.ID == jobID {
			rows = append(rows, v)
		}
	}
	slices.SortFunc(rows, func(a, b *structs.Job) int { return cmp.Compare(a.Version, b.Version) })
	return rows, nil
}

// JobVersions returns the job's kept versions, newest first.
func (s *Snapshot) JobVersions(ws memdb.WatchSet, jobID string) []*structs.Job {
	s.watchAbandon(ws)
	if ws != nil {
		s.iter(ws, TableJobVersions, "id_prefix", jobID) // the watch
	}
	rows, err := jobVersionRows(s.txn, jobID)
	if err != nil {
		panic(fmt.Sprintf("state: %v", err)) // only a schema mistake
	}
	slices.Reverse(rows)
	return rows
}

// JobVersion returns one kept version of a job, or nil.
func (s *Snapshot) JobVersion(jobID string, version uint64) *structs.Job {
	if raw := s.first(nil, TableJobVersions, "id", jobID, version); raw != nil {
		return raw.(*structs.Job)
	}
	return nil
}
