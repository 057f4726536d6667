package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// firedNow reports whether a channel of ws is closed, without waiting.
func firedNow(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// allocModel is the reference the table is checked against: a plain map.
type allocModel map[string]*structs.Allocation

// checkTable compares every index of t with the model.
func checkTable(t *testing.T, tb *allocTable, m allocModel, step string) {
	t.Helper()
	ids := slices.Sorted(maps.Keys(m))
	var got []string
	tb.each(func(a *structs.Allocation) bool {
		got = append(got, a.ID)
		return true
	})
	if !slices.Equal(got, ids) {
		t.Fatalf("%s: IDs %v, model %v", step, got, ids)
	}
	byNode := map[string][]string{}
	byJob := map[string][]string{}
	used := map[string]structs.Resources{}
	nsUsed := map[string]structs.Resources{}
	for _, id := range ids {
		a := m[id]
		if tb.get(id) != a {
			t.Fatalf("%s: get(%s) is not the model's allocation", step, id)
		}
		byNode[a.NodeID] = append(byNode[a.NodeID], id)
		byJob[a.JobID] = append(byJob[a.JobID], id)
		if !a.Terminal() {
			used[a.NodeID] = used[a.NodeID].Add(a.Resources)
			ns := structs.JobNamespace(a.JobID)
			nsUsed[ns] = nsUsed[ns].Add(a.Resources)
		}
	}
	if !maps.Equal(tb.nsUsed, nsUsed) {
		t.Fatalf("%s: namespace usage %v, model %v", step, tb.nsUsed, nsUsed)
	}
	groups := func(outer map[string][]string, get func(string) *allocGroup, n int) {
		t.Helper()
		if n != len(outer) {
			t.Fatalf("%s: %d groups, model %d", step, n, len(outer))
		}
		for key, want := range outer {
			var got []string
			for _, a := range get(key).list() {
				got = append(got, a.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: group %s holds %v, model %v", step, key, got, want)
			}
		}
	}
	groups(byNode, tb.nodeGroup, tb.byNode.Len())
	groups(byJob, tb.jobGroup, tb.byJob.Len())
	for node, ids := range byNode {
		if got := tb.nodeGroup(node).used; got != used[node] {
			t.Fatalf("%s: node %s uses %s, model %s", step, node, got, used[node])
		}
		for _, since := range []uint64{0, 2, 5, 9} {
			var want, got []string
			wantHeld := 0
			for _, id := range ids {
				if m[id].AllocModifyIndex > since {
					want = append(want, id)
				}
				if m[id].CreateIndex <= since {
					wantHeld++
				}
			}
			held, total := tb.nodeGroup(node).delta(since, func(a *structs.Allocation) { got = append(got, a.ID) })
			if !slices.Equal(got, want) || held != wantHeld || total != len(ids) {
				t.Fatalf("%s: node %s delta since %d: %v held %d of %d, model %v held %d of %d",
					step, node, since, got, held, total, want, wantHeld, len(ids))
			}
		}
	}
}

// runAllocOps drives the table with operations decoded from ops (two bytes
// each) and checks it, and every version published before, against map
// models. Transactions that abort must leave no trace.
func runAllocOps(t *testing.T, ops []byte) {
	base := newAllocTable()
	model := allocModel{}
	type version struct {
		tb *allocTable
		m  allocModel
	}
	var versions []version
	seq := uint64(0)
	for i := 0; i+1 < len(ops); {
		seq++
		x := newAllocTxn(base, seq)
		m := maps.Clone(model)
		// A transaction of up to 8 operations.
		n := 1 + int(ops[i]%8)
		abort := ops[i]&0x80 != 0
		i++
		for ; n > 0 && i+1 < len(ops); n-- {
			op, arg := ops[i], ops[i+1]
			i += 2
			id := fmt.Sprintf("a%02x", arg%48)
			switch op % 4 {
			case 0, 1: // insert or replace, maybe moving groups
				a := &structs.Allocation{ID: id, NodeID: fmt.Sprintf("n%d", op/4%5), JobID: []string{"j0", "ns1/j1", "ns2/j2"}[op/32%3],
					Resources:     structs.Resources{CPU: int64(arg) + 1, MemoryMB: int64(op) + 1},
					DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientRunning,
					CreateIndex: uint64(arg % 8), AllocModifyIndex: uint64(arg%8 + op%5)}
				if op%4 == 1 {
					a.ClientStatus = structs.AllocClientComplete
				}
				if err := x.put(a); err != nil {
					t.Fatal(err)
				}
				m[id] = a
			case 2:
				if got, want := x.remove(id), m[id] != nil; got != want {
					t.Fatalf("remove(%s) = %v, model has it: %v", id, got, want)
				}
				delete(m, id)
			case 3: // a read inside the transaction
				if x.get(id) != m[id] {
					t.Fatalf("txn get(%s) is not the model's", id)
				}
			}
		}
		checkTable(t, x.view(), m, fmt.Sprintf("txn %d", seq))
		if abort {
			continue
		}
		versions = append(versions, version{base, model})
		base, model = x.result(), m
	}
	checkTable(t, base, model, "final")
	for i, v := range versions {
		checkTable(t, v.tb, v.m, fmt.Sprintf("version %d", i))
	}
}

// TestAllocTableMatchesModel is a property test over random operation
// sequences: inserts, replacements that move between nodes and jobs,
// removals, reads inside transactions, aborted transactions; old versions
// must not change.
func TestAllocTableMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			ops := make([]byte, 600)
			for i := range ops {
				ops[i] = byte(rng.UintN(256))
			}
			runAllocOps(t, ops)
		})
	}
}

