package ui

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// TestOverviewAtScale: a server with 10,000 nodes and 100,000
// allocations. The overview's heat map, the allocation list and the node
// list render, and the lists scroll to their far end (rows fetched by
// page). The time to the overview's first render is logged (OVERVIEW
// line), not asserted: the machine is shared.
func TestOverviewAtScale(t *testing.T) {
	chromiumPath(t)
	if testing.Short() {
		t.Skip("registers 10,000 nodes")
	}
	const nodes, jobs, perJob = 10000, 10, 10000
	addr := testutil.FreeAddr(t)
	testutil.StartProc(t, gantryBin, "server", "server", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--http-addr", addr, "--raft-addr", testutil.FreeAddr(t), "--heartbeat-ttl", "1h")
	c, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testutil.WaitFor(t, 60*time.Second, 100*time.Millisecond, "a leader", func() (bool, string) {
		l, err := c.Leader(ctx)
		return err == nil && l != "", fmt.Sprint(err)
	})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < nodes; i += 16 {
				// A tenth of the nodes are small, so the heat map has
				// some color.
				cpu := int64(64000)
				if i%10 == 0 {
					cpu = 1000
				}
				n := &api.Node{ID: fmt.Sprintf("sim-%05d", i), Name: fmt.Sprintf("sim-%05d", i),
					Capacity: api.Resources{CPU: cpu, MemoryMB: 65536}, Labels: map[string]string{"rack": strconv.Itoa(i / 40)}}
				if _, err := c.RegisterNode(ctx, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for j := range jobs {
		job := &api.Job{Name: fmt.Sprintf("scale-%d", j), Count: perJob, Driver: "mock", Resources: api.Resources{CPU: 10, MemoryMB: 8}}
		if _, err := c.RegisterJob(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Minute, 500*time.Millisecond, "100,000 allocations", func() (bool, string) {
		_, meta, err := c.ListJobs(ctx, nil)
		if err != nil {
			return false, err.Error()
		}
		_ = meta
		n := 0
		for j := range jobs {
			st, _, err := c.JobStatus(ctx, fmt.Sprintf("scale-%d", j), nil)
			if err != nil {
				return false, err.Error()
			}
			n += len(st.Allocations)
		}
		return n == jobs*perJob, fmt.Sprintf("%d allocations", n)
	})
	t.Logf("cluster of %d nodes and %d allocations made in %s", nodes, jobs*perJob, time.Since(start).Round(time.Millisecond))

	b := newBrowser(t, "http://"+addr)
	b.open("#/overview", "Overview")
	b.wait("the heat map of 10,000 nodes", `document.documentElement.dataset.overviewNodes === '10000'`)
	ms := eval[string](b, `document.documentElement.dataset.overviewRendered`)
	t.Logf("OVERVIEW first render with %d nodes and %d allocations: %s ms after navigation start (headless Chromium)", nodes, jobs*perJob, ms)
	b.shot("overview-10000-nodes")

	b.open("#/allocations", "Allocations")
	b.wait("the first rows", `document.querySelectorAll('.vlist .row').length > 10 && document.querySelector('.vlist + p').textContent.startsWith('100,000')`)
	rows := eval[float64](b, `performance.now()`)
	t.Logf("ALLOCATIONS list of 100,000 showed its first rows by %.0f ms after navigation start", rows)
	b.do("scroll to the end", evalVoid(`document.querySelector('.vlist').scrollTop = 1e9`))
	b.wait("the last rows", `[...document.querySelectorAll('.vlist .row')].some((r) => r.dataset.i === '99999')`)
	b.shot("allocations-100000")

	b.open("#/nodes", "Nodes")
	b.wait("the node rows", `document.querySelectorAll('.vlist .row').length > 10 && document.querySelector('.vlist + p').textContent.startsWith('10,000')`)
	b.do("filter by prefix", evalVoid(`(() => { const i = document.querySelector('.filters input'); i.value = 'sim-0999'; i.dispatchEvent(new Event('input')); })()`))
	b.wait("ten nodes", `document.querySelector('.vlist + p').textContent.startsWith('10 rows') && document.querySelectorAll('.vlist .row').length === 10`)
	b.shot("nodes-filtered")
}

// TestPeersPage: a cluster peer started with --http-addr serves the UI,
// which opens on the Peers page and shows the slot map once the peer owns
// every slot.
func TestPeersPage(t *testing.T) {
	chromiumPath(t)
	port := testutil.FreePort(t)
	bus := testutil.FreePort(t)
	httpAddr := testutil.FreeAddr(t)
	testutil.StartProc(t, gantryBin, "peer", "peer", "--cluster", "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus),
		"--http-addr", httpAddr)
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer rc.Close()
	ctx := context.Background()
	testutil.WaitFor(t, 30*time.Second, 100*time.Millisecond, "the peer", func() (bool, string) {
		err := rc.Do(ctx, "cluster", "addslotsrange", 0, 16383).Err()
		return err == nil, fmt.Sprint(err)
	})
	b := newBrowser(t, "http://"+httpAddr)
	b.do("open the peer's UI", navigate("http://"+httpAddr+"/"))
	b.wait("the Peers page", `location.hash === '#/peers' && document.querySelector('main h1')?.textContent === 'Peers'`)
	b.wait("every slot assigned", `document.getElementById('main').innerText.includes('16,384\nslots assigned') && document.querySelector('.heat-wrap canvas') !== null`)
	b.wait("two samples of ops/s", `!document.getElementById('main').innerText.includes('-\nops/s')`)
	if hidden := eval[bool](b, `[...document.querySelectorAll('#nav li')].filter((li) => !li.hidden).length === 1`); !hidden {
		t.Error("the peer's UI shows the server pages")
	}
	b.checkKeyboard("peers")
	b.shot("peers-slot-map")
}
