package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/api"
)

// TestACLEndToEnd runs a cluster with ACLs on through the real binary and
// its CLI: bootstrap, a policy and token for agents, an agent registering
// with it, an anonymous submission refused, a team token that runs jobs in
// its namespace within the namespace's quota and is refused elsewhere.
func TestACLEndToEnd(t *testing.T) {
	c := newCluster(t)
	c.serverArgs = []string{"--acl-enabled"}
	c.startServer()

	out, err := c.gantry("acl", "bootstrap", "-o", "json")
	if err != nil {
		t.Fatalf("acl bootstrap: %v\n%s", err, out)
	}
	var boot api.ACLToken
	if err := json.Unmarshal([]byte(out), &boot); err != nil || boot.SecretID == "" {
		t.Fatalf("acl bootstrap output: %v\n%s", err, out)
	}
	if out, err := c.gantry("acl", "bootstrap"); err == nil || !strings.Contains(out, "reset index") {
		t.Fatalf("second bootstrap: %v\n%s", err, out)
	}
	c.token = boot.SecretID
	if c.client, err = api.NewClient(api.Config{Address: c.addr(), Token: boot.SecretID}); err != nil {
		t.Fatal(err)
	}

	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(c.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := func(name, rules string) string {
		t.Helper()
		if out, err := c.gantry("acl", "policy", "apply", name, write(name+".hcl", rules)); err != nil {
			t.Fatalf("policy apply %s: %v\n%s", name, err, out)
		}
		out, err := c.gantry("acl", "token", "create", "--name", name, "--policy", name, "-o", "json")
		if err != nil {
			t.Fatalf("token create %s: %v\n%s", name, err, out)
		}
		var tok api.ACLToken
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.SecretID == "" {
			t.Fatalf("token create output: %v\n%s", err, out)
		}
		return tok.SecretID
	}
	c.agentArgs = []string{"--token", token("agents", `node { policy = "write" }`)}
	c.startAgent("dev-1", 1000, 1024)
	c.waitReadyNodes(1)

	spec := write("hello.yaml", `name: hello
count: 2
resources:
  cpu: 100
  memory_mb: 32
driver: exec
config:
  command: /bin/sh
  args: ["-c", "while true; do sleep 1; done"]
`)
	c.token = ""
	out, err = c.gantry("job", "run", "--detach", spec)
	if err == nil || !strings.Contains(out, "permission denied") || !strings.Contains(out, "GANTRY_TOKEN") {
		t.Fatalf("anonymous job run: %v, want refused saying how to give a token\n%s", err, out)
	}

	c.token = boot.SecretID
	if out, err := c.gantry("namespace", "apply", "team-a", "--quota-memory-mb", "64"); err != nil {
		t.Fatalf("namespace apply: %v\n%s", err, out)
	}
	c.token = token("team-a", `namespace "team-a" { policy = "write" }`)
	if out, err := c.gantry("job", "run", "-n", "team-a", spec); err != nil || !strings.Contains(out, "2/2 copies running") {
		t.Fatalf("team job run in its namespace: %v\n%s", err, out)
	}
	if out, err := c.gantry("job", "list", "-n", "team-a"); err != nil || !strings.Contains(out, "team-a/hello") {
		t.Fatalf("job list -n team-a: %v\n%s", err, out)
	}
	if out, err := c.gantry("job", "status", "hello"); err == nil || !strings.Contains(out, "lacks namespace default: read") {
		t.Fatalf("team token in the default namespace: %v, want 403\n%s", err, out)
	}
	// The quota (64 MiB) is full: one more copy waits and says why.
	if out, err := c.gantry("job", "scale", "-n", "team-a", "hello", "3"); err != nil {
		t.Fatalf("scale: %v\n%s", err, out)
	}
	c.waitFor(30e9, "the third copy pending on the quota", func() (bool, string) {
		out, _ := c.gantry("job", "status", "-n", "team-a", "hello")
		return strings.Contains(out, "quota team-a: memory 64/64 MiB"), out
	})
	if out, err := c.gantry("acl", "token", "self"); err != nil || !strings.Contains(out, "team-a") {
		t.Fatalf("token self: %v\n%s", err, out)
	}
	c.token = boot.SecretID
	if out, err := c.gantry("job", "stop", "-n", "team-a", "--purge", "hello"); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
}
