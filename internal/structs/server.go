package structs

import (
	"fmt"
	"net"
)

// ServerMember is one control-plane server as the cluster knows it: its
// Raft identity and the addresses other servers use to reach it. Followers
// look up the leader's HTTPAddr here to forward writes.
type ServerMember struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// RaftProtocol is the highest Raft entry format the server's build
	// applies (RaftProtocolJSON, RaftProtocolBinary). Records written by
	// builds before the field existed have 0, which means RaftProtocolJSON:
	// read it through Protocol.
	RaftProtocol int `json:"raft_protocol,omitempty"`

	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Raft entry formats (protocol versions). Each server advertises the highest
// it applies in its ServerMember record; the leader proposes an entry type
// only when every server in the Raft configuration applies it.
const (
	// RaftProtocolJSON: every entry type up to ApplyPlanBatchRequestType,
	// bodies in JSON. Every build applies it.
	RaftProtocolJSON = 1
	// RaftProtocolBinary adds ApplyPlanBatchBinaryType and
	// AllocClientUpdateBatchBinaryType (codec_plan.go, codec_report.go).
	RaftProtocolBinary = 2
	// RaftProtocolGC adds GCRequestType (garbage collection of terminal
	// allocations and dead jobs).
	RaftProtocolGC = 3
	// RaftProtocolCurrent is the highest format this build applies.
	RaftProtocolCurrent = RaftProtocolGC
)

// Protocol returns the entry format the member applies: RaftProtocol, or
// RaftProtocolJSON for a record written before the field existed.
func (m *ServerMember) Protocol() int {
	if m.RaftProtocol < RaftProtocolJSON {
		return RaftProtocolJSON
	}
	return m.RaftProtocol
}

// Validate checks the fields a member needs to be reachable.
func (m *ServerMember) Validate() error {
	if m == nil {
		return fmt.Errorf("server member: missing")
	}
	if m.ID == "" {
		return fmt.Errorf("server member: id is required")
	}
	if _, _, err := net.SplitHostPort(m.RaftAddr); err != nil {
		return fmt.Errorf("server member %s: raft_addr %q: %w", m.ID, m.RaftAddr, err)
	}
	if _, _, err := net.SplitHostPort(m.HTTPAddr); err != nil {
		return fmt.Errorf("server member %s: http_addr %q: %w", m.ID, m.HTTPAddr, err)
	}
	return nil
}

// ServerMemberUpsertRequest records (or updates) a server's addresses.
type ServerMemberUpsertRequest struct {
	Member *ServerMember `json:"member"`
}

// ServerMemberDeleteRequest forgets a removed server.
type ServerMemberDeleteRequest struct {
	ID string `json:"id"`
}