func FuzzAllocTable(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 1, 4, 2, 2, 1, 0, 9})
	f.Add(bytes.Repeat([]byte{7, 0, 5, 32, 5, 2, 5, 1, 6}, 40))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4096 {
			return
		}
		runAllocOps(t, ops)
	})
}

// TestAllocTxnCopiesOnce checks the ownership marks: a transaction copies
// a group on its first write and writes it in place after; the published
// version keeps its own.
func TestAllocTxnCopiesOnce(t *testing.T) {
	x := newAllocTxn(newAllocTable(), 1)
	must(t, x.put(testAlloc("a1", "j", "n1", 0)))
	base := x.result()
	g0 := base.nodeGroup("n1")

	y := newAllocTxn(base, 2)
	must(t, y.put(testAlloc("a2", "j", "n1", 1)))
	g1 := y.view().nodeGroup("n1")
	if g1 == g0 {
		t.Fatal("the transaction wrote the published group")
	}
	must(t, y.put(testAlloc("a3", "j", "n1", 2)))
	if g2 := y.view().nodeGroup("n1"); g2 != g1 {
		t.Fatal("the transaction copied its own group again")
	}
	if len(y.groups) != 2 { // n1 and j, once each
		t.Fatalf("touched groups %v, want n1 and j once", y.groups)
	}
	if got := len(base.nodeGroup("n1").list()); got != 1 || base.len() != 1 {
		t.Fatalf("published version changed: %d in n1, %d in all", got, base.len())
	}
	z := newAllocTxn(base, 3)
	if z.result() != base || z.changed() {
		t.Fatal("a transaction without writes publishes a new table")
	}
}

func TestStoreWriteIsAtomic(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertAllocs(2, []*structs.Allocation{testAlloc("a1", "j", "n1", 0)}))
	before := s.Snapshot()
	boom := errors.New("boom")
	err := s.write(func(txn *writeTxn) error {
		must(t, txn.allocs.put(testAlloc("a2", "j", "n1", 1)))
		if err := bumpIndex(txn, 3, TableAllocs); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}
	after := s.Snapshot()
	if after.AllocByID("a2") != nil || after.TableIndex(TableAllocs) != 2 {
		t.Fatal("a failed transaction left changes")
	}
	must(t, s.UpsertAllocs(3, []*structs.Allocation{testAlloc("a2", "j", "n2", 1)}))
	if before.AllocByID("a2") != nil || len(before.Allocs()) != 1 || before.NodeUsage("n2") != (structs.Resources{}) {
		t.Fatal("a later write shows through an old snapshot")
	}
	now := s.Snapshot()
	if now.AllocByID("a2") == nil || now.TableIndex(TableAllocs) != 3 || now.NodeUsage("n2").CPU != 100 {
		t.Fatal("the allocation and its index row are not visible together")
	}
}

