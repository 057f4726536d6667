package state

import (
	"errors"
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// Namespaces: the namespaces table holds the namespaces users created
// (and the default one once someone gives it a description or a quota;
// until then it exists without a row). A job's namespace is part of its
// key (structs.JobKey), so allocations, plans and placement failures need
// no field of their own.
//
// Namespace usage: the allocation table keeps, per namespace, the
// resources its live (not Terminal) allocations hold, updated by the
// table's own writes (allocTxn.put and remove) as node usage is, so the
// quota check in the scheduler and the plan applier is one map lookup,
// never a scan.

// Sentinel errors of namespace writes (the API answers 409 and 400).
var (
	// ErrNamespaceNotEmpty refuses to delete a namespace that holds jobs.
	ErrNamespaceNotEmpty = errors.New("namespace still holds jobs")
	// ErrNamespaceLimit refuses a namespace past structs.MaxNamespaces.
	ErrNamespaceLimit = errors.New("too many namespaces")
)

// UpsertNamespaces creates or replaces namespaces, keeping CreateIndex.
// It refuses to grow past structs.MaxNamespaces.
func (s *Store) UpsertNamespaces(index uint64, nss []*structs.Namespace) error {
	return s.write(func(txn *writeTxn) error {
		count, err := countRows(txn, TableNamespaces)
		if err != nil {
			return err
		}
		for _, ns := range nss {
			if ns == nil || ns.Name == "" {
				return errors.New("upsert namespace: a name is required")
			}
			c := *ns
			if ns.Quota != nil {
				q := *ns.Quota
				c.Quota = &q
			}
			c.CreateIndex = index
			raw, err := txn.First(TableNamespaces, "id", c.Name)
			if err != nil {
				return fmt.Errorf("namespace %s: %w", c.Name, err)
			}
			switch {
			case raw != nil:
				c.CreateIndex = raw.(*structs.Namespace).CreateIndex
			case count >= structs.MaxNamespaces:
				return fmt.Errorf("namespace %s: %w: the cluster already has %d, the most allowed", c.Name, ErrNamespaceLimit, count)
			default:
				count++
			}
			c.ModifyIndex = index
			if err := txn.Insert(TableNamespaces, &c); err != nil {
				return fmt.Errorf("namespace %s: %w", c.Name, err)
			}
		}
		return bumpIndex(txn, index, TableNamespaces)
	})
}

func countRows(txn *writeTxn, table string) (int, error) {
	it, err := txn.Get(table, "id")
	if err != nil {
		return 0, fmt.Errorf("%s: %w", table, err)
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n, nil
}

// DeleteNamespaces deletes namespaces; missing ones are skipped (the entry
// may be replayed). It refuses, changing nothing, if one of them is the
// default namespace or still holds a job (stopped ones too: purge them).
func (s *Store) DeleteNamespaces(index uint64, names []string) error {
	return s.write(func(txn *writeTxn) error {
		for _, n := range names {
			if n == structs.DefaultNamespace {
				return fmt.Errorf("namespace %s: the default namespace cannot be deleted", n)
			}
			raw, err := txn.First(TableJobs, "namespace", n)
			if err != nil {
				return fmt.Errorf("namespace %s: %w", n, err)
			}
			if raw != nil {
				return fmt.Errorf("namespace %s: %w (job %s among them); stop and purge them first", n, ErrNamespaceNotEmpty, structs.JobName(raw.(*structs.Job).ID))
			}
			if _, err := txn.DeleteAll(TableNamespaces, "id", n); err != nil {
				return fmt.Errorf("namespace %s: %w", n, err)
			}
		}
		return bumpIndex(txn, index, TableNamespaces)
	})
}

// Namespace returns a namespace by name, or nil. The default namespace
// without a row reads as one without a quota.
func (snap *Snapshot) Namespace(ws memdb.WatchSet, name string) *structs.Namespace {
	snap.watchAbandon(ws)
	if raw := snap.first(ws, TableNamespaces, "id", name); raw != nil {
		return raw.(*structs.Namespace)
	}
	if name == structs.DefaultNamespace {
		return defaultNamespace
	}
	return nil
}

// defaultNamespace stands for the default namespace until it has a row.
var defaultNamespace = &structs.Namespace{Name: structs.DefaultNamespace, Description: "the namespace of jobs that name none"}

// Namespaces returns every namespace by name, the default one included.
func (snap *Snapshot) Namespaces(ws memdb.WatchSet) []*structs.Namespace {
	snap.watchAbandon(ws)
	var out []*structs.Namespace
	sawDefault := false
	it := snap.iter(ws, TableNamespaces, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		ns := raw.(*structs.Namespace)
		if !sawDefault && ns.Name >= structs.DefaultNamespace {
			if ns.Name != structs.DefaultNamespace {
				out = append(out, defaultNamespace)
			}
			sawDefault = true
		}
		out = append(out, ns)
	}
	if !sawDefault {
		out = append(out, defaultNamespace)
	}
	return out
}

// NamespaceQuota returns a namespace's quota, or nil (none, or no such
// namespace) (scheduler.QuotaReader).
func (snap *Snapshot) NamespaceQuota(name string) *structs.Quota {
	if raw := snap.first(nil, TableNamespaces, "id", name); raw != nil {
		return raw.(*structs.Namespace).Quota
	}
	return nil
}

// NamespaceUsage returns what the namespace's live (not Terminal)
// allocations hold: the sum a scan would give, in one map lookup
// (scheduler.QuotaReader).
func (snap *Snapshot) NamespaceUsage(name string) structs.Resources {
	return snap.allocs.nsUsed[name]
}

// JobsInNamespace returns the namespace's jobs, ordered by ID.
func (snap *Snapshot) JobsInNamespace(ws memdb.WatchSet, name string) []*structs.Job {
	snap.watchAbandon(ws)
	var out []*structs.Job
	it := snap.iter(ws, TableJobs, "namespace", name)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Job))
	}
	return out
}
