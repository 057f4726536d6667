package partition

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPeerJobsPartition: six peer containers running jobs (3 primaries,
// 3 replicas); the primary owning a service job and running copies is
// cut off. The majority keeps every service at count; after healing each
// service runs exactly count copies (the extras the isolated side kept
// running are stopped) and the batch job that completed before the cut
// is not run again.
func TestPeerJobsPartition(t *testing.T) {
	if dockerSkip != "" {
		t.Skip("peer jobs partition test skipped: " + dockerSkip)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("peer jobs partition test skipped: redis-cli not installed (Debian package redis-tools; .ci/run installs it)")
	}
	ctx := context.Background()
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	c := newPeerClusterArgs(t, 6, func(_ int, ip string) []string {
		return []string{"--run-tasks", "--drivers", "mock", "--http-addr", ip + ":7600",
			"--cpu", "20000", "--memory-mb", "20000", "--leave-on-signal", "none"}
	})
	var addrs []string
	for _, ip := range c.clusterIPs {
		addrs = append(addrs, ip+":6379")
	}
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Minute)
	out, err := exec.CommandContext(cctx, "redis-cli",
		append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	ccancel()
	if err != nil || !strings.Contains(string(out), "[OK] All 16384 slots covered") {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	client := func(i int) *api.Client {
		// bounded: the cut-off peer does not answer at all
		cl, err := api.NewClient(api.Config{Address: "http://" + c.clusterIPs[i] + ":7600", HTTPClient: &http.Client{Timeout: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	services := map[string]int{"web": 12, "api": 9, "cache": 6}
	jobs := []*structs.Job{{Name: "batch", Type: structs.JobTypeBatch, Count: 4, Driver: "mock", Priority: 50,
		Config: map[string]any{"run_for": "200ms"}, Resources: structs.Resources{CPU: 10, MemoryMB: 8}}}
	for name, n := range services {
		jobs = append(jobs, &structs.Job{Name: name, Type: structs.JobTypeService, Count: n, Driver: "mock", Priority: 50,
			Resources: structs.Resources{CPU: 20, MemoryMB: 16}})
	}
	for i, j := range jobs {
		waitFor(t, 60*time.Second, "job "+j.Name+" submitted", func() (bool, string) {
			_, err := client(i%6).RegisterJob(ctx, j)
			return err == nil, fmt.Sprint(err)
		})
	}
	// state of the jobs as seen through peer via; cut is the isolated peer
	var cut string
	check := func(via int, exact bool) (bool, string) {
		for name, n := range services {
			st, _, err := client(via).JobStatus(ctx, name, nil)
			if err != nil {
				return false, err.Error()
			}
			idx := map[int]bool{}
			running := 0
			for _, a := range st.Allocations {
				if a.ClientStatus != structs.AllocClientRunning {
					continue
				}
				running++
				if a.DesiredStatus != structs.AllocDesiredRun || (!exact && a.NodeID == cut) {
					continue
				}
				if idx[a.Index] {
					return false, fmt.Sprintf("%s[%d] twice", name, a.Index)
				}
				idx[a.Index] = true
			}
			if len(idx) != n {
				return false, fmt.Sprintf("%s: %d of %d indexes running", name, len(idx), n)
			}
			if exact && running != n {
				return false, fmt.Sprintf("%s: %d copies running, want exactly %d", name, running, n)
			}
		}
		return true, ""
	}
	batchAllocs := func(via int) ([]string, string) {
		st, _, err := client(via).JobStatus(ctx, "batch", nil)
		if err != nil {
			return nil, err.Error()
		}
		var ids []string
		for _, a := range st.Allocations {
			if a.ClientStatus != structs.AllocClientComplete {
				return nil, fmt.Sprintf("batch %s %s", a.ID, a.ClientStatus)
			}
			ids = append(ids, a.ID)
		}
		slices.Sort(ids)
		return ids, ""
	}
	waitFor(t, 90*time.Second, "every service at count", func() (bool, string) { return check(0, true) })
	var batchBefore []string
	waitFor(t, 60*time.Second, "the batch job complete", func() (bool, string) {
		ids, why := batchAllocs(0)
		batchBefore = ids
		return len(ids) == 4, why
	})
	t.Logf("%s: services at count, batch complete", since())

	// cut off the primary that owns "web" (it also runs copies)
	slot := peerexec.JobSlot("web")
	victim := -1
	for i := range c.names {
		lines, err := c.view(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		owner := ownerOfSlot(lines, slot)
		for _, l := range lines {
			if l.ID == owner && strings.HasPrefix(l.Addr, c.clusterIPs[i]+":") {
				victim, cut = i, owner
			}
		}
	}
	if victim < 0 {
		t.Fatal("no container owns web's slot")
	}
	other := (victim + 1) % 6
	if _, err := docker(ctx, "network", "disconnect", c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	t.Logf("%s: cut off %s (owner of web)", since(), c.names[victim])
	waitFor(t, 90*time.Second, "the majority to run every service at count without the cut peer", func() (bool, string) {
		return check(other, false)
	})
	t.Logf("%s: majority at count %.1fs after the cut", since(), time.Since(cutAt).Seconds())
	time.Sleep(2 * time.Second)

	if _, err := docker(ctx, "network", "connect", "--ip", c.clusterIPs[victim], c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	waitFor(t, 120*time.Second, "exactly count copies of every service after healing", func() (bool, string) {
		cut = ""
		for _, via := range []int{other, victim} {
			if ok, why := check(via, true); !ok {
				return false, fmt.Sprintf("via %s: %s", c.names[via], why)
			}
		}
		return true, ""
	})
	t.Logf("%s: exactly count %.1fs after healing", since(), time.Since(healAt).Seconds())
	after, why := batchAllocs(other)
	if why != "" || strings.Join(after, ",") != strings.Join(batchBefore, ",") {
		t.Fatalf("batch allocations after healing %v (%s), want the completed ones %v, none run again", after, why, batchBefore)
	}
	time.Sleep(3 * time.Second)
	if ok, why := check(other, true); !ok {
		t.Errorf("after settling: %s", why)
	}
}
