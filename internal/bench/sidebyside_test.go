package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestArchitectureLabel(t *testing.T) {
	tests := []struct {
		r    Report
		want string
	}{
		{Report{}, "-"},
		{Report{Architecture: "monolithic"}, "monolithic"},
		{Report{Architecture: "shared-state", Workers: 4}, "shared-state ×4"},
	}
	for _, tt := range tests {
		if got := tt.r.ArchitectureLabel(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestWriteSideBySide(t *testing.T) {
	mono := &Report{Workload: "w", Nodes: 10, Jobs: 2, Tasks: 20, Server: "inproc", CPUs: 2, Architecture: "monolithic",
		Placed: 20, PlacementsPerSecond: 1000, Check: CheckResult{OK: true}}
	mono.SubmitToPlaced.P99 = 12.5
	shared := &Report{Workload: "w", Nodes: 10, Jobs: 2, Tasks: 20, Server: "inproc", CPUs: 2, Architecture: "shared-state", Workers: 8,
		Placed: 19, PlacementsPerSecond: 1500, Scheduler: SchedulerFigures{PlansSubmitted: 30, Conflicts: 6, ConflictFraction: 0.25, Retries: 6}}
	var buf bytes.Buffer
	if err := WriteSideBySide(&buf, []*Report{mono, shared}); err != nil {
		t.Fatal(err)
	}
	// Rows compared with runs of spaces collapsed: the alignment is
	// tabwriter's business.
	var rows []string
	for _, l := range strings.Split(buf.String(), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	out := strings.Join(rows, "\n")
	for _, want := range []string{
		"workload w: 10 nodes, 2 jobs, 20 tasks; server inproc; 2 CPUs",
		"scheduler monolithic shared-state ×8",
		"placed 20/20 19/20",
		"placements/s 1000 1500",
		"submit→placed p99 (ms) 12.50 0.00",
		"conflict fraction 0.000 0.250",
		"final-state check OK FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
