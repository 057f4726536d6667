package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

func watchAlloc(id, job, node string, idx int) *structs.Allocation {
	return &structs.Allocation{ID: id, JobID: job, JobVersion: 1, NodeID: node, Index: idx, Name: structs.AllocName(job, idx),
		Resources: structs.Resources{CPU: 100, MemoryMB: 64}, DesiredStatus: structs.AllocDesiredRun,
		ClientStatus: structs.AllocClientPending}
}

// frameSummary renders a frame as "node:full?[id/desired/client ...]" per
// node, sorted, e.g. "n1:full[a1/run/pending a2/run/pending] n2:[b1/run/pending]".
func frameSummary(f *api.NodeWatchFrame) string {
	var parts []string
	for id, d := range f.Nodes {
		if d.NotFound {
			parts = append(parts, id+":notfound")
			continue
		}
		var as []string
		for _, a := range d.Allocs {
			as = append(as, a.ID+"/"+a.DesiredStatus+"/"+a.ClientStatus)
		}
		sort.Strings(as)
		full := ""
		if d.Full {
			full = "full"
		}
		parts = append(parts, fmt.Sprintf("%s:%s[%s]", id, full, strings.Join(as, " ")))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// TestNodeWatcherDeltas drives the watch's core (nodeWatcher.collect)
// over a state store through placements, stops, evictions, losses and a
// purge, for a small watch (sleeping on its nodes' rows) and a large one
// (sleeping on the change feed): each frame must hold exactly the changed
// allocations of the watched nodes, full lists where the caller's view is
// stale, each job once, and the watch must fire only for watched nodes.
func TestNodeWatcherDeltas(t *testing.T) {
	for _, mode := range []struct {
		name    string
		padding int
	}{{"small", 0}, {"large", smallWatch + 4}} {
		t.Run(mode.name, func(t *testing.T) {
			st, err := state.New()
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			index := uint64(1)
			next := func() uint64 { index++; return index }
			for _, id := range []string{"n1", "n2", "x"} {
				must(st.UpsertNode(next(), &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
					Capacity: structs.Resources{CPU: 4000, MemoryMB: 4096}}))
			}
			for _, j := range []string{"j1", "j2"} {
				must(st.UpsertJob(next(), &structs.Job{ID: j, Name: j, Version: 1, Count: 10, Driver: "mock",
					Resources: structs.Resources{CPU: 100, MemoryMB: 64}}))
			}
			must(st.UpsertAllocs(next(), []*structs.Allocation{watchAlloc("a1", "j1", "n1", 0), watchAlloc("a2", "j1", "n1", 1),
				watchAlloc("a3", "j1", "n2", 2)}))
			n2Index, _ := st.Snapshot().NodeAllocIndex("n2")

			req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{
				"n1":    {},                         // new: the full list
				"n2":    {Index: n2Index, Known: 1}, // up to date
				"ghost": {},                         // not registered
			}}
			for i := range mode.padding {
				req.Nodes[fmt.Sprintf("pad%02d", i)] = api.NodeWatchState{Index: 1}
			}
			nw := newNodeWatcher(req)
			ws := memdb.NewWatchSet()
			f := nw.collect(st.Snapshot(), ws)
			if got, want := frameSummary(f), "ghost:notfound n1:full[a1/run/pending a2/run/pending]"; got != want {
				t.Fatalf("first frame = %q, want %q", got, want)
			}
			if len(f.Jobs) != 1 || f.Jobs[f.Nodes["n1"].Allocs[0].JobRef].ID != "j1" {
				t.Fatalf("first frame jobs = %v, want j1 once", f.Jobs)
			}
			if f.Nodes["n1"].Allocs[0].Job != nil {
				t.Fatal("allocation sent with its job embedded")
			}
			sentJobs := 1

			for _, step := range []struct {
				name  string
				write func(i uint64) error
				want  string // "" = no change for the watched nodes: the watch must not fire
			}{
				{"placement on n2", func(i uint64) error {
					return st.UpsertAllocs(i, []*structs.Allocation{watchAlloc("b1", "j2", "n2", 0)})
				}, "n2:[b1/run/pending]"},
				{"placement on an unwatched node", func(i uint64) error {
					return st.UpsertAllocs(i, []*structs.Allocation{watchAlloc("x1", "j2", "x", 5)})
				}, ""},
				{"n1 reports running", func(i uint64) error {
					_, err := st.UpdateAllocsFromClient(i, "n1", []*structs.AllocClientUpdate{
						{ID: "a1", ClientStatus: structs.AllocClientRunning}, {ID: "a2", ClientStatus: structs.AllocClientRunning}}, 1)
					return err
				}, ""},
				{"stop a1", func(i uint64) error {
					a := watchAlloc("a1", "j1", "n1", 0)
					a.DesiredStatus = structs.AllocDesiredStop
					return st.UpsertAllocs(i, []*structs.Allocation{a})
				}, "n1:[a1/stop/running]"},
				{"evict a3 for b2 in one plan", func(i uint64) error {
					a := watchAlloc("a3", "j1", "n2", 2)
					a.DesiredStatus, a.PreemptedBy = structs.AllocDesiredEvict, "b2"
					return st.UpsertAllocs(i, []*structs.Allocation{a, watchAlloc("b2", "j2", "n2", 1)})
				}, "n2:[a3/evict/pending b2/run/pending]"},
				{"n1 goes down", func(i uint64) error {
					return st.UpdateNodeStatus(i, "n1", structs.NodeStatusDown, 1)
				}, "n1:[a1/stop/lost a2/stop/lost]"},
				{"purge j2 (b1, b2 on n2)", func(i uint64) error {
					return st.PurgeJob(i, "j2")
				}, "n2:full[a3/evict/pending]"},
			} {
				if wsFired(ws) {
					t.Fatalf("before %s: the watch had fired already", step.name)
				}
				must(step.write(next()))
				fired := wsFired(ws)
				ws = memdb.NewWatchSet()
				f := nw.collect(st.Snapshot(), ws)
				got := frameSummary(f)
				if got != step.want {
					t.Fatalf("%s: frame = %q, want %q", step.name, got, step.want)
				}
				if mode.padding == 0 && fired != (step.want != "") {
					// A small watch sleeps on its nodes' rows only.
					t.Fatalf("%s: watch fired = %v, want %v", step.name, fired, step.want != "")
				}
				if step.want != "" && !fired {
					t.Fatalf("%s: the watch did not fire", step.name)
				}
				sentJobs += len(f.Jobs)
			}
			if sentJobs != 2 {
				t.Errorf("jobs sent = %d, want 2 (j1 and j2, once each)", sentJobs)
			}
		})
	}
}

