package server

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/structs"
)

// apiStatus returns the HTTP status of an API error (0 for none).
func apiStatus(err error) int {
	var ae *api.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// TestACLAttacksRefused replays the attacks of the issue that asked for
// access control, as an anonymous caller of a cluster with ACLs on: a job
// running `id` with the exec driver, a made-up Raft voter, a snapshot
// upload over every job, a node registration. Each is refused with 401
// and changes nothing.
func TestACLAttacksRefused(t *testing.T) {
	s, mgmt, _ := aclServer(t)
	anon := tokenClient(t, s, "")
	if _, err := mgmt.RegisterJob(bg, mockJob("keep", 0)); err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if _, err := mgmt.SnapshotSave(bg, &backup); err != nil {
		t.Fatal(err)
	}
	if _, err := mgmt.StopJob(bg, "keep", true); err != nil {
		t.Fatal(err)
	}
	if _, err := mgmt.RegisterJob(bg, mockJob("after-backup", 0)); err != nil {
		t.Fatal(err)
	}
	confBefore, _, err := s.raftConfig()
	if err != nil {
		t.Fatal(err)
	}

	exec := &api.Job{Name: "pwn", Count: 1, Driver: "exec", Config: map[string]any{"command": "id"},
		Resources: api.Resources{CPU: 100, MemoryMB: 64}}
	for _, attack := range []struct {
		name string
		do   func() error
	}{
		{"exec job", func() error { _, err := anon.RegisterJob(bg, exec); return err }},
		{"raft join", func() error {
			return anon.JoinServer(bg, &api.ServerMember{ID: "evil", Name: "evil", RaftAddr: "203.0.113.7:4647", HTTPAddr: "203.0.113.7:4646"})
		}},
		{"snapshot restore", func() error { _, err := anon.SnapshotRestore(bg, bytes.NewReader(backup.Bytes())); return err }},
		{"node registration", func() error { _, err := anon.RegisterNode(bg, fakeNode("rogue", 64000, 1<<20)); return err }},
		{"node heartbeat of a made-up node", func() error { _, err := anon.Heartbeat(bg, "rogue"); return err }},
		{"raft peer removal", func() error {
			return anon.RemoveRaftPeer(bg, string(confBefore.Servers[0].ID), "")
		}},
	} {
		t.Run(attack.name, func(t *testing.T) {
			err := attack.do()
			if apiStatus(err) != http.StatusUnauthorized {
				t.Fatalf("anonymous %s: %v, want 401", attack.name, err)
			}
		})
	}
	snap := s.State().Snapshot()
	if snap.JobByID("pwn") != nil || snap.NodeByID("rogue") != nil {
		t.Fatal("a refused request changed state")
	}
	if snap.JobByID("after-backup") == nil || snap.JobByID("keep") != nil {
		t.Fatal("the refused snapshot upload replaced the state")
	}
	confAfter, _, err := s.raftConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(confAfter.Servers) != len(confBefore.Servers) {
		t.Fatalf("raft configuration changed: %v", confAfter.Servers)
	}
	// A token without operator write is refused too (403), and the
	// management token is not.
	weak := tokenClient(t, s, tokenWith(t, mgmt, "ns-writer", `namespace "*" { policy = "write" } node { policy = "write" }`))
	if err := weak.JoinServer(bg, &api.ServerMember{ID: "evil", Name: "evil", RaftAddr: "203.0.113.7:4647", HTTPAddr: "203.0.113.7:4646"}); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("raft join with namespace and node write only: %v, want 403", err)
	}
	if _, err := weak.SnapshotRestore(bg, bytes.NewReader(backup.Bytes())); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("snapshot restore without operator write: %v, want 403", err)
	}
}

// TestACLAnonymousPolicy: without a token a request may do exactly what
// the policy named "anonymous" grants.
func TestACLAnonymousPolicy(t *testing.T) {
	s, mgmt, _ := aclServer(t)
	anon := tokenClient(t, s, "")
	if _, _, err := anon.ListJobs(bg, nil); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous list before the anonymous policy: %v, want 401", err)
	}
	if _, err := mgmt.ApplyACLPolicy(bg, &api.ACLPolicy{Name: structs.AnonymousPolicy,
		Rules: `namespace "default" { policy = "read" }`}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.ListJobs(bg, nil); err != nil {
		t.Fatalf("anonymous list with the anonymous policy: %v", err)
	}
	if _, err := anon.RegisterJob(bg, mockJob("x", 0)); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous submit with a read-only anonymous policy: %v, want 401", err)
	}
	if _, _, err := anon.ListNodes(bg, nil); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous node list: %v, want 401", err)
	}
	if _, err := anon.ACLTokenSelf(bg); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("token self without a token: %v, want 401", err)
	}
	// Deleting the policy takes the grant back at once (the cache follows
	// the ACL generation).
	if _, err := mgmt.DeleteACLPolicy(bg, structs.AnonymousPolicy); err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.ListJobs(bg, nil); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous list after the policy was deleted: %v, want 401", err)
	}
}

