package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// errorLog records every log record at ERROR level or above, and passes
// everything at WARN or above to the test log.
type errorLog struct {
	t      testing.TB
	mu     sync.Mutex
	errors []string // guarded by mu
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.t.Log(b.String())
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		l.errors = append(l.errors, b.String())
		l.mu.Unlock()
	}
	return nil
}

func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) recorded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// TestCleanStopLogsNoError stops a three-server cluster the way `gantry
// dev` does, with a node watch stream forwarded by a follower that its
// client abandons, and requires that nothing is logged as an error: a
// forwarded stream cut short is an abort (net/http's ErrAbortHandler), not
// a handler panic, and Raft connections closed by our own shutdown end
// their streams, they are not decode failures.
func TestCleanStopLogsNoError(t *testing.T) {
	logs := &errorLog{t: t}
	tc := newTestCluster(t, 3, func(c *Config) { c.Logger = slog.New(logs) })
	leader := tc.leader()
	follower := tc.follower(leader)
	fc := tc.client(follower)
	tc.waitMembers(fc, 3)
	if _, err := fc.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
		t.Fatal(err)
	}

	// A streaming watch through the follower, abandoned mid-stream by its
	// client (an agent shutting down).
	ctx, cancel := context.WithCancel(bg)
	req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"n1": {}}}
	w, err := fc.WatchNodeAllocations(ctx, req, true, time.Minute)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, _, err := w.Next(); err != nil {
		cancel()
		t.Fatalf("first watch frame: %v", err)
	}
	cancel()
	_ = w.Close()
	// The follower notices the abandoned stream when the leader sends its
	// next frame or ends the wait; a job registration makes a frame now.
	if _, err := tc.client(leader).RegisterJob(bg, mockJob("web", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "forwarded watch to end", func() (bool, string) {
		n := routeCount(t, tc.servers[follower], "POST /v1/nodes/allocations/watch")
		return n > 0, fmt.Sprintf("%d watch requests ended on the follower", n)
	})

	// As the dev cluster stops its servers: the leader first (while its
	// followers live, it has no peer to lose), then the followers at once
	// (before any of them times out waiting for a leader).
	tc.stop(leader)
	var wg sync.WaitGroup
	for i := range tc.servers {
		if i != leader {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tc.stop(i)
			}()
		}
	}
	wg.Wait()
	if errs := logs.recorded(); len(errs) > 0 {
		t.Fatalf("a clean stop logged %d errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// routeCount is how many requests of route s has finished (counted by the
// latency histogram, whatever their outcome).
func routeCount(t testing.TB, s *Server, route string) uint64 {
	t.Helper()
	mfs, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "gantry_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == route {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}