// wsFired reports whether ws has fired; the short wait bounds the
// negative case only.
func wsFired(ws memdb.WatchSet) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	return ws.WatchCtx(ctx) == nil
}

// TestNodeWatcherStaleViews checks the cases where the caller's view
// cannot be patched: it holds more allocations than exist at its index
// (a removal it missed), or its index comes from another history (a
// restored state), or it is new (index 0).
func TestNodeWatcherStaleViews(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertNode(2, &structs.Node{ID: "n1", Name: "n1", Status: structs.NodeStatusReady,
		Capacity: structs.Resources{CPU: 4000, MemoryMB: 4096}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertNode(3, &structs.Node{ID: "empty", Name: "empty", Status: structs.NodeStatusReady,
		Capacity: structs.Resources{CPU: 4000, MemoryMB: 4096}}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertAllocs(10, []*structs.Allocation{watchAlloc("a1", "j", "n1", 0), watchAlloc("a2", "j", "n1", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		node string
		have api.NodeWatchState
		want string
	}{
		{"new", "n1", api.NodeWatchState{}, "n1:full[a1/run/pending a2/run/pending]"},
		{"up to date", "n1", api.NodeWatchState{Index: 10, Known: 2}, ""},
		{"holds a removed allocation", "n1", api.NodeWatchState{Index: 5, Known: 1}, "n1:full[a1/run/pending a2/run/pending]"},
		{"behind", "n1", api.NodeWatchState{Index: 5, Known: 0}, "n1:[a1/run/pending a2/run/pending]"},
		{"index from another history", "n1", api.NodeWatchState{Index: 50, Known: 2}, "n1:full[a1/run/pending a2/run/pending]"},
		{"empty node, new", "empty", api.NodeWatchState{}, "empty:full[]"},
		{"empty node, up to date", "empty", api.NodeWatchState{Index: 1}, ""},
		{"empty node, index from another history", "empty", api.NodeWatchState{Index: 7, Known: 1}, "empty:full[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := newNodeWatcher(&api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{tc.node: tc.have}})
			f := nw.collect(st.Snapshot(), memdb.NewWatchSet())
			if got := frameSummary(f); got != tc.want {
				t.Fatalf("frame = %q, want %q", got, tc.want)
			}
			if d := f.Nodes[tc.node]; d != nil {
				if d.Index == 0 {
					t.Fatal("answered node index 0 (a caller passing it back would get full lists forever)")
				}
				// The same watch, asked again without change, is quiet.
				if f2 := nw.collect(st.Snapshot(), memdb.NewWatchSet()); len(f2.Nodes) != 0 {
					t.Fatalf("second look = %q, want nothing", frameSummary(f2))
				}
			}
		})
	}
}

func TestValidateNodeWatch(t *testing.T) {
	long := strings.Repeat("x", 129)
	many := map[string]api.NodeWatchState{}
	for i := range api.MaxWatchNodes + 1 {
		many[fmt.Sprint(i)] = api.NodeWatchState{}
	}
	for _, tc := range []struct {
		name  string
		nodes map[string]api.NodeWatchState
		want  string // "" = valid
	}{
		{"one node", map[string]api.NodeWatchState{"n1": {Index: 3, Known: 1}}, ""},
		{"no nodes", nil, "at least one node"},
		{"empty ID", map[string]api.NodeWatchState{"": {}}, "node ID must be"},
		{"long ID", map[string]api.NodeWatchState{long: {}}, "node ID must be"},
		{"negative known", map[string]api.NodeWatchState{"n1": {Known: -1}}, "must be >= 0"},
		{"too many", many, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateNodeWatch(&api.NodeWatchRequest{Nodes: tc.nodes})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatal("accepted")
			case tc.want != "":
				msg := err.Error()
				var he *httpError
				if errors.As(err, &he) {
					for _, f := range he.fields {
						msg += " " + f.Rule
					}
				}
				if !strings.Contains(msg, tc.want) {
					t.Fatalf("error %q, want it to mention %q", msg, tc.want)
				}
			}
		})
	}
}
