package bench

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const workloadsDir = "../../bench/workloads"

func TestShippedWorkloadsParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(workloadsDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"c1m-like": false, "latency": false, "mixed": false, "small": false}
	for _, f := range files {
		w, err := LoadWorkload(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		want[w.Name] = true
	}
	for name, found := range want {
		if !found {
			t.Errorf("workload %s not shipped in %s", name, workloadsDir)
		}
	}
}

func TestParseWorkload(t *testing.T) {
	const good = `
name: t
nodes: [{count: 2, cpu: 1000, memory_mb: 1024, labels: {zone: [a, b]}}]
jobs: [{name: j, count: 3, tasks: 4, cpu: 10, memory_mb: 10}]
`
	w, err := ParseWorkload([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if w.TotalNodes() != 2 || w.TotalJobs() != 3 || w.TotalTasks() != 12 {
		t.Fatalf("totals: %d nodes %d jobs %d tasks", w.TotalNodes(), w.TotalJobs(), w.TotalTasks())
	}
	if w.Jobs[0].Type != "batch" || w.Arrival.Concurrency == 0 || w.Timeout == 0 || w.HeartbeatTTL == 0 {
		t.Fatalf("defaults not filled: %+v", w)
	}
	if n := w.Nodes[0].node(0, 1); n.Labels["zone"] != "b" {
		t.Fatalf("node 1 zone %q, want b (values given in turn)", n.Labels["zone"])
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", good + "bogus: 1\n", "bogus"},
		{"no name", strings.Replace(good, "name: t", "", 1), "name: is required"},
		{"no nodes", "name: t\njobs: [{name: j, count: 1, tasks: 1, cpu: 1, memory_mb: 1}]", "nodes: at least one"},
		{"zero node count", strings.Replace(good, "count: 2", "count: 0", 1), "nodes[0].count"},
		{"zero tasks", strings.Replace(good, "tasks: 4", "tasks: 0", 1), "jobs[0].tasks"},
		{"bad type", strings.Replace(good, "tasks: 4", "tasks: 4, type: system", 1), "jobs[0].type"},
		{"bad priority", strings.Replace(good, "tasks: 4", "tasks: 4, priority: 101", 1), "jobs[0].priority"},
		{"negative rate", good + "arrival: {rate: -1}\n", "arrival.rate"},
		{"empty label values", strings.Replace(good, "[a, b]", "[]", 1), "labels.zone"},
		{"duplicate job group", strings.Replace(good, "jobs: [{name: j, count: 3, tasks: 4, cpu: 10, memory_mb: 10}]",
			"jobs: [{name: j, count: 1, tasks: 1, cpu: 1, memory_mb: 1}, {name: j, count: 1, tasks: 1, cpu: 1, memory_mb: 1}]", 1), "used by another group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWorkload([]byte(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalidWorkload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want ErrInvalidWorkload mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	old := &Report{Workload: "w", PlacementsPerSecond: 1000, TimeToPlaceAllSeconds: 10, ServerPeakRSSMB: 100, Placed: 10}
	old.SubmitToPlaced.P99 = 20
	cur := &Report{Workload: "w", PlacementsPerSecond: 2000, TimeToPlaceAllSeconds: 5, ServerPeakRSSMB: 103, Placed: 10,
		BenchCPUSeconds: 2} // old is from before bench CPU was measured
	cur.SubmitToPlaced.P99 = 40
	got := map[string]Comparison{}
	for _, c := range Compare(old, cur, 0.05) {
		got[c.Metric] = c
	}
	for _, tc := range []struct {
		metric string
		ratio  float64
		change string
	}{
		{"placements/s", 2, "better"},
		{"time to place all (s)", 0.5, "better"},
		{"submit to placed p99 (ms)", 2, "worse"},
		{"server peak RSS (MiB)", 1.03, "same"},
		{"placed", 1, "same"},
		{"bench CPU during placement (s)", math.NaN(), "same"},
	} {
		c, ok := got[tc.metric]
		if !ok {
			t.Fatalf("metric %q missing", tc.metric)
		}
		if (math.IsNaN(tc.ratio) != math.IsNaN(c.Ratio)) || (!math.IsNaN(tc.ratio) && math.Abs(c.Ratio-tc.ratio) > 1e-9) || c.Change != tc.change {
			t.Errorf("%s: ratio %g %s; want %g %s", tc.metric, c.Ratio, c.Change, tc.ratio, tc.change)
		}
	}
	// A figure that was 0 has no ratio.
	if c := got["submit to running p99 (ms)"]; !math.IsNaN(c.Ratio) || c.Change != "same" {
		t.Errorf("zero figures: ratio %g %s; want NaN same", c.Ratio, c.Change)
	}
}

func TestReadReportRejectsOtherJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(p, []byte(`{"foo": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReport(p); err == nil || !strings.Contains(err.Error(), "not a bench JSON report") {
		t.Fatalf("error %v; want a clear refusal", err)
	}
}

// runSmall runs the CI workload (100 nodes, 1,000 tasks) against an
// in-process server.
func runSmall(tb testing.TB, nodesPerWatch int, useTLS bool, eventSubs int) *Report {
	tb.Helper()
	w, err := LoadWorkload(filepath.Join(workloadsDir, "small.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Workload: w, Server: ServerInProcess, DataDir: tb.TempDir(), Seed: 1,
		Logger: slog.New(slog.DiscardHandler), NodesPerWatch: nodesPerWatch, TLS: useTLS, EventSubscribers: eventSubs})
	if err != nil {
		tb.Fatalf("run: %v", err)
	}
	return rep
}

// TestRunSmallWorkload runs the whole path (server, simulated nodes over
// HTTP, submission, final-state check) and checks the figures are
// consistent. It asserts nothing about speed. The nodes share one watch
// stream (a large watch, served from the change feed), or ten nodes per
// stream (small watches, each on its nodes' own rows).
func TestRunSmallWorkload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		per    int
		tls    bool
		events int
	}{{"one stream", 0, false, 0}, {"ten per stream", 10, false, 0}, {"with TLS", 0, true, 0}, {"event subscribers", 0, false, 3}} {
		t.Run(tc.name, func(t *testing.T) { testRunSmall(t, tc.per, tc.tls, tc.events) })
	}
}

func testRunSmall(t *testing.T, nodesPerWatch int, useTLS bool, eventSubs int) {
	rep := runSmall(t, nodesPerWatch, useTLS, eventSubs)
	switch e := rep.Events; {
	case eventSubs == 0 && e != nil:
		t.Errorf("event figures without subscribers: %+v", e)
	case eventSubs > 0 && e == nil:
		t.Errorf("no event figures with %d subscribers", eventSubs)
	case eventSubs > 0:
		// every subscriber sees at least each placement's allocation
		if e.Subscribers != eventSubs || e.Dropped != 0 || e.Events < int64(eventSubs*rep.Tasks) || e.Bytes == 0 {
			t.Errorf("event figures %+v; want %d subscribers, none dropped, at least %d events", e, eventSubs, eventSubs*rep.Tasks)
		}
	}
	if rep.TLS != useTLS {
		t.Errorf("report says TLS %v, the run %v", rep.TLS, useTLS)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
	if !rep.Check.OK {
		t.Fatalf("final-state check failed: %+v", rep.Check)
	}
	if rep.Placed != int64(rep.Tasks) || rep.Tasks != 1000 || rep.Nodes != 100 {
		t.Fatalf("placed %d of %d tasks on %d nodes; want all 1000 on 100", rep.Placed, rep.Tasks, rep.Nodes)
	}
	if rep.Running != rep.Placed {
		t.Errorf("running %d, placed %d; every placed task should be reported running", rep.Running, rep.Placed)
	}
	if rep.SubmitToPlaced.N != rep.Tasks || rep.SubmitToRunning.N != rep.Tasks {
		t.Errorf("latency samples: %d placed, %d running; want %d each", rep.SubmitToPlaced.N, rep.SubmitToRunning.N, rep.Tasks)
	}
	if p := rep.SubmitToPlaced; !(p.P50 <= p.P90 && p.P90 <= p.P99 && p.P99 <= p.Max) {
		t.Errorf("percentiles out of order: %+v", p)
	}
	if rep.Scheduler.Placements < uint64(rep.Tasks) || rep.ServerCPUTotalSeconds <= 0 || rep.ServerPeakRSSMB <= 0 {
		t.Errorf("server figures missing: %+v cpu %g rss %g", rep.Scheduler, rep.ServerCPUTotalSeconds, rep.ServerPeakRSSMB)
	}
	if rep.Check.Allocs < rep.Tasks || rep.Check.Nodes != 100 {
		t.Errorf("check saw %d allocations on %d nodes", rep.Check.Allocs, rep.Check.Nodes)
	}
	if rep.SubmitErrors != 0 {
		t.Errorf("%d submit errors: %v", rep.SubmitErrors, rep.Errors)
	}
}

// BenchmarkSmallWorkload is the `go test -bench` entry for the same code as
// `gantry bench`: one run of the CI workload per iteration.
func BenchmarkSmallWorkload(b *testing.B) {
	for b.Loop() {
		rep := runSmall(b, 0, false, 0)
		if !rep.Check.OK {
			b.Fatalf("final-state check failed: %+v", rep.Check)
		}
		b.ReportMetric(rep.PlacementsPerSecond, "placements/s")
		b.ReportMetric(rep.SubmitToPlaced.P99, "placed-p99-ms")
		b.ReportMetric(rep.SubmitToRunning.P99, "running-p99-ms")
	}
}
