package bench

import (
	"context"
	"testing"
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
