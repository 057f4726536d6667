package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-project/gantry/api"
)

// TestServerMembersShowsProtocols: the members and list-peers tables show
// each server's entry format, a diverged server, and the format the
// answering server proposes in.
func TestServerMembersShowsProtocols(t *testing.T) {
	f := newFakeServer(t)
	f.serve("GET /v1/operator/raft/configuration", &api.RaftConfiguration{
		Index: 9,
		Peers: []*api.RaftPeer{
			{ID: "id-1", Name: "s1", RaftAddr: "10.0.0.1:4647", HTTPAddr: "10.0.0.1:4646", Voter: true, Leader: true, Status: "alive", RaftProtocol: 2},
			{ID: "id-2", Name: "s2", RaftAddr: "10.0.0.2:4647", HTTPAddr: "10.0.0.2:4646", Voter: true, Status: "diverged", RaftProtocol: 1},
			{ID: "id-3", RaftAddr: "10.0.0.3:4647", Voter: true},
		},
		EntryFormat: "json (protocol 1; waiting for id-3 (no record): protocol 1, s2: protocol 1)",
	})
	cases := []struct {
		name string
		run  func(e *Env) error
		want []string
	}{
		{"server members", func(e *Env) error { return e.ServerMembers(context.Background(), false) }, []string{
			"STATUS", "PROTOCOL",
			"s1", "alive", "true", "true", "2",
			"s2", "diverged", "true", "false", "1",
			"id-3", "-", "true", "false", "-",
			"Raft entry format: json (protocol 1; waiting for id-3 (no record): protocol 1, s2: protocol 1)",
		}},
		{"raft list-peers", func(e *Env) error { return e.RaftListPeers(context.Background(), false) }, []string{
			"STATE", "PROTOCOL",
			"s1", "leader", "2",
			"s2", "diverged", "1",
			"id-3", "follower", "-",
			"Raft entry format: json",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, f.srv.URL, FormatTable)
			if err := tc.run(e.Env); err != nil {
				t.Fatal(err)
			}
			containsInOrder(t, e.out.String(), tc.want...)
		})
	}
}

// TestSnapshotCutShort: `snapshot save` keeps nothing of a download that
// ends before its trailer (the server failed mid-stream), and `snapshot
// restore` of a file cut short names the problem and sends nothing.
func TestSnapshotCutShort(t *testing.T) {
	cut := `{"gantry_snapshot":2,"index":3,"time":1}` + "\n" + `{"job":{"id":"a"}}` + "\n"
	f := newFakeServer(t)
	var restores atomic.Int32
	f.mux.HandleFunc("GET /v1/operator/snapshot", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, cut)
	})
	f.mux.HandleFunc("PUT /v1/operator/snapshot", func(w http.ResponseWriter, r *http.Request) {
		restores.Add(1)
		writeJSON(w, 4, &api.SnapshotRestoreResponse{Index: 4})
	})
	e := newEnv(t, f.srv.URL, FormatTable)
	dir := t.TempDir()

	saved := filepath.Join(dir, "saved.snap")
	if err := e.SnapshotSave(context.Background(), saved); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("save of a cut stream: %v, want an error saying it is incomplete", err)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("save of a cut stream left a file: %v", err)
	}

	file := filepath.Join(dir, "cut.snap")
	if err := os.WriteFile(file, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.SnapshotRestore(context.Background(), file); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("restore of a cut file: %v, want an error saying it is incomplete", err)
	}
	if n := restores.Load(); n != 0 {
		t.Errorf("restore of a cut file sent it (%d uploads)", n)
	}
}