// TestACLTokenLifecycle: a token's permissions follow its policies as they
// change; a deleted token is unknown at once; secrets are shown once and
// stored only hashed; the bearer header works as X-Gantry-Token does.
func TestACLTokenLifecycle(t *testing.T) {
	s, mgmt, _ := aclServer(t)
	secret := tokenWith(t, mgmt, "reader", `namespace "default" { policy = "read" }`)
	c := tokenClient(t, s, secret)
	if _, _, err := c.ListJobs(bg, nil); err != nil {
		t.Fatalf("reader lists jobs: %v", err)
	}
	_, err := c.RegisterJob(bg, mockJob("x", 0))
	if apiStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), `token "reader"`) || !strings.Contains(err.Error(), "namespace default: submit") {
		t.Fatalf("reader submits: %v, want 403 naming the token and the capability", err)
	}
	if _, err := mgmt.ApplyACLPolicy(bg, &api.ACLPolicy{Name: "reader", Rules: `namespace "default" { policy = "write" }`}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterJob(bg, mockJob("x", 0)); err != nil {
		t.Fatalf("after the policy grants write: %v", err)
	}

	self, err := c.ACLTokenSelf(bg)
	if err != nil || self.Name != "reader" || self.SecretID != "" || self.SecretHash != "" {
		t.Fatalf("token self: %+v %v (no secret, no hash)", self, err)
	}
	stored := s.State().Snapshot().ACLToken(nil, self.AccessorID)
	if stored.SecretHash != acl.HashSecret(secret) || stored.SecretID != "" {
		t.Fatal("the stored token must hold the secret's hash only")
	}
	list, err := mgmt.ACLTokens(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list {
		if tok.SecretHash != "" || tok.SecretID != "" {
			t.Fatalf("token list shows secret material: %+v", tok)
		}
	}

	// A 401 names the scheme.
	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/jobs", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="gantry"` {
		t.Fatalf("anonymous: %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// Authorization: Bearer.
	req, _ = http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/jobs", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer token: %d", resp.StatusCode)
	}

	if _, err := mgmt.DeleteACLToken(bg, self.AccessorID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ListJobs(bg, nil); apiStatus(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "token not found") {
		t.Fatalf("deleted token: %v, want 401 token not found", err)
	}
	if _, err := mgmt.DeleteACLToken(bg, self.AccessorID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("deleting it again: %v, want 404", err)
	}

	// Bad tokens are refused with the field at fault.
	for _, req := range []*api.ACLTokenCreateRequest{
		{Policies: nil},
		{Type: "root", Policies: []string{"reader"}},
		{Type: api.ACLManagementToken, Policies: []string{"reader"}},
		{Policies: []string{"missing"}},
	} {
		if _, err := mgmt.CreateACLToken(bg, req); apiStatus(err) != http.StatusBadRequest {
			t.Errorf("token %+v: %v, want 400", req, err)
		}
	}
	// A policy that does not parse is refused with its line and column.
	_, err = mgmt.ApplyACLPolicy(bg, &api.ACLPolicy{Name: "bad", Rules: "namespace \"a\" {\n  policy = \"admin\"\n}"})
	if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "line 2, column 12") {
		t.Fatalf("bad policy: %v, want 400 with its position", err)
	}
}

// TestACLBootstrapReset: a second bootstrap is refused naming the reset
// index; writing that index to the reset file in the leader's data dir
// allows exactly one more (Nomad's procedure).
func TestACLBootstrapReset(t *testing.T) {
	s, _, first := aclServer(t)
	anon := tokenClient(t, s, "")
	_, err := anon.ACLBootstrap(bg)
	if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "reset index") {
		t.Fatalf("second bootstrap: %v, want 400 naming the reset index", err)
	}
	idx := s.State().Snapshot().ACLBootstrapIndex()
	if !strings.Contains(err.Error(), "reset index: "+strconv.FormatUint(idx, 10)) {
		t.Fatalf("error %q does not name index %d", err, idx)
	}
	path := filepath.Join(s.cfg.DataDir, BootstrapResetFile)
	if err := os.WriteFile(path, []byte(strconv.FormatUint(idx, 10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := anon.ACLBootstrap(bg)
	if err != nil || again.SecretID == "" || again.SecretID == first {
		t.Fatalf("bootstrap after reset: %+v %v", again, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the used reset file must be removed")
	}
	if _, err := anon.ACLBootstrap(bg); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("third bootstrap: %v, want refused", err)
	}
	// Both management tokens work.
	for _, sec := range []string{first, again.SecretID} {
		if _, err := tokenClient(t, s, sec).ACLTokens(bg); err != nil {
			t.Fatalf("management token: %v", err)
		}
	}
}

// TestACLDisabled: without acl.enabled nothing is checked (a token or not)
// and the ACL endpoints say ACLs are off.
func TestACLDisabled(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterJob(bg, mockJob("open", 0)); err != nil {
		t.Fatalf("anonymous submit with ACLs off: %v", err)
	}
	if _, err := tokenClient(t, s, "whatever").RegisterJob(bg, mockJob("open2", 0)); err != nil {
		t.Fatalf("any token with ACLs off: %v", err)
	}
	if _, err := c.ACLBootstrap(bg); apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("bootstrap with ACLs off: %v, want 400 saying ACLs are disabled", err)
	}
}

// TestACLServerRole: with a TLS role source (peerRole), a caller whose
// certificate names the server role may call the operator routes without
// a token (servers joining each other); other roles need a token.
func TestACLServerRole(t *testing.T) {
	cfg := testConfig(t)
	cfg.ACL.Enabled = true
	s, _ := startServerWith(t, cfg, func(s *Server) {
		// Stands for the TLS layer's verified role of the original caller.
		s.peerRole = func(r *http.Request) string { return r.Header.Get("X-Test-Role") }
	})
	for _, tc := range []struct {
		role string
		want int
	}{
		{"server", http.StatusBadRequest}, // past the ACL check: the empty member is refused
		{"client", http.StatusUnauthorized},
		{"agent", http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/v1/operator/raft/join", strings.NewReader("{}"))
		req.Header.Set("X-Test-Role", tc.role)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("raft join as role %q: %d, want %d", tc.role, resp.StatusCode, tc.want)
		}
	}
	// The role grants the operator routes only.
	req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/jobs", nil)
	req.Header.Set("X-Test-Role", "server")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("job list as role server without a token: %d, want 401", resp.StatusCode)
	}
}
