package server

import (
	"strings"
	"testing"
)

// A node may register itself ineligible (its agent found its disk full):
// the reason is kept and the node takes no placements; a reason too long to
// be one is refused.
func TestNodeRegistersIneligible(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	n := fakeNode("n1", 4000, 4096)
	n.Ineligible = "data disk full (10 MiB free, minimum 100 MiB)"
	if _, err := c.RegisterNode(bg, n); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Node(bg, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ineligible != n.Ineligible || got.Ready() {
		t.Fatalf("node = ineligible %q ready %v", got.Ineligible, got.Ready())
	}
	n.Ineligible = strings.Repeat("x", 257)
	if _, err := c.RegisterNode(bg, n); err == nil || !strings.Contains(err.Error(), "ineligible: the reason must be at most 256 bytes") {
		t.Fatalf("a 257-byte reason: err = %v", err)
	}
}
