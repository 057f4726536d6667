package server

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// BenchmarkEvaluatePlan measures the applier's check of a plan of 10
// placements against a 1,000-node state (no Raft).
func BenchmarkEvaluatePlan(b *testing.B) {
	st, _ := state.New()
	for i := range 1000 {
		id := fmt.Sprintf("n%04d", i)
		_ = st.UpsertNode(1, &structs.Node{ID: id, Name: id, Status: structs.NodeStatusReady,
			Capacity: structs.Resources{CPU: 16000, MemoryMB: 65536}})
	}
	_ = st.UpsertJob(2, &structs.Job{ID: "j", Name: "j"})
	plan := &structs.Plan{JobID: "j"}
	for i := range 10 {
		plan.Placements = append(plan.Placements, &structs.Allocation{ID: fmt.Sprint("p", i), JobID: "j",
			NodeID: fmt.Sprintf("n%04d", i*97), Resources: structs.Resources{CPU: 100, MemoryMB: 100}})
	}
	snap := st.Snapshot()
	b.ResetTimer()
	for b.Loop() {
		evaluatePlan(snap, plan, 1)
	}
}

// BenchmarkSubmitPlan measures committing one-placement plans through the
// real applier and Raft log (bbolt on disk) of a single server; the
// reported placements/s is the serial commit rate.
func BenchmarkSubmitPlan(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RaftTimeout = 100e6
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	for !s.Leader() {
		time.Sleep(10 * time.Millisecond) // LeaderCh belongs to the server
	}
	for _, e := range []struct {
		t   structs.MessageType
		req any
	}{
		{structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: &structs.Node{ID: "n1", Name: "n1",
			Capacity: structs.Resources{CPU: 1 << 40, MemoryMB: 1 << 40}}}},
		{structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: &structs.Job{ID: "j", Name: "j", Stop: false}}},
	} {
		if _, _, err := s.raftApply(e.t, e.req); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		a := &structs.Allocation{ID: fmt.Sprint("a", i), JobID: "j", NodeID: "n1", Index: i,
			Resources: structs.Resources{CPU: 1, MemoryMB: 1}}
		if _, err := s.SubmitPlan(bg, &structs.Plan{JobID: "j", Placements: []*structs.Allocation{a}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkSubmitToPlaced registers one-copy jobs through the HTTP API on a
// 100-node cluster and waits (blocking query) until each is placed; it
// reports the latency percentiles of submit-to-placed.
func BenchmarkSubmitToPlaced(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RaftTimeout = 100e6
	cfg.HeartbeatTTL = time.Hour
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	for !s.Leader() {
		time.Sleep(10 * time.Millisecond) // LeaderCh belongs to the server
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	c, _ := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: hc})
	for i := range 100 {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprint("n", i), 1<<30, 1<<30)); err != nil {
			b.Fatal(err)
		}
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		reg, err := c.RegisterJob(bg, mockJob(fmt.Sprint("j", i), 1))
		if err != nil {
			b.Fatal(err)
		}
		index := reg.Index
		for {
			allocs, meta, err := c.JobAllocations(bg, reg.JobID, &api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			if len(allocs) > 0 {
				break
			}
			if meta.LastIndex <= index {
				b.Fatalf("job %s not placed within the wait", reg.JobID)
			}
			index = meta.LastIndex
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkJobRegisterServers measures acknowledged job registrations per
// second through the HTTP API with 1 and with 3 servers (writes sent to the
// leader, and sent to a follower that forwards them), 16 clients in
// parallel. Each acknowledged write is committed by a majority: with three
// servers that is one more network round and fsync per entry.
func BenchmarkJobRegisterServers(b *testing.B) {
	for _, tc := range []struct {
		name     string
		servers  int
		follower bool
	}{
		{"servers=1", 1, false},
		{"servers=3/leader", 3, false},
		{"servers=3/via-follower", 3, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var c *api.Client
			if tc.servers == 1 {
				cfg := testConfig(b)
				cfg.RaftTimeout = time.Second
				_, c = startServer(b, cfg)
			} else {
				// The production timeout: a loaded machine must not
				// trigger elections mid-measurement.
				cl := newTestCluster(b, tc.servers, func(c *Config) { c.RaftTimeout = time.Second })
				l := cl.leader()
				target := l
				if tc.follower {
					target = cl.follower(l)
				}
				c = cl.client(target)
				cl.waitMembers(c, tc.servers)
			}
			var n atomic.Int64
			b.SetParallelism(8) // 16 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := c.RegisterJob(bg, mockJob(fmt.Sprintf("bench-%d", i), 0)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
