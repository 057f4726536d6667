package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/testutil"
)

// freeAddrs reserves n loopback ports. Servers must know each other's API
// addresses before they start (--join), so ports cannot be 0 here.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = testutil.FreeAddr(t)
	}
	return out
}

// testCluster is n in-process servers bootstrapped with BootstrapExpect n.
type testCluster struct {
	t       testing.TB
	cfgs    []Config
	servers []*Server
}

func newTestCluster(t testing.TB, n int, mods ...func(*Config)) *testCluster {
	t.Helper()
	httpAddrs, raftAddrs := freeAddrs(t, n), freeAddrs(t, n)
	tc := &testCluster{t: t, servers: make([]*Server, n)}
	for i := range n {
		cfg := testConfig(t)
		cfg.NodeName = fmt.Sprintf("s%d", i+1)
		cfg.HTTPAddr, cfg.RaftAddr = httpAddrs[i], raftAddrs[i]
		cfg.BootstrapExpect = n
		for j, a := range httpAddrs {
			if j != i {
				cfg.Join = append(cfg.Join, a)
			}
		}
		// Allocation IDs come from the scheduler's seeded generator:
		// servers sharing a seed would reuse each other's IDs.
		cfg.Scheduler.Seed = int64(i + 1)
		// Elections on a shared machine: not too eager.
		cfg.RaftTimeout = 300 * time.Millisecond
		for _, m := range mods {
			m(&cfg)
		}
		tc.cfgs = append(tc.cfgs, cfg)
	}
	for i := range n {
		tc.start(i)
	}
	t.Cleanup(tc.stopAll)
	return tc
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	s, err := New(tc.cfgs[i])
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tc.t.Fatal(err)
	}
	tc.servers[i] = s
}

func (tc *testCluster) stop(i int) {
	if s := tc.servers[i]; s != nil {
		_ = s.Shutdown()
		tc.servers[i] = nil
	}
}

func (tc *testCluster) stopAll() {
	for i := range tc.servers {
		tc.stop(i)
	}
}

// leader waits for exactly one ready leader among the running servers and
// returns its position.
func (tc *testCluster) leader() int {
	tc.t.Helper()
	idx := -1
	waitFor(tc.t, 30*time.Second, "one ready leader", func() (bool, string) {
		idx = -1
		n := 0
		for i, s := range tc.servers {
			if s != nil && s.Leader() && s.leaderReady.Load() {
				idx, n = i, n+1
			}
		}
		return n == 1, fmt.Sprintf("%d leaders", n)
	})
	return idx
}

func (tc *testCluster) client(i int) *api.Client {
	tc.t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	tc.t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: tc.cfgs[i].HTTPAddr, HTTPClient: hc})
	if err != nil {
		tc.t.Fatal(err)
	}
	return c
}

func (tc *testCluster) follower(leader int) int {
	for i, s := range tc.servers {
		if i != leader && s != nil {
			return i
		}
	}
	tc.t.Fatal("no follower running")
	return -1
}

// waitMembers waits until every running server's addresses are recorded.
func (tc *testCluster) waitMembers(c *api.Client, n int) {
	tc.t.Helper()
	waitFor(tc.t, 30*time.Second, fmt.Sprintf("%d alive raft peers with addresses", n), func() (bool, string) {
		conf, err := c.RaftConfiguration(bg, nil)
		if err != nil {
			return false, err.Error()
		}
		alive := 0
		for _, p := range conf.Peers {
			if p.HTTPAddr != "" && p.Status == "alive" && p.Voter {
				alive++
			}
		}
		return alive == n && len(conf.Peers) == n, fmt.Sprintf("%d peers, %d alive", len(conf.Peers), alive)
	})
}

// retryUnavailable retries fn while it answers 503: on a loaded machine an
// election may happen at any time, and the tests check outcomes, not that
// no election happened.
func retryUnavailable(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = fn()
		if !isStatus(err, http.StatusServiceUnavailable) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestClusterBootstrapForwardFailover: three servers find each other and
// bootstrap one cluster; a follower forwards writes and consistent reads;
// stale reads are local; after the leader stops, the others elect a new one
// and keep every acknowledged write; the old leader restarts with its data
// and catches up.
func TestClusterBootstrapForwardFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := newTestCluster(t, 3)
	l := tc.leader()
	f := tc.follower(l)
	fc := tc.client(f)
	tc.waitMembers(fc, 3)

	// Writes through a follower reach the leader.
	retryUnavailable(t, "register node through follower", func() error {
		_, err := fc.RegisterNode(bg, fakeNode("n1", 4000, 4096))
		return err
	})
	retryUnavailable(t, "register job through follower", func() error {
		_, err := fc.RegisterJob(bg, mockJob("web", 2))
		return err
	})
	// A consistent read through the follower sees the write at once (a
	// loaded machine may cost the leader its lease meanwhile: the read then
	// answers 503 until a leader is elected, and the client retries).
	var j *structs.Job
	retryUnavailable(t, "consistent read through follower", func() (err error) {
		j, _, err = fc.Job(bg, "web", nil)
		return err
	})
	if j.Count != 2 {
		t.Fatalf("consistent read through follower: count %d, want 2", j.Count)
	}
	waitLive(t, fc, "web", 2)
	// Stale reads are answered locally and catch up.
	waitFor(t, 10*time.Second, "stale read on follower", func() (bool, string) {
		_, _, err := fc.Job(bg, "web", &api.QueryOptions{Stale: true})
		return err == nil, fmt.Sprint(err)
	})
	if fwd := counterValue(t, tc.servers[f], "gantry_http_forwarded_total"); fwd == 0 {
		t.Errorf("follower forwarded nothing")
	}

	// The leader goes away; another is elected and has every write.
	tc.stop(l)
	nl := tc.leader()
	if nl == l {
		t.Fatalf("stopped server still leads")
	}
	nc := tc.client(nl)
	retryUnavailable(t, "heartbeat to the new leader", func() error {
		_, err := nc.Heartbeat(bg, "n1")
		return err
	})
	retryUnavailable(t, "register after failover", func() error {
		_, err := nc.RegisterJob(bg, mockJob("api", 1))
		return err
	})
	waitLive(t, nc, "api", 1)
	if n, _, err := nc.Node(bg, "n1", nil); err != nil || n.Status != "ready" {
		t.Fatalf("node after failover: %v %+v", err, n)
	}

	// The old leader restarts with its data directory and catches up.
	tc.start(l)
	rc := tc.client(l)
	waitFor(t, 30*time.Second, "restarted server to catch up", func() (bool, string) {
		_, _, err := rc.Job(bg, "api", &api.QueryOptions{Stale: true})
		return err == nil, fmt.Sprint(err)
	})
	tc.waitMembers(rc, 3)
}

