package state

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// TableDeployments holds deployments (structs.Deployment): one per new
// version of a job with an update block, at most MaxDeploymentsPerJob per
// job (the oldest finished ones dropped first).
const TableDeployments = "deployments"

// MaxDeploymentsPerJob bounds each job's kept deployments.
const MaxDeploymentsPerJob = 10

func deploymentsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableDeployments, Indexes: map[string]*memdb.IndexSchema{
		"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		"job": {Name: "job", Indexer: &memdb.StringFieldIndex{Field: "JobID"}},
	}}
}

// UpsertDeployments stores deployments as given (CreateIndex kept). A
// deployment that becomes successful marks its job version stable, in the
// job and in its history.
func (s *Store) UpsertDeployments(index uint64, deps []*structs.Deployment) error {
	return s.write(func(txn *writeTxn) error {
		for _, d := range deps {
			if err := upsertDeploymentTxn(txn, index, d); err != nil {
				return err
			}
		}
		return bumpIndex(txn, index, TableDeployments)
	})
}

func upsertDeploymentTxn(txn *writeTxn, index uint64, d *structs.Deployment) error {
	if d == nil || d.ID == "" || d.JobID == "" {
		return fmt.Errorf("upsert deployment: ID and job ID are required")
	}
	c := d.Copy()
	raw, err := txn.First(TableDeployments, "id", c.ID)
	if err != nil {
		return fmt.Errorf("deployment %s: %w", c.ID, err)
	}
	c.CreateIndex = index
	wasSuccessful := false
	if raw != nil {
		old := raw.(*structs.Deployment)
		c.CreateIndex = old.CreateIndex
		wasSuccessful = old.Status == structs.DeploymentSuccessful
	}
	c.ModifyIndex = index
	if err := txn.Insert(TableDeployments, c); err != nil {
		return fmt.Errorf("deployment %s: %w", c.ID, err)
	}
	if c.Status == structs.DeploymentSuccessful && !wasSuccessful {
		if err := markStableTxn(txn, index, c.JobID, c.JobVersion); err != nil {
			return err
		}
	}
	if raw == nil {
		return pruneDeploymentsTxn(txn, c.JobID)
	}
	return nil
}

// markStableTxn sets Stable on the job's version row and, if it is still
// at that version, on the job.
func markStableTxn(txn *writeTxn, index uint64, jobID string, version uint64) error {
	raw, err := txn.First(TableJobVersions, "id", jobID, version)
	if err != nil {
		return fmt.Errorf("job %s version %d: %w", jobID, version, err)
	}
	if raw != nil && !raw.(*structs.Job).Stable {
		v := raw.(*structs.Job).Copy()
		v.Stable = true
		if err := txn.Insert(TableJobVersions, v); err != nil {
			return fmt.Errorf("job %s version %d: %w", jobID, version, err)
		}
	}
	raw, err = txn.First(TableJobs, "id", jobID)
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	if raw == nil || raw.(*structs.Job).Version != version || raw.(*structs.Job).Stable {
		return nil
	}
	j := raw.(*structs.Job).Copy()
	j.Stable = true
	j.ModifyIndex = index
	if err := txn.Insert(TableJobs, j); err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	return bumpIndex(txn, index, TableJobs, TableJobVersions)
}

// pruneDeploymentsTxn drops a job's oldest finished deployments beyond
// MaxDeploymentsPerJob.
func pruneDeploymentsTxn(txn *writeTxn, jobID string) error {
	deps, err := jobDeployments(txn.Txn, jobID)
	if err != nil {
		return err
	}
	extra := len(deps) - MaxDeploymentsPerJob
	for i := len(deps) - 1; i >= 0 && extra > 0; i-- { // oldest last
		if deps[i].Active() {
			continue
		}
		if err := txn.Delete(TableDeployments, deps[i]); err != nil {
			return fmt.Errorf("deployment %s: %w", deps[i].ID, err)
		}
		extra--
	}
	return nil
}

