package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// numbered is the i-th line a log test task prints.
func numbered(i int) string { return fmt.Sprintf("line %d of a chatty task, padded to fifty", i) }

// checkLines requires body to be whole numbered lines first, first+1, ...,
// last-1 and returns nothing on success.
func checkLines(t *testing.T, what, body string, first, last int) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(got) != last-first {
		t.Fatalf("%s: %d lines, want %d (from %d)", what, len(got), last-first, first)
	}
	for i, l := range got {
		if want := numbered(first + i); l != want {
			t.Fatalf("%s: line %d = %q, want %q", what, i, l, want)
		}
	}
}

// TestLogsAcrossRotation reads a task's log through the agent's API while
// the shim rotates it: a plain read, a read from an offset in a later file,
// and a follower that keeps reading across rotations until the task ends,
// each seeing the stream whole and in order.
func TestLogsAcrossRotation(t *testing.T) {
	const firstBatch, total = 50000, 80000 // about 2.3 and 3.7 MiB
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir())
	gate := filepath.Join(t.TempDir(), "gate")
	script := fmt.Sprintf(`i=0
while [ $i -lt %d ]; do echo "line $i of a chatty task, padded to fifty"; i=$((i+1)); done
while [ ! -f %s ]; do sleep 0.02; done
while [ $i -lt %d ]; do echo "line $i of a chatty task, padded to fifty"; i=$((i+1)); done`, firstBatch, gate, total)
	al := testAlloc(a.NodeID(), structs.JobTypeBatch, "exec", sh(script))
	al.Job.Logs = structs.LogConfig{MaxFiles: 10, MaxFileSizeMB: 1}
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	base := "http://" + a.HTTPAddr() + "/v1/agent/allocation/" + al.ID + "/logs"
	get := func(query string) string {
		resp, err := http.Get(base + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", query, resp.StatusCode, err)
		}
		return string(b)
	}
	eventually(t, "the first batch", func() bool {
		return strings.HasSuffix(get(""), numbered(firstBatch-1)+"\n")
	})
	dir := filepath.Join(a.cfg.DataDir, "allocs", al.ID)
	if names, _ := filepath.Glob(filepath.Join(dir, driver.StdoutFile+".*")); len(names) < 3 {
		t.Fatalf("%d log files, want the first batch rotated over at least 3", len(names))
	}
	checkLines(t, "plain read", get(""), 0, firstBatch)
	// Line 30000 starts at byte 30000*(len+1) minus the shorter early
	// numbers: find it from the plain read instead of computing.
	whole := get("")
	off := strings.Index(whole, numbered(30000)+"\n")
	checkLines(t, "read from an offset", get("?offset="+strconv.Itoa(off)), 30000, firstBatch)

	resp, err := http.Get(base + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, len(numbered(0))+1)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body) // ends when the task is dead and the log drained
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, "follow", string(head)+string(rest), 0, total)
	fs.waitStatus(al.ID, structs.AllocClientComplete)
}

// fakeDisk is a data disk whose free space the test sets.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) Free(string) (uint64, error) { return d.free.Load(), nil }

// TestDiskFullNodeIneligible runs an agent whose data disk is full against
// a real server: the node registers ineligible with the reason, a job finds
// no node for it, and once space returns the node is eligible again and the
// job is placed there.
func TestDiskFullNodeIneligible(t *testing.T) {
	srv := startRealServer(t)

	disk := &fakeDisk{}
	disk.free.Store(10 << 20) // 10 MiB: under the 100 MiB default
	acfg := DefaultConfig()
	acfg.Servers, acfg.DataDir, acfg.Name = []string{srv.HTTPAddr()}, t.TempDir(), "n1"
	acfg.CPU, acfg.MemoryMB, acfg.Drivers = 2000, 1024, testDrivers(t)
	acfg.DiskFree, acfg.DiskCheckInterval = disk.Free, 10*time.Millisecond
	a, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := api.NewClient(api.Config{Address: "http://" + srv.HTTPAddr(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	node := func() *api.Node {
		n, _, err := c.Node(ctx, a.NodeID(), nil)
		if err != nil {
			return &api.Node{}
		}
		return n
	}
	eventually(t, "node registered ineligible", func() bool { return node().Ineligible != "" })
	if n := node(); n.Ready() || n.Ineligible != "data disk full (10 MiB free, minimum 100 MiB)" {
		t.Fatalf("node = ready %v, ineligible %q", n.Ready(), n.Ineligible)
	}
	job := &structs.Job{Name: "web", Type: structs.JobTypeService, Count: 1, Driver: "mock",
		Resources: structs.Resources{CPU: 100, MemoryMB: 32}}
	if _, err := c.RegisterJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a placement failure naming the ineligible node", func() bool {
		st, _, err := c.JobStatus(ctx, "web", nil)
		return err == nil && st.PlacementFailure != nil && st.PlacementFailure.NodesFiltered["ineligible"] == 1
	})

	disk.free.Store(1 << 30)
	eventually(t, "node eligible again", func() bool { n := node(); return n.Ineligible == "" && n.Ready() })
	eventually(t, "the job placed on the node", func() bool {
		allocs, _, err := c.JobAllocations(ctx, "web", nil)
		return err == nil && len(allocs) == 1 && allocs[0].NodeID == a.NodeID() &&
			allocs[0].ClientStatus == structs.AllocClientRunning
	})
}

// TestDiskCheck: eligibility follows the free space, registrations happen
// only when it changes, and a negative threshold turns the check off.
func TestDiskCheck(t *testing.T) {
	fs := newFakeServer(t)
	disk := &fakeDisk{}
	disk.free.Store(1 << 30)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) {
		c.DiskFree, c.DiskMinFreeMB, c.DiskCheckInterval = disk.Free, 50, time.Hour // checked by hand below
	})
	eventually(t, "registration", func() bool { r, _ := fs.counts(); return r == 1 })
	steps := []struct {
		free    uint64
		changed bool
		reason  string
	}{
		{1 << 30, false, ""},
		{49 << 20, true, "data disk full (49 MiB free, minimum 50 MiB)"},
		{10 << 20, false, "data disk full (49 MiB free, minimum 50 MiB)"}, // still full: no new registration
		{50 << 20, true, ""},
		{0, true, "data disk full (0 MiB free, minimum 50 MiB)"},
	}
	for i, s := range steps {
		disk.free.Store(s.free)
		if got := a.checkDisk(); got != s.changed {
			t.Fatalf("step %d: changed = %v, want %v", i, got, s.changed)
		}
		if got := a.Node().Ineligible; got != s.reason {
			t.Fatalf("step %d: ineligible = %q, want %q", i, got, s.reason)
		}
	}

	off := startAgent(t, fs, t.TempDir(), func(c *Config) {
		c.Name, c.DiskFree, c.DiskMinFreeMB = "n2", disk.Free, -1
	})
	if off.checkDisk() || off.Node().Ineligible != "" {
		t.Fatal("a negative threshold must turn the check off")
	}
}
