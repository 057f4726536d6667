package cli

import (
	"context"
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