// TestAllocWatches checks which writes fire which allocation watches, that
// channels exist only while watched, and that a watch registered after the
// change it waits for fires at once.
func TestAllocWatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		read  func(ws memdb.WatchSet, snap *Snapshot)
		write func(s *Store, index uint64) error
		wake  bool
	}{
		{"id, reported", func(ws memdb.WatchSet, s *Snapshot) { s.AllocByIDWatch(ws, "a1") },
			func(s *Store, i uint64) error { return report(s, i, "n1", "a1") }, true},
		{"id, other reported", func(ws memdb.WatchSet, s *Snapshot) { s.AllocByIDWatch(ws, "a1") },
			func(s *Store, i uint64) error { return report(s, i, "n1", "a2") }, false},
		{"missing id, placed", func(ws memdb.WatchSet, s *Snapshot) { s.AllocByIDWatch(ws, "new") },
			func(s *Store, i uint64) error { return place(s, i, "new", "j2", "n3") }, true},
		{"node, report on it", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsByNodeWatch(ws, "n1") },
			func(s *Store, i uint64) error { return report(s, i, "n1", "a2") }, true},
		{"node, placement elsewhere", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsByNodeWatch(ws, "n1") },
			func(s *Store, i uint64) error { return place(s, i, "new", "j", "n2") }, false},
		{"job, stopped", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsByJobWatch(ws, "j") },
			func(s *Store, i uint64) error { return s.StopJob(i, "j", 1) }, true},
		{"job, other job placed", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsByJobWatch(ws, "j") },
			func(s *Store, i uint64) error { return place(s, i, "new", "j2", "n1") }, false},
		{"job, purged", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsByJobWatch(ws, "j") },
			func(s *Store, i uint64) error { return s.PurgeJob(i, "j") }, true},
		{"table, any report", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsWatch(ws) },
			func(s *Store, i uint64) error { return report(s, i, "n2", "a3") }, true},
		{"table, job write only", func(ws memdb.WatchSet, s *Snapshot) { s.AllocsWatch(ws) },
			func(s *Store, i uint64) error { return s.UpsertJob(i, testJob("j3")) }, false},
		{"node index, placement on it", func(ws memdb.WatchSet, s *Snapshot) { s.NodeAllocIndexWatch(ws, "n1") },
			func(s *Store, i uint64) error { return place(s, i, "new", "j", "n1") }, true},
		{"node index, report on it", func(ws memdb.WatchSet, s *Snapshot) { s.NodeAllocIndexWatch(ws, "n1") },
			func(s *Store, i uint64) error { return report(s, i, "n1", "a1") }, false},
		{"feed, placement anywhere", func(ws memdb.WatchSet, s *Snapshot) { s.NodeAllocFeedWatch(ws) },
			func(s *Store, i uint64) error { return place(s, i, "new", "j", "n9") }, true},
		{"feed, report", func(ws memdb.WatchSet, s *Snapshot) { s.NodeAllocFeedWatch(ws) },
			func(s *Store, i uint64) error { return report(s, i, "n1", "a1") }, false},
		{"prefix, new match", func(ws memdb.WatchSet, s *Snapshot) { _, _ = s.AllocByPrefix(ws, "ne") },
			func(s *Store, i uint64) error { return place(s, i, "new", "j", "n1") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, late := range []bool{false, true} {
				s := newStore(t)
				must(t, s.UpsertJob(1, testJob("j")))
				must(t, s.UpsertJob(2, testJob("j2")))
				must(t, s.UpsertAllocs(3, []*structs.Allocation{
					testAlloc("a1", "j", "n1", 0), testAlloc("a2", "j", "n1", 1), testAlloc("a3", "j2", "n2", 0),
				}))
				snap := s.Snapshot()
				tc.read(nil, snap)
				if n := len(s.watches.chans); n != 0 {
					t.Fatalf("%d channels made for reads that do not watch", n)
				}
				ws := memdb.NewWatchSet()
				if late {
					// The write commits between the read's snapshot and
					// the registration of its watch.
					must(t, tc.write(s, 4))
					tc.read(ws, snap)
				} else {
					tc.read(ws, snap)
					must(t, tc.write(s, 4))
				}
				if got := firedNow(ws); got != tc.wake {
					t.Fatalf("late %v: fired %v, want %v", late, got, tc.wake)
				}
			}
		})
	}
}

