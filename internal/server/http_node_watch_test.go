package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// labelledNode is a node whose label rack=<id> lets a job pin itself there.
func labelledNode(id string) *api.Node {
	n := fakeNode(id, 4000, 4096)
	n.Labels = map[string]string{"rack": id}
	return n
}

func pinnedJob(name, node string, count int) *api.Job {
	j := mockJob(name, count)
	j.Resources = api.Resources{CPU: 100, MemoryMB: 64}
	j.Constraints = []api.Constraint{{Label: "rack", Operator: "=", Value: node}}
	return j
}

type watchAnswer struct {
	index uint64
	nodes map[string]*api.NodeAllocChanges
	err   error
}

// pollWatch runs one long-poll watch in the background.
func pollWatch(ctx context.Context, c *api.Client, req *api.NodeWatchRequest, wait time.Duration) <-chan watchAnswer {
	ch := make(chan watchAnswer, 1)
	go func() {
		w, err := c.WatchNodeAllocations(ctx, req, false, wait)
		if err != nil {
			ch <- watchAnswer{err: err}
			return
		}
		defer w.Close()
		idx, nodes, err := w.Next()
		ch <- watchAnswer{idx, nodes, err}
	}()
	return ch
}

// TestNodeWatchEndpoint checks the multiplexed watch over HTTP: many
// nodes in one request (a large watch, on the change feed) get their full
// lists at once; a watch then wakes only for its own nodes' changes and
// answers just those, with jobs attached; an unknown node is reported;
// wait bounds an idle watch; a cancelled client ends it.
func TestNodeWatchEndpoint(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	const nodes = smallWatch + 8
	ids := make([]string, nodes)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%02d", i)
		if _, err := c.RegisterNode(bg, labelledNode(ids[i])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterJob(bg, pinnedJob("on-n00", "n00", 2)); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "on-n00", 2)

	// Every node at once, plus one the server does not know.
	req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"ghost": {}}}
	for _, id := range ids {
		req.Nodes[id] = api.NodeWatchState{}
	}
	ans := <-pollWatch(bg, c, req, 10*time.Second)
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if len(ans.nodes) != nodes+1 || !ans.nodes["ghost"].NotFound {
		t.Fatalf("first answer: %d nodes (ghost %+v), want %d with ghost not found", len(ans.nodes), ans.nodes["ghost"], nodes+1)
	}
	held := map[string]api.NodeWatchState{}
	for _, id := range ids {
		ch := ans.nodes[id]
		if ch == nil || !ch.Full || ch.Index == 0 {
			t.Fatalf("node %s: %+v, want a full list with an index", id, ch)
		}
		want := 0
		if id == "n00" {
			want = 2
		}
		if len(ch.Allocs) != want {
			t.Fatalf("node %s: %d allocations, want %d", id, len(ch.Allocs), want)
		}
		for _, a := range ch.Allocs {
			if a.Job == nil || a.Job.ID != "on-n00" {
				t.Fatalf("allocation %s without its job", a.ID)
			}
		}
		held[id] = api.NodeWatchState{Index: ch.Index, Known: len(ch.Allocs)}
	}

	for _, tc := range []struct {
		name    string
		watch   []string // nodes of the watch (>smallWatch: the feed)
		target  string   // where the job is pinned
		wake    bool
		allocsN int
	}{
		{"large watch, other node", ids[1:], "n00", false, 0},
		{"large watch, its node", ids[1:], "n05", true, 1},
		{"small watch, other node", []string{"n01", "n02"}, "n03", false, 0},
		{"small watch, its node", []string{"n01", "n02"}, "n02", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{}}
			for _, id := range tc.watch {
				req.Nodes[id] = held[id]
			}
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			ch := pollWatch(ctx, c, req, 20*time.Second)
			job := "job-" + strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			if _, err := c.RegisterJob(bg, pinnedJob(job, tc.target, 1)); err != nil {
				t.Fatal(err)
			}
			live := waitLive(t, c, job, 1)
			if !tc.wake {
				select {
				case ans := <-ch:
					t.Fatalf("watch answered (%d nodes, err %v) for a placement on another node", len(ans.nodes), ans.err)
				case <-time.After(300 * time.Millisecond):
				}
				cancel() // the client goes away: the request ends
				if ans := <-ch; ans.err == nil {
					t.Fatal("cancelled watch answered without error")
				}
				return
			}
			ans := <-ch
			if ans.err != nil {
				t.Fatal(ans.err)
			}
			got := ans.nodes[tc.target]
			if len(ans.nodes) != 1 || got == nil || got.Full || len(got.Allocs) != 1 || got.Allocs[0].ID != live[0].ID {
				t.Fatalf("answer %+v; want only %s with the new allocation", ans.nodes, tc.target)
			}
			if got.Allocs[0].Job == nil || got.Allocs[0].Job.ID != job {
				t.Fatal("new allocation without its job")
			}
			held[tc.target] = api.NodeWatchState{Index: got.Index, Known: held[tc.target].Known + 1}
		})
	}

	// An idle watch answers an empty frame when wait passes.
	start := time.Now()
	ans = <-pollWatch(bg, c, &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"n09": held["n09"]}}, 200*time.Millisecond)
	if ans.err != nil || len(ans.nodes) != 0 {
		t.Fatalf("idle watch: %d nodes, err %v; want an empty answer", len(ans.nodes), ans.err)
	}
	t.Logf("idle watch answered after %v (wait 200ms)", time.Since(start))
}

