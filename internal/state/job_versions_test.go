package state

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func versionsOf(snap *Snapshot, id string) []uint64 {
	var out []uint64
	for _, v := range snap.JobVersions(nil, id) {
		out = append(out, v.Version)
	}
	return out
}

// TestJobVersionsBoundedAndPersisted: each version keeps one row (the last
// registration at it), at most JobVersionsKept rows per job, newest first,
// across versions past 127 (whose index encoding does not sort); another
// job with a longer ID sharing the prefix is not mixed in; rows survive a
// snapshot and go with a purge.
func TestJobVersionsBoundedAndPersisted(t *testing.T) {
	s := newStore(t)
	s.SetJobVersionsKept(3)
	idx := uint64(10)
	reg := func(id string, version uint64, count int) {
		t.Helper()
		idx++
		must(t, s.UpsertJob(idx, &structs.Job{ID: id, Name: id, Version: version, Count: count}))
	}
	for v := uint64(125); v <= 130; v++ {
		reg("web", v, 1)
	}
	reg("web", 130, 7) // a count change at the current version
	reg("web2", 1, 1)
	if got := versionsOf(s.Snapshot(), "web"); !slices.Equal(got, []uint64{130, 129, 128}) {
		t.Fatalf("versions %v, want [130 129 128]", got)
	}
	if v := s.Snapshot().JobVersion("web", 130); v == nil || v.Count != 7 {
		t.Fatalf("version 130: %+v", v)
	}
	if s.Snapshot().JobVersion("web", 127) != nil {
		t.Fatal("version 127 kept beyond the bound")
	}

	var buf bytes.Buffer
	must(t, s.Snapshot().Persist(&buf))
	r := newStore(t)
	must(t, r.Restore(&buf))
	if got := versionsOf(r.Snapshot(), "web"); !slices.Equal(got, []uint64{130, 129, 128}) {
		t.Fatalf("versions after restore %v", got)
	}
	if j := r.Snapshot().JobByID("web"); j == nil || j.Version != 130 {
		t.Fatalf("job after restore: %+v", j)
	}

	must(t, s.PurgeJob(idx+1, "web"))
	if got := versionsOf(s.Snapshot(), "web"); len(got) != 0 {
		t.Fatalf("versions after purge %v", got)
	}
	if got := versionsOf(s.Snapshot(), "web2"); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("web2 versions %v", got)
	}
}

// TestJobVersionsKeptSetting: the default is Nomad's 6; values are capped.
func TestJobVersionsKeptSetting(t *testing.T) {
	s := newStore(t)
	if s.JobVersionsKept() != DefaultJobVersionsKept {
		t.Fatalf("default %d", s.JobVersionsKept())
	}
	s.SetJobVersionsKept(1 << 20)
	if s.JobVersionsKept() != MaxJobVersionsKept {
		t.Fatalf("capped to %d", s.JobVersionsKept())
	}
}

// TestJobStatusOfKinds: templates read as running; a sysbatch job is dead
// once its copies all ended with one completed.
func TestJobStatusOfKinds(t *testing.T) {
	tmpl := &structs.Job{Type: structs.JobTypeBatch, Periodic: &structs.PeriodicConfig{Cron: "@daily"}}
	if got := JobStatus(tmpl, nil); got != structs.JobStatusRunning {
		t.Fatalf("template: %s", got)
	}
	sb := &structs.Job{Type: structs.JobTypeSysBatch, Version: 1}
	done := &structs.Allocation{JobVersion: 1, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientComplete}
	running := &structs.Allocation{JobVersion: 1, DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning}
	if got := JobStatus(sb, []*structs.Allocation{done, running}); got != structs.JobStatusRunning {
		t.Fatalf("sysbatch running: %s", got)
	}
	if got := JobStatus(sb, []*structs.Allocation{done, done}); got != structs.JobStatusDead {
		t.Fatalf("sysbatch done: %s", got)
	}
	if got := JobStatus(sb, nil); got != structs.JobStatusPending {
		t.Fatalf("sysbatch never run: %s", got)
	}
}

// TestNeededAllocsPerNode: garbage collection keeps each node's head and a
// sysbatch job's completed copies of the current version.
func TestNeededAllocsPerNode(t *testing.T) {
	sb := &structs.Job{Type: structs.JobTypeSysBatch, Version: 2}
	mk := func(id, node string, version uint64, create uint64, client string) *structs.Allocation {
		return &structs.Allocation{ID: id, NodeID: node, JobVersion: version, CreateIndex: create,
			DesiredStatus: structs.AllocDesiredRun, ClientStatus: client}
	}
	allocs := []*structs.Allocation{
		mk("old-done", "n1", 1, 1, structs.AllocClientComplete),
		mk("n1-done", "n1", 2, 5, structs.AllocClientComplete),
		mk("n2-failed-old", "n2", 2, 3, structs.AllocClientFailed),
		mk("n2-failed", "n2", 2, 6, structs.AllocClientFailed),
		mk("n3-running", "n3", 2, 7, structs.AllocClientRunning),
	}
	got := NeededAllocs(sb, allocs)
	want := map[string]bool{"n1-done": true, "n2-failed": true}
	if len(got) != len(want) || !got["n1-done"] || !got["n2-failed"] {
		t.Fatalf("needed %v, want %v", got, want)
	}
}
