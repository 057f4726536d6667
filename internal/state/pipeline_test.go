package state

import (
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestApplyJobWrites: a batch of job writes applies in order in one
// transaction, table-driven.
func TestApplyJobWrites(t *testing.T) {
	reg := func(id string, version uint64) structs.JobWrite {
		j := testJob(id)
		j.Version = version
		return structs.JobWrite{Register: &structs.JobRegisterRequest{Job: j}}
	}
	stop := func(id string) structs.JobWrite {
		return structs.JobWrite{Deregister: &structs.JobDeregisterRequest{JobID: id, Time: 7}}
	}
	purge := func(id string) structs.JobWrite {
		return structs.JobWrite{Deregister: &structs.JobDeregisterRequest{JobID: id, Purge: true}}
	}
	type want struct {
		version uint64
		stopped bool
		gone    bool
	}
	tests := []struct {
		name    string
		writes  []structs.JobWrite
		want    map[string]want
		wantErr bool
	}{
		{name: "two jobs", writes: []structs.JobWrite{reg("a", 1), reg("b", 1)},
			want: map[string]want{"a": {version: 1}, "b": {version: 1}}},
		{name: "same job twice, last wins", writes: []structs.JobWrite{reg("a", 1), reg("a", 2)},
			want: map[string]want{"a": {version: 2}}},
		{name: "register then stop", writes: []structs.JobWrite{reg("a", 1), stop("a")},
			want: map[string]want{"a": {version: 1, stopped: true}}},
		{name: "stop then register again", writes: []structs.JobWrite{reg("a", 1), stop("a"), reg("a", 1)},
			want: map[string]want{"a": {version: 1}}},
		{name: "purge then stop is skipped", writes: []structs.JobWrite{reg("a", 1), purge("a"), stop("a"), reg("b", 1)},
			want: map[string]want{"a": {gone: true}, "b": {version: 1}}},
		{name: "both set", writes: []structs.JobWrite{{Register: reg("a", 1).Register, Deregister: stop("a").Deregister}}, wantErr: true},
		{name: "neither set", writes: []structs.JobWrite{reg("a", 1), {}}, wantErr: true},
		{name: "nil job", writes: []structs.JobWrite{{Register: &structs.JobRegisterRequest{}}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			err := s.ApplyJobWrites(10, tc.writes)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				if len(s.Snapshot().Jobs()) != 0 || s.Snapshot().Index() != 0 {
					t.Fatal("a failed batch changed the store")
				}
				return
			}
			must(t, err)
			snap := s.Snapshot()
			for id, w := range tc.want {
				j := snap.JobByID(id)
				if w.gone {
					if j != nil {
						t.Errorf("%s still stored", id)
					}
					continue
				}
				if j == nil || j.Version != w.version || j.Stop != w.stopped || j.ModifyIndex != 10 {
					t.Errorf("%s: %+v, want %+v at index 10", id, j, w)
				}
			}
			if snap.TableIndex(TableJobs) != 10 {
				t.Errorf("jobs table index %d, want 10", snap.TableIndex(TableJobs))
			}
		})
	}
}

