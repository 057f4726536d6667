package peer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHTTPSide: a cluster peer's status names it, its slots and the
// commands it served; the UI's files and the redirect are served.
func TestHTTPSide(t *testing.T) {
	tp := startTestPeer(t, 0, t.TempDir())
	defer tp.stop()
	rc := tp.client()
	defer rc.Close()
	ctx := context.Background()
	if err := rc.Do(ctx, "cluster", "addslotsrange", 0, 99).Err(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(tp.p.HTTPHandler())
	defer hs.Close()
	status := func() HTTPStatus {
		t.Helper()
		resp, err := http.Get(hs.URL + "/v1/peer/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st HTTPStatus
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
			t.Fatalf("status: %d", resp.StatusCode)
		}
		return st
	}
	before := status()
	for range 5 {
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	st := status()
	if !st.Cluster || st.ID != string(tp.id) || st.SlotsAssigned != 100 || len(st.Peers) != 1 {
		t.Fatalf("status %+v", st)
	}
	p := st.Peers[0]
	if !p.Self || p.Role != "primary" || p.Link != "connected" || len(p.Slots) != 1 || p.Slots[0] != [2]uint16{0, 99} {
		t.Fatalf("peer %+v", p)
	}
	if st.Commands-before.Commands < 5 {
		t.Fatalf("commands %d then %d, want 5 more", before.Commands, st.Commands)
	}

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, code := range map[string]int{"/ui/": 200, "/ui/js/pages/peers.js": 200, "/": http.StatusFound, "/v1/jobs": 404} {
		resp, err := hc.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

// TestHTTPSideCountsFailovers: a peer seen as a replica and then as a
// primary is one failover; a peer gone is forgotten.
func TestHTTPSideCountsFailovers(t *testing.T) {
	peer := func(id NodeID, r Role) PeerStatus { return PeerStatus{PeerInfo: PeerInfo{ID: id, Role: r}} }
	hs := &httpSide{roles: map[NodeID]Role{}}
	steps := []struct {
		peers []PeerStatus
		want  int
	}{
		{[]PeerStatus{peer("a", RolePrimary), peer("b", RoleReplica), peer("c", RoleReplica)}, 0},
		{[]PeerStatus{peer("a", RolePrimary), peer("b", RolePrimary), peer("c", RoleReplica)}, 1},
		{[]PeerStatus{peer("b", RolePrimary), peer("c", RoleReplica)}, 1},
		{[]PeerStatus{peer("b", RoleReplica), peer("c", RolePrimary), peer("a", RolePrimary)}, 2},
	}
	for i, s := range steps {
		if got := hs.observe(s.peers); got != s.want {
			t.Fatalf("step %d: %d failovers, want %d", i, got, s.want)
		}
	}
	if len(hs.roles) != 3 {
		t.Fatalf("roles %v", hs.roles)
	}
}
