package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestNodeAllocationsKnown checks the node-scoped blocking query: it does
// not wake for other nodes' placements nor for the node's own reports,
// wakes for a server-side change, answers only changes with changes=true,
// and answers the full list at once after a removal.
func TestNodeAllocationsKnown(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	for _, id := range []string{"n1", "n2"} {
		if _, err := c.RegisterNode(bg, fakeNode(id, 1000, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	job := func(name string) *api.Job {
		j := mockJob(name, 1)
		j.Resources = api.Resources{CPU: 600, MemoryMB: 600} // one per node
		return j
	}
	if _, err := c.RegisterJob(bg, job("a")); err != nil {
		t.Fatal(err)
	}
	a := waitLive(t, c, "a", 1)[0]
	node, other := a.NodeID, "n1"
	if node == "n1" {
		other = "n2"
	}

	allocs, meta, err := c.NodeAllocationsKnown(bg, node, &api.QueryOptions{}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != 1 || !meta.Full {
		t.Fatalf("first answer: %d allocs, full=%v; want 1, full", len(allocs), meta.Full)
	}
	index := meta.LastIndex
	if index != allocs[0].AllocModifyIndex {
		t.Fatalf("index %d, want the allocation's AllocModifyIndex %d", index, allocs[0].AllocModifyIndex)
	}

	type answer struct {
		allocs []*api.Allocation
		meta   *api.QueryMeta
		err    error
	}
	watch := func(known int) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			al, m, err := c.NodeAllocationsKnown(bg, node, &api.QueryOptions{WaitIndex: index, WaitTime: 20 * time.Second}, known, true)
			ch <- answer{al, m, err}
		}()
		return ch
	}
	quiet := func(ch <-chan answer, why string) {
		t.Helper()
		select {
		case ans := <-ch:
			t.Fatalf("query answered after %s (index %d -> %d, %d allocs); want it to keep waiting",
				why, index, ans.meta.LastIndex, len(ans.allocs))
		case <-time.After(300 * time.Millisecond):
		}
	}

	// Another node's placement and this node's own report do not wake it.
	ch := watch(1)
	if _, err := c.RegisterJob(bg, job("b")); err != nil {
		t.Fatal(err)
	}
	b := waitLive(t, c, "b", 1)[0]
	if b.NodeID != other {
		t.Fatalf("job b placed on %s, want %s", b.NodeID, other)
	}
	if _, err := c.UpdateAllocations(bg, node, []*api.AllocClientUpdate{{ID: a.ID, ClientStatus: api.AllocClientRunning}}); err != nil {
		t.Fatal(err)
	}
	quiet(ch, "another node's placement and the node's own report")

	// A server-side change (stop) wakes it with just that allocation.
	if _, err := c.StopJob(bg, "a", false); err != nil {
		t.Fatal(err)
	}
	ans := <-ch
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if ans.meta.Full || len(ans.allocs) != 1 || ans.allocs[0].DesiredStatus != api.AllocDesiredStop {
		t.Fatalf("after stop: full=%v, %d allocs; want the stopped allocation only", ans.meta.Full, len(ans.allocs))
	}
	index = ans.meta.LastIndex

	// A purge removes it: a caller holding 1 gets the full (empty) list at once.
	if _, err := c.StopJob(bg, "a", true); err != nil {
		t.Fatal(err)
	}
	ans = <-watch(1)
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	if !ans.meta.Full || len(ans.allocs) != 0 || ans.meta.LastIndex <= index {
		t.Fatalf("after purge: full=%v, %d allocs, index %d (was %d); want the full empty list at a newer index",
			ans.meta.Full, len(ans.allocs), ans.meta.LastIndex, index)
	}
}

func TestNodeAllocationsQueryValidation(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, fakeNode("n1", 1000, 1024)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ query, want string }{
		{"known=-1", "known: must be a non-negative integer"},
		{"known=x", "known: must be a non-negative integer"},
		{"changes=true", "changes: requires known="},
		{"known=1&changes=maybe", "changes: must be"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get("http://" + s.HTTPAddr() + "/v1/node/n1/allocations?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body := resp.StatusCode, string(b)
			if code != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("GET ?%s: %d %s; want 400 with %q", tc.query, code, body, tc.want)
			}
		})
	}
}

// TestUpdateBatcherAppliesAll sends many nodes' reports at once and checks
// every one is applied (however they were grouped into entries) and that
// a node still cannot report on another node's allocation.
func TestUpdateBatcherAppliesAll(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	const nodes = 20
	for i := range nodes {
		if _, err := c.RegisterNode(bg, fakeNode(fmt.Sprint("n", i), 10000, 10000)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterJob(bg, mockJob("many", 60)); err != nil {
		t.Fatal(err)
	}
	live := waitLive(t, c, "many", 60)
	var wg sync.WaitGroup
	errs := make(chan error, len(live))
	for _, a := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.UpdateAllocations(context.Background(), a.NodeID,
				[]*api.AllocClientUpdate{{ID: a.ID, ClientStatus: api.AllocClientRunning}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	snap := s.State().Snapshot()
	for _, a := range live {
		if got := snap.AllocByID(a.ID).ClientStatus; got != structs.AllocClientRunning {
			t.Errorf("alloc %s: client status %q after its report, want running", a.ID, got)
		}
	}
	// A report for another node's allocation is ignored.
	victim := live[0]
	wrong := "n0"
	if victim.NodeID == wrong {
		wrong = "n1"
	}
	if _, err := c.UpdateAllocations(bg, wrong, []*api.AllocClientUpdate{{ID: victim.ID, ClientStatus: api.AllocClientFailed}}); err != nil {
		t.Fatal(err)
	}
	if got := s.State().Snapshot().AllocByID(victim.ID).ClientStatus; got != structs.AllocClientRunning {
		t.Fatalf("alloc %s changed to %q by another node's report", victim.ID, got)
	}
}