func place(s *Store, index uint64, id, job, node string) error {
	return s.UpsertAllocs(index, []*structs.Allocation{testAlloc(id, job, node, 9)})
}

func report(s *Store, index uint64, node, id string) error {
	_, err := s.UpdateAllocsFromClient(index, node, []*structs.AllocClientUpdate{{ID: id, ClientStatus: structs.AllocClientRunning}}, 1)
	return err
}

func TestAllocByPrefix(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertAllocs(2, []*structs.Allocation{
		testAlloc("abc1", "j", "n1", 0), testAlloc("abc2", "j", "n1", 1), testAlloc("abd", "j", "n1", 2), testAlloc("b", "j", "n1", 3),
		// IDs whose first 8 bytes tie: the table's inline key does not
		// tell them apart.
		testAlloc("01234567-aaaa", "j", "n1", 4), testAlloc("01234567-abbb", "j", "n1", 5),
		testAlloc("01234567-b", "j", "n1", 6), testAlloc("012345", "j", "n1", 7),
	}))
	snap := s.Snapshot()
	for _, tc := range []struct {
		ref, want string
		err       error
	}{
		{"abc1", "abc1", nil},
		{"abd", "abd", nil},
		{"abd0", "", ErrNotFound},
		{"ab", "", ErrAmbiguous},
		{"abc", "", ErrAmbiguous},
		{"b", "b", nil},
		{"c", "", ErrNotFound},
		{"", "", ErrNotFound},
		{"01234567-ab", "01234567-abbb", nil},
		{"01234567-abbb", "01234567-abbb", nil},
		{"01234567-a", "", ErrAmbiguous},
		{"01234567-b", "01234567-b", nil},
		{"01234567-c", "", ErrNotFound},
		{"01234567-", "", ErrAmbiguous},
		{"012345", "012345", nil}, // exact ID
		{"0123456", "", ErrAmbiguous},
		{"01234", "", ErrAmbiguous},
	} {
		a, err := snap.AllocByPrefix(nil, tc.ref)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err %v, want %v", tc.ref, err, tc.err)
			continue
		}
		if tc.want != "" && (a == nil || a.ID != tc.want) {
			t.Errorf("%q: got %v, want %s", tc.ref, a, tc.want)
		}
	}
}

// TestRestoreRebuildsAllocTable checks that a restored store has the same
// allocations, groups and usage as the persisted one, and that a watch on
// the old table wakes.
func TestRestoreRebuildsAllocTable(t *testing.T) {
	src := newStore(t)
	must(t, src.UpsertJob(1, testJob("j")))
	model := allocModel{}
	var allocs []*structs.Allocation
	for i := range 300 {
		a := testAlloc(fmt.Sprintf("a%03d", i), fmt.Sprint("j", i%7), fmt.Sprint("n", i%13), i)
		allocs = append(allocs, a)
	}
	must(t, src.UpsertAllocs(2, allocs))
	_, err := src.UpdateAllocsFromClient(3, "n1", []*structs.AllocClientUpdate{{ID: "a001", ClientStatus: structs.AllocClientComplete}}, 1)
	must(t, err)
	for _, a := range src.Snapshot().Allocs() {
		model[a.ID] = a
	}
	var buf bytes.Buffer
	must(t, src.Snapshot().Persist(&buf))

	dst := newStore(t)
	must(t, dst.UpsertAllocs(1, []*structs.Allocation{testAlloc("old", "j", "n1", 0)}))
	ws := memdb.NewWatchSet()
	dst.Snapshot().AllocByIDWatch(ws, "old")
	must(t, dst.Restore(&buf))
	if !firedNow(ws) {
		t.Fatal("restore did not wake a watch on the old table")
	}
	got := dst.Snapshot()
	restored := allocModel{}
	for _, a := range got.Allocs() {
		if want := model[a.ID]; want == nil || want.ClientStatus != a.ClientStatus || want.NodeID != a.NodeID {
			t.Fatalf("restored %s differs", a.ID)
		}
		restored[a.ID] = a
	}
	checkTable(t, got.allocs, restored, "restored")
	if len(restored) != len(model) {
		t.Fatalf("restored %d allocations, persisted %d", len(restored), len(model))
	}
}