// TestRemovePeer removes a stopped server; the two left still form a
// cluster that accepts writes.
func TestRemovePeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := newTestCluster(t, 3)
	l := tc.leader()
	c := tc.client(l)
	tc.waitMembers(c, 3)
	f := tc.follower(l)
	fid := tc.servers[f].id
	tc.stop(f)
	if err := c.RemoveRaftPeer(bg, "", ""); !isStatus(err, 400) {
		t.Fatalf("remove without id: %v", err)
	}
	if err := c.RemoveRaftPeer(bg, "no-such-id", ""); !api.IsNotFound(err) {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := c.RemoveRaftPeer(bg, fid, ""); err != nil {
		t.Fatalf("remove %s: %v", fid, err)
	}
	conf, err := c.RaftConfiguration(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range conf.Peers {
		if p.ID == fid {
			t.Fatalf("removed peer still listed: %+v", conf.Peers)
		}
	}
	if len(conf.Peers) != 2 {
		t.Fatalf("peers %d, want 2", len(conf.Peers))
	}
	// The two left keep a quorum (an election may happen on a loaded
	// machine: retry until one leads).
	waitFor(t, 30*time.Second, "a write with two servers", func() (bool, string) {
		_, err := tc.client(tc.leader()).RegisterJob(bg, mockJob("after", 1))
		return err == nil, fmt.Sprint(err)
	})
}

// TestSnapshotSaveRestore backs up the state, changes it, and restores it.
func TestSnapshotSaveRestore(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterJob(bg, mockJob("keep", 1)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.SnapshotSave(bg, &buf); err != nil {
		t.Fatalf("save: %v", err)
	}
	if _, err := c.RegisterJob(bg, mockJob("later", 1)); err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, body string }{
		{"empty", ""},
		{"not a snapshot", "hello\n"},
		{"bad records", `{"gantry_snapshot":1,"index":3}` + "\n{nope\n"},
	}
	for _, b := range bad {
		_, err := c.SnapshotRestore(bg, strings.NewReader(b.body))
		if !isStatus(err, 400) {
			t.Errorf("%s: %v, want 400", b.name, err)
		}
	}
	if _, _, err := c.Job(bg, "later", nil); err != nil {
		t.Fatalf("bad restores changed state: %v", err)
	}
	if _, err := c.SnapshotRestore(bg, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if _, _, err := c.Job(bg, "keep", nil); err != nil {
		t.Fatalf("job from the backup: %v", err)
	}
	if _, _, err := c.Job(bg, "later", nil); !api.IsNotFound(err) {
		t.Fatalf("job made after the backup: %v, want not found", err)
	}
	// The cluster keeps working after a restore.
	if _, err := c.RegisterJob(bg, mockJob("after", 1)); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
	_ = s
}

// TestForwardHopLimit: a request that has made too many hops is refused
// by a server that would forward it again.
func TestForwardHopLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.RaftTimeout = 10 * time.Second // stays leaderless for the test
	cfg.BootstrapExpect = 2
	cfg.Join = []string{"127.0.0.1:1"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/jobs", nil)
	req.Header.Set(api.ForwardHopsHeader, "2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if s.bootstrapped() {
		t.Fatalf("bootstrapped with 1 of 2 expected servers")
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrNoLeader), ErrNoLeader) {
		t.Fatal("unreachable")
	}
}

// TestSnapshotRestoreKeepsServers restores a backup made by another
// cluster: the state is replaced, but the servers table still describes
// this cluster (followers need it to find the leader).
func TestSnapshotRestoreKeepsServers(t *testing.T) {
	other, oc := startServer(t, testConfig(t))
	if _, err := oc.RegisterJob(bg, mockJob("from-other", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "other server to record itself", func() (bool, string) {
		return other.state.Snapshot().ServerMember(other.id) != nil, "not recorded"
	})
	var buf bytes.Buffer
	if _, err := oc.SnapshotSave(bg, &buf); err != nil {
		t.Fatal(err)
	}
	s, c := startServer(t, testConfig(t))
	waitFor(t, 10*time.Second, "server to record itself", func() (bool, string) {
		return s.state.Snapshot().ServerMember(s.id) != nil, "not recorded"
	})
	if _, err := c.SnapshotRestore(bg, &buf); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Job(bg, "from-other", nil); err != nil {
		t.Fatalf("restored job: %v", err)
	}
	snap := s.state.Snapshot()
	if snap.ServerMember(s.id) == nil || snap.ServerMember(other.id) != nil {
		t.Fatalf("servers after restore: %+v", snap.ServerMembers())
	}
}
