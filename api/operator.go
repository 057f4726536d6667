package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gantry-project/gantry/internal/backup"
	"github.com/gantry-project/gantry/internal/structs"
)

// ServerMember is a control-plane server and its addresses.
type ServerMember = structs.ServerMember

// ForwardHopsHeader counts how many servers forwarded a request towards the
// leader; a server refuses to forward past the limit (a loop while the
// cluster's view of its leader converges).
const ForwardHopsHeader = "X-Gantry-Forward-Hops"

// ForwardedRoleHeader carries, on a request a server forwards to the
// leader with TLS on, the certificate role of the caller it came from
// (client, agent or server), so the leader checks the caller rather than
// the forwarding server. Servers accept it, and ForwardHopsHeader, only
// over a connection that presented a server certificate.
const ForwardedRoleHeader = "X-Gantry-Forwarded-Role"

// ServerSelf is GET /v1/status/self: who this server is, what it has
// discovered and whether it is part of a bootstrapped Raft cluster. Servers
// use it to find each other before bootstrap.
type ServerSelf struct {
	Member       ServerMember    `json:"member"`
	Known        []*ServerMember `json:"known,omitempty"`
	Bootstrapped bool            `json:"bootstrapped"`
	LeaderID     string          `json:"leader_id,omitempty"`
	// EntryFormat is the Raft entry format this server would propose in
	// as leader: "binary (...)" once every server applies it, else
	// "json (...)" naming the servers on older builds.
	EntryFormat string `json:"entry_format,omitempty"`
	// DivergedAt is the index of the first committed Raft entry this
	// server's build could not apply (0: none). Its state is then behind
	// the cluster's and it has stopped its Raft: upgrade and restart it.
	DivergedAt uint64 `json:"diverged_at,omitempty"`
}

// RaftPeer is one row of GET /v1/operator/raft/configuration.
type RaftPeer struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// Status is "alive" when the answering server reached the peer's API
	// just now, "diverged" when the peer answered that it met a Raft entry
	// its build cannot apply, "unreachable" otherwise, "" when not probed.
	Status string `json:"status,omitempty"`
	// RaftProtocol is the entry format the peer's record advertises (1:
	// JSON only, also for records written by builds before the field; 0:
	// no record yet).
	RaftProtocol int `json:"raft_protocol,omitempty"`
}

// RaftConfiguration is the Raft membership as the leader sees it.
type RaftConfiguration struct {
	Index uint64      `json:"index"`
	Peers []*RaftPeer `json:"peers"`
	// EntryFormat is the answering server's ServerSelf.EntryFormat.
	EntryFormat string `json:"entry_format,omitempty"`
}

// SnapshotRestoreResponse answers PUT /v1/operator/snapshot.
type SnapshotRestoreResponse struct {
	Index uint64 `json:"index"`
}

// ServerSelf asks the server at the first reachable address who it is
// (GET /v1/status/self, answered locally).
func (c *Client) ServerSelf(ctx context.Context) (*ServerSelf, error) {
	var out ServerSelf
	_, err := c.do(ctx, "GET", "/v1/status/self", nil, nil, &out)
	return &out, err
}

// RaftConfiguration lists the Raft peers (GET /v1/operator/raft/configuration);
// with q.Stale the answering server's own view is returned.
func (c *Client) RaftConfiguration(ctx context.Context, q *QueryOptions) (*RaftConfiguration, error) {
	var out RaftConfiguration
	_, err := c.do(ctx, "GET", "/v1/operator/raft/configuration", q.values(), nil, &out)
	return &out, err
}

// RemoveRaftPeer removes a server from the Raft configuration by ID or
// Raft address (DELETE /v1/operator/raft/peer?id=|address=).
func (c *Client) RemoveRaftPeer(ctx context.Context, id, address string) error {
	q := url.Values{}
	if id != "" {
		q.Set("id", id)
	}
	if address != "" {
		q.Set("address", address)
	}
	_, err := c.do(ctx, "DELETE", "/v1/operator/raft/peer", q, nil, nil)
	return err
}

// JoinServer asks the leader to add a server as a voter and record its
// addresses (POST /v1/operator/raft/join).
func (c *Client) JoinServer(ctx context.Context, m *ServerMember) error {
	_, err := c.do(ctx, "POST", "/v1/operator/raft/join", nil, m, nil)
	return err
}

// SnapshotSave streams a point-in-time backup of the cluster state from the
// leader into w (GET /v1/operator/snapshot) and returns the bytes written.
// It checks the backup as it arrives (package backup: header, trailer,
// record count, checksum): a stream the server cut short or that arrived
// damaged is an error wrapping backup.ErrInvalid, and the caller must not
// keep what was written.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.raw(ctx, "GET", "/v1/operator/snapshot", nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	cw := &countingWriter{w: w}
	if _, err := backup.Verify(io.TeeReader(resp.Body, cw)); err != nil {
		if errors.Is(err, backup.ErrInvalid) {
			return cw.n, fmt.Errorf("the snapshot received is not whole: %w", err)
		}
		return cw.n, fmt.Errorf("reading snapshot: %w", err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SnapshotRestore replaces the cluster state with a backup made by
// SnapshotSave (PUT /v1/operator/snapshot). The server refuses, changing
// nothing, a file that is not a whole backup (400), one over its size
// limit (413) or one that would fill its disk (507). The body is sent
// once: a 503 cannot be retried on another server, so point the client at
// the leader or at a server that forwards.
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) (*SnapshotRestoreResponse, error) {
	var out SnapshotRestoreResponse
	// The body can be sent once, so only the first address is used.
	base := c.addrs[0]
	req, err := http.NewRequestWithContext(ctx, "PUT", base+"/v1/operator/snapshot", r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if c.token != "" {
		req.Header.Set(TokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("PUT %s/v1/operator/snapshot: %w", base, err)
	}
	if err := decodeResponse(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
