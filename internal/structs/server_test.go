package structs

import (
	"encoding/json"
	"testing"
)

func TestServerMemberProtocol(t *testing.T) {
	cases := []struct {
		name string
		json string
		want int
	}{
		{"record from a build before the field", `{"id":"s1","raft_addr":"a:1","http_addr":"a:2"}`, RaftProtocolJSON},
		{"json only", `{"id":"s1","raft_protocol":1}`, RaftProtocolJSON},
		{"binary", `{"id":"s1","raft_protocol":2}`, RaftProtocolBinary},
		{"newer than this build", `{"id":"s1","raft_protocol":3}`, 3},
		{"nonsense", `{"id":"s1","raft_protocol":-4}`, RaftProtocolJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m ServerMember
			if err := json.Unmarshal([]byte(tc.json), &m); err != nil {
				t.Fatal(err)
			}
			if got := m.Protocol(); got != tc.want {
				t.Fatalf("Protocol() = %d; want %d", got, tc.want)
			}
		})
	}
	// An older build decodes a current record and ignores the field; the
	// current build writes it.
	b, err := json.Marshal(&ServerMember{ID: "s1", RaftProtocol: RaftProtocolCurrent})
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &old); err != nil || old.ID != "s1" {
		t.Fatalf("decoding %s as an older record: %v %+v", b, err, old)
	}
	if RaftProtocolCurrent < RaftProtocolBinary {
		t.Fatalf("RaftProtocolCurrent = %d; this build applies binary entries", RaftProtocolCurrent)
	}
}
