package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Draining a node moves its allocations to the other nodes and places
// nothing new on it; a spec change replaces every allocation with one of
// the new version, while a count change keeps the existing ones.
func TestDrainAndUpdate(t *testing.T) {
	c := newCluster(t)
	c.startServer()
	c.startAgent("node-1", 1000, 1024)
	c.startAgent("node-2", 1000, 1024)
	c.waitReadyNodes(2)

	job := execJob("svc", c.dir, 4)
	register(t, c, job)
	before := c.waitRunning("svc", 4)

	// Scale: the running copies stay, two more are added.
	job.Count = 6
	register(t, c, job)
	scaled := c.waitRunning("svc", 6)
	kept := map[string]bool{}
	for _, a := range scaled {
		kept[a.ID] = true
	}
	for _, a := range before {
		if !kept[a.ID] {
			t.Fatalf("scaling up replaced %s", a.Name)
		}
	}

	// Update the spec: every copy is replaced by one of version 2.
	job.Env["REVISION"] = "2"
	register(t, c, job)
	c.waitFor(time.Minute, "every copy to run version 2", func() (bool, string) {
		live := c.liveAllocs("svc")
		v2 := 0
		for _, a := range live {
			if a.JobVersion == 2 && a.ClientStatus == "running" {
				v2++
			}
		}
		return v2 == 6 && len(live) == 6, fmt.Sprintf("%d live, %d running v2", len(live), v2)
	})

	// Drain node-1: its copies move to node-2.
	if _, err := c.client.DrainNode(context.Background(), "node-1", true); err != nil {
		t.Fatal(err)
	}
	c.waitFor(time.Minute, "node-1 to be emptied", func() (bool, string) {
		live := c.liveAllocs("svc")
		on1, running := 0, 0
		for _, a := range live {
			if a.NodeName == "node-1" {
				on1++
			}
			if a.ClientStatus == "running" {
				running++
			}
		}
		return on1 == 0 && running == 6, fmt.Sprintf("%d on node-1, %d running", on1, running)
	})
	node, _, err := c.client.Node(context.Background(), "node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !node.Drain {
		t.Fatal("node-1 is not marked draining")
	}
}
