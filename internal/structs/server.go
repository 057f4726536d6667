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

	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
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
