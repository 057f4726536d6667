package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestRunPeers runs a small workload on three in-process peers: every
// copy is placed once, and the figures are filled in.
func TestRunPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three peers")
	}
	w, err := ParseWorkload([]byte(`
name: peers
nodes:
  - {count: 3, cpu: 4000, memory_mb: 4096, labels: {zone: [a, b, a]}}
jobs:
  - {name: svc, count: 4, tasks: 10, type: service, priority: 50, cpu: 50, memory_mb: 32}
  - {name: bat, count: 2, tasks: 10, type: batch, priority: 50, cpu: 50, memory_mb: 32, run_for: 50ms}
  - {name: zoned, count: 1, tasks: 5, type: service, priority: 50, cpu: 50, memory_mb: 32,
     constraints: [{label: zone, op: "=", value: a}]}
arrival: {concurrency: 2}
timeout: 1m
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunPeers(context.Background(), Options{Workload: w}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Placed != int64(rep.Tasks) || rep.Tasks != 65 || !rep.Check.OK {
		t.Fatalf("placed %d of %d, check %+v", rep.Placed, rep.Tasks, rep.Check)
	}
	if rep.PlacementsPerSecond <= 0 || rep.SubmitToPlaced.N != 65 || rep.ArchitectureLabel() != "peer ×3" {
		t.Errorf("figures: %+v", rep)
	}
}

// TestPeerPlacementFigures times copies from the owners' records as the
// child-process mode reads them: the first allocation of a copy counts
// (a replacement is a record, not a placement), its admission time is its
// task's Received event or, still pending, ModifyTime; at the end a copy
// must be held once: a replaced copy that was stopped does not hold it, a
// copy that ran to completion does, whatever its record wants now.
func TestPeerPlacementFigures(t *testing.T) {
	ms := func(n int64) int64 { return time.Unix(100, 0).UnixNano() + n*int64(time.Millisecond) }
	t0 := time.Unix(100, 0)
	received := func(at int64, more ...string) structs.TaskState {
		ts := structs.TaskState{StartedAt: at + int64(time.Millisecond), Events: []structs.TaskEvent{{Type: "Received", Time: at}, {Type: "Started", Time: at + 1}}}
		for _, typ := range more {
			ts.Events = append(ts.Events, structs.TaskEvent{Type: typ, Time: at + 2})
		}
		return ts
	}
	run, stop := structs.AllocDesiredRun, structs.AllocDesiredStop
	complete := structs.AllocClientComplete
	allocs := []*structs.Allocation{
		// a[0]: placed at 10 ms, lost with its peer, replaced at 50 ms
		{JobID: "a", Index: 0, CreateTime: ms(5), DesiredStatus: stop, ClientStatus: structs.AllocClientLost, TaskState: received(ms(10))},
		{JobID: "a", Index: 0, CreateTime: ms(45), DesiredStatus: run, ClientStatus: structs.AllocClientRunning, TaskState: received(ms(50))},
		// a[1]: admitted at 30 ms, not reported yet
		{JobID: "a", Index: 1, CreateTime: ms(20), ModifyTime: ms(30), DesiredStatus: run, ClientStatus: structs.AllocClientPending},
		// b[0] twice, both wanted; b[1] never placed
		{JobID: "b", Index: 0, CreateTime: ms(60), DesiredStatus: run, ClientStatus: complete, TaskState: received(ms(70), "Terminated")},
		{JobID: "b", Index: 0, CreateTime: ms(61), DesiredStatus: run, ClientStatus: structs.AllocClientRunning, TaskState: received(ms(80))},
		// c[0]: killed by its owner (a duplicate stopped), its other copy completed
		{JobID: "c", Index: 0, CreateTime: ms(60), DesiredStatus: stop, ClientStatus: complete, TaskState: received(ms(70), "Killed")},
		{JobID: "c", Index: 0, CreateTime: ms(61), DesiredStatus: run, ClientStatus: complete, TaskState: received(ms(71), "Terminated")},
		// c[1]: completed, then marked stopped (its peer judged failed), and
		// its replacement completed too: it ran twice
		{JobID: "c", Index: 1, CreateTime: ms(60), DesiredStatus: stop, ClientStatus: complete, TaskState: received(ms(70), "Terminated")},
		{JobID: "c", Index: 1, CreateTime: ms(62), DesiredStatus: run, ClientStatus: complete, TaskState: received(ms(72), "Terminated")},
		// not this run's
		{JobID: "other", Index: 0, CreateTime: ms(1)},
	}
	f := peerPlacementFigures(allocs, map[string]int64{"a": ms(0), "b": ms(40), "c": ms(50)}, map[string]int{"a": 2, "b": 2, "c": 2}, t0)
	if f.placed != 5 || f.records != 9 || f.running != 4 || f.last != ms(70) {
		t.Errorf("placed %d records %d running %d last %d", f.placed, f.records, f.running, f.last)
	}
	slices.Sort(f.toPlaced)
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond}
	if !slices.Equal(f.toPlaced, want) {
		t.Errorf("submit to placed %v, want %v", f.toPlaced, want)
	}
	if f.missing != 1 || f.twice != 2 || f.ranTwice != 1 || f.replaced != 2 || len(f.problems) != 2 ||
		!strings.Contains(f.problems[0], "job b: 1 copies missing, 1 held twice (0 of them ran to completion twice)") ||
		!strings.Contains(f.problems[1], "job c: 0 copies missing, 1 held twice (1 of them ran to completion twice)") {
		t.Errorf("missing %d twice %d ran twice %d replaced %d problems %q", f.missing, f.twice, f.ranTwice, f.replaced, f.problems)
	}
	if len(f.examples) != 2 || !strings.HasPrefix(f.examples[0], "b[0]:") || !strings.Contains(f.examples[1], "stop/complete") {
		t.Errorf("examples %q", f.examples)
	}
}