// TestAllocWatchesAreBounded checks the registry's bound: past it every
// channel is closed (a spurious wake-up) and the registry starts over.
func TestAllocWatchesAreBounded(t *testing.T) {
	s := newStore(t)
	snap := s.Snapshot()
	first := memdb.NewWatchSet()
	snap.AllocByIDWatch(first, "never-0")
	for i := 1; i < maxWatchChans; i++ {
		snap.AllocByIDWatch(nil, "x") // no channel without a watch set
		s.watches.register(snap.allocs, s.allocs.Load, watchID, fmt.Sprint("never-", i))
	}
	if firedNow(first) || len(s.watches.chans) != maxWatchChans {
		t.Fatalf("fired early or %d channels", len(s.watches.chans))
	}
	snap.AllocByIDWatch(memdb.NewWatchSet(), "one-more")
	if !firedNow(first) || len(s.watches.chans) != 1 {
		t.Fatalf("past the bound: fired %v, %d channels", firedNow(first), len(s.watches.chans))
	}
}

// TestItemOrderIsStringOrder checks that the inline key prefix does not
// change the order: items compare as their strings do (and that the
// hashed trees' items are a total order on their strings).
func TestItemOrderIsStringOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	alphabet := []byte{0, 1, 'a', 'b', 0xff}
	word := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 20000 {
		x, y := word(), word()
		if got := lessAllocItem(mkAllocItem(x, nil), mkAllocItem(y, nil)); got != (x < y) {
			t.Fatalf("%q < %q: items say %v", x, y, got)
		}
		// Group items are ordered by hash: a total order whose equality
		// is the strings'.
		gx, gy := mkGroupItem(x, nil), mkGroupItem(y, nil)
		if xy, yx := lessGroupItem(gx, gy), lessGroupItem(gy, gx); (xy && yx) || (x == y) != (!xy && !yx) {
			t.Fatalf("%q, %q: group items say x<y %v, y<x %v", x, y, xy, yx)
		}
		rx, ry := mkNodeIndexItem(x, 1), mkNodeIndexItem(y, 1)
		if xy, yx := lessNodeIndexByIndex(rx, ry), lessNodeIndexByIndex(ry, rx); (xy && yx) || (x == y) != (!xy && !yx) {
			t.Fatalf("%q, %q: feed rows say x<y %v, y<x %v", x, y, xy, yx)
		}
		ex, ey := mkGroupEntry(&structs.Allocation{ID: x}), mkGroupEntry(&structs.Allocation{ID: y})
		if got := lessGroupEntry(ex, ey); got != (x < y) {
			t.Fatalf("%q < %q: group entries say %v", x, y, got)
		}
	}
}

// TestSnapshotsAreAtomicUnderConcurrentWrites reads snapshots while a
// writer commits: in every snapshot the allocations table's index row (a
// go-memdb row) equals the highest ModifyIndex among the allocations (the
// allocation table), so the two are published together; a snapshot read
// twice gives the same answers; and blocking watches wake.
func TestSnapshotsAreAtomicUnderConcurrentWrites(t *testing.T) {
	s := newStore(t)
	const writes = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range writes {
			index := uint64(i + 2)
			var batch []*structs.Allocation
			for j := range 5 {
				batch = append(batch, testAlloc(fmt.Sprintf("a%03d-%d", i%40, j), fmt.Sprint("j", j), fmt.Sprint("n", (i+j)%7), j))
			}
			if err := s.UpsertAllocs(index, batch); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { <-done }()
	check := func(snap *Snapshot) (uint64, int) {
		var top uint64
		all := snap.Allocs()
		for _, a := range all {
			top = max(top, a.ModifyIndex)
		}
		if idx := snap.TableIndex(TableAllocs); idx != top {
			t.Errorf("index row %d, allocations up to %d", idx, top)
		}
		return top, len(all)
	}
	for {
		select {
		case <-done:
			if got, _ := check(s.Snapshot()); got != writes+1 {
				t.Fatalf("last index %d, want %d", got, writes+1)
			}
			return
		default:
		}
		snap := s.Snapshot()
		ws := memdb.NewWatchSet()
		snap.AllocsByNodeWatch(ws, "n3")
		top1, n1 := check(snap)
		top2, n2 := check(snap)
		if top1 != top2 || n1 != n2 {
			t.Fatalf("one snapshot changed: %d/%d then %d/%d", top1, n1, top2, n2)
		}
		if t.Failed() {
			return
		}
	}
}
