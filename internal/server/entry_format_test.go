package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

func TestClusterProtocol(t *testing.T) {
	voters := func(ids ...string) []raft.Server {
		var out []raft.Server
		for _, id := range ids {
			out = append(out, raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter})
		}
		return out
	}
	rec := func(id string, proto int) *structs.ServerMember {
		return &structs.ServerMember{ID: id, Name: "n-" + id, RaftProtocol: proto}
	}
	// Records at this build's protocol are up to date; older ones are
	// behind.
	cur := structs.RaftProtocolCurrent
	cases := []struct {
		name     string
		servers  []raft.Server
		selfProt int
		records  []*structs.ServerMember
		want     int
		behind   []string
	}{
		{name: "all new", servers: voters("a", "b", "c"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", cur), rec("c", cur)}, want: cur},
		{name: "one old member", servers: voters("a", "b", "c"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", 1), rec("c", cur)}, want: 1,
			behind: []string{"n-b: protocol 1"}},
		{name: "record from a build before the field", servers: voters("a", "b", "c"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", 0), rec("c", cur)}, want: 1,
			behind: []string{"n-b: protocol 1"}},
		{name: "member without record", servers: voters("a", "b", "c"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", cur)}, want: 1,
			behind: []string{"c (no record): protocol 1"}},
		{name: "nonvoter counts", servers: append(voters("a", "b"), raft.Server{ID: "c", Suffrage: raft.Nonvoter}), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", cur), rec("c", 1)}, want: 1,
			behind: []string{"n-c: protocol 1"}},
		{name: "removed server's record ignored", servers: voters("a", "b"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", cur), rec("b", cur), rec("gone", 1)}, want: cur},
		{name: "single server without record", servers: voters("a"), selfProt: cur, want: cur},
		{name: "self's stale record ignored", servers: voters("a", "b"), selfProt: cur,
			records: []*structs.ServerMember{rec("a", 1), rec("b", cur)}, want: cur},
		{name: "self on an older build", servers: voters("a", "b"), selfProt: 1,
			records: []*structs.ServerMember{rec("b", cur)}, want: 1, behind: []string{"a (no record): protocol 1"}},
		{name: "newer member than this build", servers: voters("a", "b"), selfProt: cur,
			records: []*structs.ServerMember{rec("b", cur+1)}, want: cur},
		{name: "member on a build before garbage collection", servers: voters("a", "b"), selfProt: cur,
			records: []*structs.ServerMember{rec("b", structs.RaftProtocolBinary)}, want: structs.RaftProtocolBinary,
			behind: []string{"n-b: protocol 2"}},
		{name: "no configuration", want: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			member := func(id string) *structs.ServerMember {
				for _, m := range tc.records {
					if m.ID == id {
						return m
					}
				}
				return nil
			}
			got, behind := clusterProtocol(tc.servers, "a", tc.selfProt, member)
			if got != tc.want || !slices.Equal(behind, tc.behind) {
				t.Fatalf("clusterProtocol = %d %q; want %d %q", got, behind, tc.want, tc.behind)
			}
		})
	}
}

func TestFSMUnknownEntry(t *testing.T) {
	f := newTestFSM(t)
	var got []uint64
	members := 0
	f.onUnknown = func(index uint64, mt structs.MessageType) { got = append(got, index, uint64(mt)) }
	f.onMembers = func() { members++ }
	resp := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte{200, '{', '}'}})
	var unknown *unknownEntryError
	if err, ok := resp.(error); !ok || !errors.As(err, &unknown) {
		t.Fatalf("Apply(type 200) = %v; want an unknownEntryError", resp)
	}
	if !slices.Equal(got, []uint64{7, 200}) || members != 0 {
		t.Fatalf("onUnknown calls %v, onMembers %d; want [7 200], 0", got, members)
	}
	// A server record calls onMembers; a decoding error is not "unknown".
	f.Apply(entry(t, 8, structs.ServerMemberUpsertRequestType, &structs.ServerMemberUpsertRequest{
		Member: &structs.ServerMember{ID: "s1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}}))
	f.Apply(&raft.Log{Index: 9, Type: raft.LogCommand, Data: []byte{byte(structs.ApplyPlanBatchBinaryType), 0xff}})
	if len(got) != 2 || members != 1 {
		t.Fatalf("onUnknown calls %v, onMembers %d; want 1 unknown, 1 members", got, members)
	}
}

// TestUnknownEntryStopsRaft: a server that commits an entry type its build
// does not know says so (metric, status, server members) and stops its
// Raft rather than run on with state behind the cluster's.
func TestUnknownEntryStopsRaft(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	_, _, err := s.raftApply(structs.MessageType(200), map[string]string{"from": "a newer build"})
	var unknown *unknownEntryError
	if !errors.As(err, &unknown) {
		t.Fatalf("proposing type 200: %v; want an unknownEntryError", err)
	}
	waitFor(t, 10*time.Second, "raft to stop", func() (bool, string) {
		return s.raft.State() == raft.Shutdown, s.raft.State().String()
	})
	if v := counterValue(t, s, "gantry_raft_unknown_entries_total"); v != 1 {
		t.Errorf("gantry_raft_unknown_entries_total = %v; want 1", v)
	}
	self, err := c.ServerSelf(bg)
	if err != nil || self.DivergedAt == 0 {
		t.Fatalf("status/self: %v %+v; want diverged_at set", err, self)
	}
	conf, err := c.RaftConfiguration(bg, &api.QueryOptions{Stale: true})
	if err != nil || len(conf.Peers) != 1 || conf.Peers[0].Status != "diverged" {
		t.Fatalf("raft configuration: %v %+v; want the server diverged", err, conf)
	}
	if s.format.binary.Load() {
		t.Errorf("a stopped server still proposes binary entries")
	}
}

// entryTypes counts the command entries in s's Raft log after index from,
// by type.
func entryTypes(t *testing.T, s *Server, from uint64) map[structs.MessageType]int {
	t.Helper()
	first, err := s.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	out := map[structs.MessageType]int{}
	for i := max(first, from+1); i <= last && i > 0; i++ {
		var l raft.Log
		if err := s.logStore.GetLog(i, &l); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		if l.Type == raft.LogCommand && len(l.Data) > 0 {
			out[structs.MessageType(l.Data[0])]++
		}
	}
	return out
}

// TestEntryFormatRollingUpgrade: while one server advertises the JSON-only
// format (an older build), the leader proposes plans as JSON entries; once
// that server restarts advertising the current format, plans are binary.
func TestEntryFormatRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := newTestCluster(t, 3, func(c *Config) {
		if c.NodeName == "s3" {
			c.raftProtocol = structs.RaftProtocolJSON
		}
	})
	l := tc.leader()
	c := tc.client(l)
	tc.waitMembers(c, 3)
	waitFor(t, 30*time.Second, "the leader to see s3 behind", func() (bool, string) {
		conf, err := c.RaftConfiguration(bg, nil)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(conf.EntryFormat, "json") && strings.Contains(conf.EntryFormat, "s3: protocol 1"), conf.EntryFormat
	})

	retryUnavailable(t, "register node", func() error {
		_, err := c.RegisterNode(bg, fakeNode("n1", 8000, 8192))
		return err
	})
	retryUnavailable(t, "register job", func() error {
		_, err := c.RegisterJob(bg, mockJob("web", 2))
		return err
	})
	waitLive(t, c, "web", 2)
	l = tc.leader()
	types := entryTypes(t, tc.servers[l], 0)
	t.Logf("entry types with s3 on protocol 1: %v", types)
	if types[structs.ApplyPlanBatchRequestType]+types[structs.ApplyPlanRequestType] == 0 ||
		types[structs.ApplyPlanBatchBinaryType] != 0 || types[structs.AllocClientUpdateBatchBinaryType] != 0 {
		t.Fatalf("entry types with an old server: %v; want JSON plans only", types)
	}

	// s3 is upgraded: it restarts with its data, advertising the current
	// format, and registers again.
	tc.stop(2)
	tc.cfgs[2].raftProtocol = 0
	tc.start(2)
	waitFor(t, 30*time.Second, "the leader to propose binary entries", func() (bool, string) {
		i := tc.leader()
		return tc.servers[i].format.binary.Load(), tc.servers[i].entryFormatName()
	})
	l = tc.leader()
	c = tc.client(l)
	mark := tc.servers[l].raft.LastIndex()
	retryUnavailable(t, "register job after the upgrade", func() error {
		_, err := c.RegisterJob(bg, mockJob("api", 2))
		return err
	})
	waitLive(t, c, "api", 2)
	l = tc.leader()
	types = entryTypes(t, tc.servers[l], mark)
	t.Logf("entry types after s3's upgrade: %v", types)
	if types[structs.ApplyPlanBatchBinaryType] == 0 ||
		types[structs.ApplyPlanBatchRequestType]+types[structs.ApplyPlanRequestType] != 0 {
		t.Fatalf("entry types after the upgrade: %v; want binary plans only", types)
	}
	// Every server applied both formats.
	for i, s := range tc.servers {
		waitFor(t, 30*time.Second, fmt.Sprintf("s%d to apply the plans", i+1), func() (bool, string) {
			n := 0
			for _, a := range s.State().Snapshot().Allocs() {
				if !a.Terminal() {
					n++
				}
			}
			return n == 4, fmt.Sprintf("%d live", n)
		})
		if s.diverged.Load() != 0 {
			t.Errorf("s%d diverged", i+1)
		}
	}
}

// TestJoinThroughOlderLeader: a leader on a build from before raft_protocol
// refuses the field (its join handler disallows unknown fields); the
// joining server asks again without it.
func TestJoinThroughOlderLeader(t *testing.T) {
	var got []string
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			RaftAddr string `json:"raft_addr"`
			HTTPAddr string `json:"http_addr"`
			Create   uint64 `json:"create_index"`
			Modify   uint64 `json:"modify_index"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			got = append(got, "refused")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid request body: " + err.Error()})
			return
		}
		got = append(got, "joined "+m.ID)
		_ = json.NewEncoder(w).Encode(map[string]string{"joined": m.ID})
	}))
	defer old.Close()
	s := &Server{peerHTTP: newPeerHTTP(nil)}
	defer s.peerHTTP.CloseIdleConnections()
	m := &structs.ServerMember{ID: "s2", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", RaftProtocol: structs.RaftProtocolCurrent}
	if err := s.joinThrough(bg, old.URL, m); err != nil {
		t.Fatalf("joining through an older leader: %v", err)
	}
	if !slices.Equal(got, []string{"refused", "joined s2"}) || m.RaftProtocol != structs.RaftProtocolCurrent {
		t.Fatalf("older leader saw %q (member %+v); want refused, then joined without the field", got, m)
	}
}