// TestApplyPlanDropsPlacementsOfChangedJob: a plan checked against one
// version of a job commits its placements (and the evictions made for
// them) only if the job is still at that version and not stopped; its
// stops always commit. Entries without JobVersion keep the old rule.
func TestApplyPlanDropsPlacementsOfChangedJob(t *testing.T) {
	setup := func(t *testing.T, change func(s *Store)) *Store {
		s := newStore(t)
		j := testJob("web")
		j.Version = 3
		must(t, s.UpsertJob(1, j))
		low := testJob("low")
		low.Version = 1
		must(t, s.UpsertJob(1, low))
		must(t, s.UpsertAllocs(2, []*structs.Allocation{testAlloc("old", "web", "n1", 0), testAlloc("victim", "low", "n1", 0)}))
		if change != nil {
			change(s)
		}
		return s
	}
	plan := func(version uint64) *structs.ApplyPlanRequest {
		stopOld := testAlloc("old", "web", "n1", 0)
		stopOld.DesiredStatus = structs.AllocDesiredStop
		evict := testAlloc("victim", "low", "n1", 0)
		evict.DesiredStatus, evict.PreemptedBy = structs.AllocDesiredEvict, "new"
		return &structs.ApplyPlanRequest{JobID: "web", JobVersion: version, ClearFailure: true,
			Allocs: []*structs.Allocation{stopOld, evict, testAlloc("new", "web", "n1", 1)}}
	}
	bumped := func(s *Store) {
		j := testJob("web")
		j.Version = 4
		must(t, s.UpsertJob(3, j))
	}
	tests := []struct {
		name        string
		change      func(s *Store)
		version     uint64
		wantPlaced  bool
		wantDropped bool
	}{
		{name: "unchanged", version: 3, wantPlaced: true},
		{name: "new version", change: bumped, version: 3, wantDropped: true},
		{name: "stopped", change: func(s *Store) { must(t, s.StopJob(3, "web", 0)) }, version: 3, wantDropped: true},
		{name: "purged", change: func(s *Store) { must(t, s.PurgeJob(3, "web")) }, version: 3, wantDropped: true},
		{name: "no version recorded", change: bumped, version: 0, wantPlaced: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t, tc.change)
			dropped, err := s.ApplyPlans(10, []*structs.ApplyPlanRequest{plan(tc.version)})
			must(t, err)
			if got := slices.Equal(dropped, []string{"web"}); got != tc.wantDropped {
				t.Fatalf("dropped %v, want dropped=%v", dropped, tc.wantDropped)
			}
			snap := s.Snapshot()
			if got := snap.AllocByID("new") != nil; got != tc.wantPlaced {
				t.Errorf("placement stored %v, want %v", got, tc.wantPlaced)
			}
			v := snap.AllocByID("victim")
			if evicted := v.DesiredStatus == structs.AllocDesiredEvict; evicted != tc.wantPlaced {
				t.Errorf("victim evicted %v, want %v", evicted, tc.wantPlaced)
			}
			if old := snap.AllocByID("old"); old != nil && old.DesiredStatus != structs.AllocDesiredStop {
				t.Errorf("the plan's stop was not committed: %s", old.DesiredStatus)
			}
		})
	}
	if _, err := newStore(t).ApplyPlans(1, []*structs.ApplyPlanRequest{nil}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("nil plan: %v", err)
	}
}

// TestNewAllocationsShareNodeAndJobStrings: a stored allocation points at
// its node's ID and name and its job's ID instead of keeping the copies
// decoded from the plan entry.
func TestNewAllocationsShareNodeAndJobStrings(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertNode(1, &structs.Node{ID: "node-1", Name: "first", Status: structs.NodeStatusReady}))
	j := testJob("web")
	j.Version = 1
	must(t, s.UpsertJob(2, j))
	a := testAlloc("a1", string([]byte("web")), string([]byte("node-1")), 0)
	a.NodeName = string([]byte("first"))
	a.JobVersion = 1
	must(t, s.UpsertAllocs(3, []*structs.Allocation{a}))
	snap := s.Snapshot()
	got, n, job := snap.AllocByID("a1"), snap.NodeByID("node-1"), snap.JobByID("web")
	if unsafe.StringData(got.NodeID) != unsafe.StringData(n.ID) ||
		unsafe.StringData(got.NodeName) != unsafe.StringData(n.Name) ||
		unsafe.StringData(got.JobID) != unsafe.StringData(job.ID) || got.Job != job {
		t.Fatal("the stored allocation keeps its own copies of the node's and job's strings")
	}
}

// TestApplyPlanSkipsChangesToMissingAllocations: a plan's stop or eviction
// of an allocation that is not stored (placed by an earlier entry that did
// not apply, or purged) stores nothing; its placements still apply.
func TestApplyPlanSkipsChangesToMissingAllocations(t *testing.T) {
	s := newStore(t)
	ghost := testAlloc("ghost", "web", "n1", 0)
	ghost.DesiredStatus = structs.AllocDesiredStop
	evicted := testAlloc("gone", "low", "n1", 0)
	evicted.DesiredStatus, evicted.PreemptedBy = structs.AllocDesiredEvict, "p1"
	_, err := s.ApplyPlans(5, []*structs.ApplyPlanRequest{{JobID: "web",
		Allocs: []*structs.Allocation{ghost, testAlloc("p1", "web", "n1", 1), evicted}}})
	must(t, err)
	snap := s.Snapshot()
	if snap.AllocByID("ghost") != nil || snap.AllocByID("gone") != nil {
		t.Fatal("a stop of a missing allocation created a record")
	}
	if snap.AllocByID("p1") == nil {
		t.Fatal("the plan's placement was not stored")
	}
}