// TestNodeWatchStream checks ?stream=true: the first frame comes at once,
// later frames carry each change of the watched nodes as it commits, a
// job is sent once per stream, and closing the client ends it.
func TestNodeWatchStream(t *testing.T) {
	for _, jsonWire := range []bool{false, true} {
		t.Run(wireName(jsonWire), func(t *testing.T) { testNodeWatchStream(t, jsonWire) })
	}
}

func wireName(jsonWire bool) string {
	if jsonWire {
		return "json"
	}
	return "binary"
}

// jsonClient is a client of s that speaks JSON on the node endpoints, as
// clients before the binary frames did.
func jsonClient(t *testing.T, s *Server) *api.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + s.HTTPAddr(), HTTPClient: hc, NodeWireJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testNodeWatchStream(t *testing.T, jsonWire bool) {
	s, c := startServer(t, testConfig(t))
	if jsonWire {
		c = jsonClient(t, s)
	}
	for _, id := range []string{"n1", "n2"} {
		if _, err := c.RegisterNode(bg, labelledNode(id)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	w, err := c.WatchNodeAllocations(ctx, &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"n1": {}, "n2": {}}}, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Binary == jsonWire {
		t.Fatalf("answer in binary: %v, want %v", w.Binary, !jsonWire)
	}
	_, first, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || !first["n1"].Full || len(first["n1"].Allocs) != 0 {
		t.Fatalf("first frame %+v, want both nodes' (empty) full lists", first)
	}
	seen := map[string]int{}
	for round := range 3 {
		job := fmt.Sprint("s", round)
		if _, err := c.RegisterJob(bg, pinnedJob(job, "n2", 1)); err != nil {
			t.Fatal(err)
		}
		_, nodes, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		d := nodes["n2"]
		if len(nodes) != 1 || d == nil || d.Full || len(d.Allocs) != 1 || d.Allocs[0].JobID != job || d.Allocs[0].Job == nil {
			t.Fatalf("round %d: frame %+v, want n2's new allocation of %s with its job", round, nodes, job)
		}
		seen[d.Allocs[0].ID]++
	}
	// Stopping a job: a frame with the stopped allocation; its job was
	// sent before, so the allocation refers to it.
	if _, err := c.StopJob(bg, "s0", false); err != nil {
		t.Fatal(err)
	}
	_, nodes, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	if d := nodes["n2"]; d == nil || len(d.Allocs) != 1 || d.Allocs[0].DesiredStatus != api.AllocDesiredStop || d.Allocs[0].Job == nil {
		t.Fatalf("after stop: %+v, want the stopped allocation with its job", nodes)
	}
	cancel()
	// Frames already received before the cancel may still be read from
	// the buffer; after them, the stream must end.
	for range 100 {
		if _, _, err := w.Next(); err != nil {
			return
		}
	}
	t.Fatal("stream still answering after the client cancelled")
}

// TestNodesBatchEndpoints checks batched heartbeats and reports: unknown
// nodes are listed, known ones renewed or updated, a node still cannot
// report another node's allocation, and bad bodies are refused.
func TestNodesBatchEndpoints(t *testing.T) {
	for _, jsonWire := range []bool{false, true} {
		t.Run(wireName(jsonWire), func(t *testing.T) { testNodesBatchEndpoints(t, jsonWire) })
	}
}

func testNodesBatchEndpoints(t *testing.T, jsonWire bool) {
	s, c := startServer(t, testConfig(t))
	if jsonWire {
		c = jsonClient(t, s)
	}
	for _, id := range []string{"n1", "n2"} {
		if _, err := c.RegisterNode(bg, labelledNode(id)); err != nil {
			t.Fatal(err)
		}
	}
	hb, err := c.HeartbeatNodes(bg, []string{"n1", "n2", "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hb.Unknown) != 1 || hb.Unknown[0] != "ghost" || hb.HeartbeatTTL.D() <= 0 {
		t.Fatalf("heartbeat answer %+v, want ghost unknown and a TTL", hb)
	}
	if _, err := c.RegisterJob(bg, pinnedJob("a", "n1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, pinnedJob("b", "n2", 1)); err != nil {
		t.Fatal(err)
	}
	a, b := waitLive(t, c, "a", 1)[0], waitLive(t, c, "b", 1)[0]
	resp, err := c.UpdateNodesAllocations(bg, map[string][]*api.AllocClientUpdate{
		"n1":    {{ID: a.ID, ClientStatus: api.AllocClientRunning}, {ID: b.ID, ClientStatus: api.AllocClientFailed}},
		"n2":    {{ID: b.ID, ClientStatus: api.AllocClientRunning}},
		"ghost": {{ID: a.ID, ClientStatus: api.AllocClientFailed}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Unknown) != 1 || resp.Unknown[0] != "ghost" || resp.Index == 0 {
		t.Fatalf("update answer %+v, want ghost unknown and an index", resp)
	}
	for _, al := range []*api.Allocation{a, b} {
		got, _, err := c.Allocation(bg, al.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClientStatus != api.AllocClientRunning {
			t.Errorf("allocation %s on %s: client status %s, want running (and no other node's report)", al.ID, al.NodeID, got.ClientStatus)
		}
	}
	bad := string(api.EncodeNodesReports(map[string][]*api.AllocClientUpdate{"n1": {{ID: "x", ClientStatus: "dancing"}}}))
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/v1/nodes/allocations", "\x01garbage", "invalid request body: decoding report batch"},
		{"POST", "/v1/nodes/allocations", "", "request body is empty"},
		{"POST", "/v1/nodes/allocations", bad, "invalid allocation updates"},
		{"POST", "/v1/node/n1/allocations", bad, "invalid allocation updates"},
		{"POST", "/v1/node/n2/allocations", bad, `reports of node "n1" sent for node "n2"`},
	} {
		t.Run("binary "+tc.want, func(t *testing.T) {
			code, er := frameRequest(t, s, tc.method, tc.path, tc.body)
			if code != http.StatusBadRequest || !strings.Contains(er.Error, tc.want) {
				t.Fatalf("%s %s %q: %d %q, want 400 with %q", tc.method, tc.path, tc.body, code, er.Error, tc.want)
			}
		})
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"PUT", "/v1/nodes/heartbeat", `{"node_ids":[]}`, "at least one node"},
		{"PUT", "/v1/nodes/heartbeat", `{"nodes":["n1"]}`, "unknown field"},
		{"POST", "/v1/nodes/allocations", `{"nodes":{}}`, "at least one node"},
		{"POST", "/v1/nodes/allocations", `{"nodes":{"n1":[{"id":"x","client_status":"dancing"}]}}`, "invalid allocation updates"},
		{"POST", "/v1/nodes/allocations", `{"nodes":{"n1":[null]}}`, "invalid allocation updates"},
		{"POST", "/v1/nodes/allocations/watch", `{"nodes":{}}`, "at least one node"},
		{"POST", "/v1/nodes/allocations/watch", `{"nodes":{"n1":{"known":-2}}}`, "invalid node watch"},
		{"POST", "/v1/nodes/allocations/watch?stream=maybe", `{"nodes":{"n1":{}}}`, "stream: must be"},
		{"POST", "/v1/nodes/allocations/watch?wait=forever", `{"nodes":{"n1":{}}}`, "wait: must be"},
		{"POST", "/v1/nodes/allocations/watch", `{"nodes":{"n1":{"index":-1}}}`, "invalid request body"},
	} {
		t.Run(tc.method+" "+tc.body, func(t *testing.T) {
			code, er := rawRequest(t, s, tc.method, tc.path, tc.body)
			if code != http.StatusBadRequest || !strings.Contains(er.Error, tc.want) {
				t.Fatalf("%s %s %s: %d %q, want 400 with %q", tc.method, tc.path, tc.body, code, er.Error, tc.want)
			}
		})
	}
}

// TestNodeWatchAcrossRestore checks that a stream ends when a snapshot
// restore replaces the state, and that a caller reconnecting with its
// index from the old history gets the restored full list.
func TestNodeWatchAcrossRestore(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, labelledNode("n1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, pinnedJob("kept", "n1", 1)); err != nil {
		t.Fatal(err)
	}
	kept := waitLive(t, c, "kept", 1)[0]
	var snap strings.Builder
	if _, err := c.SnapshotSave(bg, &snap); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, pinnedJob("lost", "n1", 1)); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "lost", 1)

	open := func(st api.NodeWatchState) *api.NodeWatch {
		w, err := c.WatchNodeAllocations(bg, &api.NodeWatchRequest{Nodes: map[string]api.NodeWatchState{"n1": st}}, true, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		return w
	}
	w := open(api.NodeWatchState{})
	_, first, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	held := api.NodeWatchState{Index: first["n1"].Index, Known: len(first["n1"].Allocs)}
	if held.Known != 2 {
		t.Fatalf("first frame: %d allocations, want 2", held.Known)
	}
	if _, err := c.SnapshotRestore(bg, strings.NewReader(snap.String())); err != nil {
		t.Fatal(err)
	}
	for {
		_, nodes, err := w.Next()
		if err != nil {
			break // the stream ended
		}
		if len(nodes) > 0 {
			t.Logf("frame before the stream ended: %+v", nodes)
		}
	}
	w = open(held)
	_, nodes, err := w.Next()
	if err != nil {
		t.Fatal(err)
	}
	d := nodes["n1"]
	if d == nil || !d.Full || len(d.Allocs) != 1 || d.Allocs[0].ID != kept.ID {
		t.Fatalf("after restore: %+v, want the full list with only %s", d, kept.ID)
	}
}

// frameRequest sends a body of Content-Type api.FrameContentType.
func frameRequest(t *testing.T, s *Server, method, path, body string) (int, api.ErrorResponse) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", api.FrameContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er api.ErrorResponse
	_ = json.NewDecoder(resp.Body).Decode(&er)
	return resp.StatusCode, er
}
