package state

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestServerMembers(t *testing.T) {
	st, err := New()
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		m    *structs.ServerMember
		want string
	}{
		{"nil", nil, "missing"},
		{"no id", &structs.ServerMember{RaftAddr: "a:1", HTTPAddr: "a:2"}, "id is required"},
		{"bad raft addr", &structs.ServerMember{ID: "s1", RaftAddr: "nope", HTTPAddr: "a:2"}, "raft_addr"},
		{"bad http addr", &structs.ServerMember{ID: "s1", RaftAddr: "a:1", HTTPAddr: ""}, "http_addr"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.UpsertServerMember(1, tc.m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	s1 := &structs.ServerMember{ID: "s1", Name: "one", RaftAddr: "10.0.0.1:4647", HTTPAddr: "10.0.0.1:4646"}
	s2 := &structs.ServerMember{ID: "s2", Name: "two", RaftAddr: "10.0.0.2:4647", HTTPAddr: "10.0.0.2:4646"}
	for i, m := range []*structs.ServerMember{s1, s2} {
		if err := st.UpsertServerMember(uint64(10+i), m); err != nil {
			t.Fatal(err)
		}
	}
	moved := *s1
	moved.HTTPAddr = "10.0.0.9:4646"
	if err := st.UpsertServerMember(20, &moved); err != nil {
		t.Fatal(err)
	}
	got := st.Snapshot().ServerMember("s1")
	if got.HTTPAddr != "10.0.0.9:4646" || got.CreateIndex != 10 || got.ModifyIndex != 20 {
		t.Fatalf("updated member %+v", got)
	}

	// The table survives persist and restore.
	var buf bytes.Buffer
	if err := st.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	st2, _ := New()
	if err := st2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if ms := st2.Snapshot().ServerMembers(); len(ms) != 2 || ms[0].ID != "s1" || ms[1].ID != "s2" {
		t.Fatalf("restored members %+v", ms)
	}

	// Delete is idempotent (entries may be replayed).
	for range 2 {
		if err := st.DeleteServerMember(30, "s2"); err != nil {
			t.Fatal(err)
		}
	}
	if st.Snapshot().ServerMember("s2") != nil || len(st.Snapshot().ServerMembers()) != 1 {
		t.Fatalf("after delete: %+v", st.Snapshot().ServerMembers())
	}
}