// endDeploymentsTxn ends the job's active deployments other than of
// version keep (0: all) as cancelled: the job changed or stopped.
func endDeploymentsTxn(txn *writeTxn, index uint64, jobID string, keep uint64, why string, now int64) error {
	deps, err := jobDeployments(txn.Txn, jobID)
	if err != nil {
		return err
	}
	changed := false
	for _, d := range deps {
		if !d.Active() || (keep != 0 && d.JobVersion == keep) {
			continue
		}
		c := d.Copy()
		c.Status = structs.DeploymentCancelled
		c.StatusDescription = why
		c.ModifyTime = now
		c.ModifyIndex = index
		if err := txn.Insert(TableDeployments, c); err != nil {
			return fmt.Errorf("deployment %s: %w", c.ID, err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return bumpIndex(txn, index, TableDeployments)
}

// deleteDeploymentsTxn drops a purged or collected job's deployments.
func deleteDeploymentsTxn(txn *writeTxn, index uint64, jobID string) error {
	n, err := txn.DeleteAll(TableDeployments, "job", jobID)
	if err != nil {
		return fmt.Errorf("deployments of job %s: %w", jobID, err)
	}
	if n == 0 {
		return nil
	}
	return bumpIndex(txn, index, TableDeployments)
}

// jobDeployments returns a job's deployments, newest first.
func jobDeployments(txn *memdb.Txn, jobID string) ([]*structs.Deployment, error) {
	it, err := txn.Get(TableDeployments, "job", jobID)
	if err != nil {
		return nil, fmt.Errorf("deployments of job %s: %w", jobID, err)
	}
	var out []*structs.Deployment
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Deployment))
	}
	slices.SortFunc(out, func(a, b *structs.Deployment) int {
		if c := cmp.Compare(b.CreateIndex, a.CreateIndex); c != 0 {
			return c
		}
		return cmp.Compare(b.JobVersion, a.JobVersion)
	})
	return out, nil
}

// Deployments returns every deployment, newest first.
func (s *Snapshot) Deployments(ws memdb.WatchSet) []*structs.Deployment {
	it := s.iter(ws, TableDeployments, "id")
	var out []*structs.Deployment
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Deployment))
	}
	slices.SortFunc(out, func(a, b *structs.Deployment) int {
		if c := cmp.Compare(b.CreateIndex, a.CreateIndex); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// DeploymentByID returns a deployment or nil.
func (s *Snapshot) DeploymentByID(ws memdb.WatchSet, id string) *structs.Deployment {
	if raw := s.first(ws, TableDeployments, "id", id); raw != nil {
		return raw.(*structs.Deployment)
	}
	return nil
}

// DeploymentByPrefix finds a deployment by a unique prefix of its ID (as
// the CLI shows them, 8 characters).
func (s *Snapshot) DeploymentByPrefix(ws memdb.WatchSet, ref string) (*structs.Deployment, error) {
	if d := s.DeploymentByID(ws, ref); d != nil {
		return d, nil
	}
	it := s.iter(ws, TableDeployments, "id_prefix", ref)
	var found *structs.Deployment
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if found != nil {
			return nil, fmt.Errorf("deployment prefix %q is ambiguous", ref)
		}
		found = raw.(*structs.Deployment)
	}
	return found, nil
}

// DeploymentsByJob returns a job's deployments, newest first.
func (s *Snapshot) DeploymentsByJob(ws memdb.WatchSet, jobID string) []*structs.Deployment {
	s.watchAbandon(ws)
	if ws != nil {
		s.iter(ws, TableDeployments, "job", jobID)
	}
	deps, err := jobDeployments(s.txn, jobID)
	if err != nil {
		panic(fmt.Sprintf("state: %v", err)) // only a schema mistake
	}
	return deps
}

// LatestDeployment returns the job's newest deployment, or nil
// (scheduler.DeploymentReader).
func (s *Snapshot) LatestDeployment(jobID string) *structs.Deployment {
	deps := s.DeploymentsByJob(nil, jobID)
	if len(deps) == 0 {
		return nil
	}
	return deps[0]
}
