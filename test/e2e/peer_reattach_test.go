package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPeerOwnerKillRestart: the owner of a job is killed with SIGKILL
// and started again on its data directory, five times. Each time the
// job is supervised again by the new owner (its replica) at exactly its
// count, and the restarted peer re-attaches to the copies it ran: they
// keep running under their allocation IDs, never a duplicate. The time
// from each kill to the job's status at count on the new owner is
// logged (the median of five is the figure in docs/peer.md).
func TestPeerOwnerKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("six peer processes killed and restarted; not with -short")
	}
	ctx := context.Background()
	ps := make([]*execPeer, 6)
	args := make([][]string, 6)
	var addrs []string
	for i := range ps {
		n := &execPeer{peerNode: peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}, http: freePort(t)}
		args[i] = []string{"peer", "--cluster",
			"--port", strconv.Itoa(n.port), "--cluster-port", strconv.Itoa(n.bus), "--data-dir", n.dir, "--cpus", "1",
			"--http-addr", "127.0.0.1:" + strconv.Itoa(n.http), "--run-tasks", "--drivers", "mock", "--cpu", "20000", "--memory-mb", "20000",
			"--cluster-node-timeout", "1s", "--leave-on-signal", "none"}
		n.p = startProc(t, "peer:"+strconv.Itoa(n.port), args[i]...)
		ps[i] = n
		addrs = append(addrs, n.addr())
	}
	waitPing(t, addrs...) // listening before the cluster is created
	out, err := exec.Command(gantryBin, append([]string{"cluster", "create", "--replicas", "1"}, addrs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	waitUntil(t, 30*time.Second, "every peer answering", func() bool {
		for _, p := range ps {
			var ms []peerexec.MemberInfo
			if getJSON("http://127.0.0.1:"+strconv.Itoa(p.http)+"/v1/peer/members", &ms) != nil || len(ms) < len(ps) {
				return false
			}
		}
		return true
	})
	const count = 30
	// spread: every peer, the owner too, runs copies, so each kill
	// makes the new owner place the killed peer's copies again
	job := &structs.Job{Name: "web", Type: structs.JobTypeService, Count: count, Driver: "mock", Priority: 50,
		Placement: structs.PlacementSpread, Resources: structs.Resources{CPU: 20, MemoryMB: 16}}
	waitUntil(t, 30*time.Second, "job submitted", func() bool {
		_, err := ps[0].api(t).RegisterJob(ctx, job)
		return err == nil
	})
	// running returns the IDs of the copies running at count, or an
	// error; copies recorded on the peer dead do not count (their
	// records say running until the new owner replaces them)
	running := func(via *execPeer, dead string) ([]string, error) {
		st, _, err := via.api(t).JobStatus(ctx, "web", nil)
		if err != nil {
			return nil, err
		}
		idx := map[int]bool{}
		var ids []string
		for _, a := range st.Allocations {
			if a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientRunning && a.NodeID != dead {
				if idx[a.Index] {
					return nil, fmt.Errorf("%w: web[%d]", errTwice, a.Index)
				}
				idx[a.Index] = true
				ids = append(ids, a.ID)
			}
		}
		if len(ids) != count {
			return nil, fmt.Errorf("%d of %d running", len(ids), count)
		}
		slices.Sort(ids)
		return ids, nil
	}
	var last error
	waitUntil(t, 60*time.Second, "web at count", func() bool { _, last = running(ps[0], ""); return last == nil })
	slot := peerexec.JobSlot("web")
	var times []time.Duration
	for round := 0; round < 5; round++ {
		owner := -1
		for i, p := range ps {
			if ownerOfSlot(t, p, slot) {
				owner = i
			}
		}
		if owner < 0 {
			t.Fatalf("round %d: no owner of the job's slot", round)
		}
		via := ps[(owner+1)%len(ps)]
		// another peer answers for the job once gossip has brought it the
		// owner's API address (until then: 503 "not known yet")
		var before []string
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if before, err = running(via, ""); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: before the kill: %v", round, err)
			}
		}
		dead := selfID(t, ps[owner])
		at := time.Now()
		ps[owner].p.Kill9()
		var after []string
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			newOwner := false
			for i, p := range ps {
				if i != owner && ownerOfSlot(t, p, slot) {
					newOwner = true
				}
			}
			// supervised again: a live peer owns the slot and answers
			// with the job at count, none of it on the killed peer
			if ids, err := running(via, dead); err == nil && newOwner {
				after = ids
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the job not supervised again within 60s", round)
			}
		}
		took := time.Since(at)
		times = append(times, took)
		// restart the killed peer on its data directory: it re-attaches
		ps[owner].p = startProc(t, "peer:"+strconv.Itoa(ps[owner].port)+"#"+strconv.Itoa(round+1), args[owner]...)
		waitUntil(t, 60*time.Second, "the restarted peer answering", func() bool {
			var ms []peerexec.MemberInfo
			return getJSON("http://127.0.0.1:"+strconv.Itoa(ps[owner].http)+"/v1/peer/members", &ms) == nil
		})
		// the restarted peer re-attached its old copies, replaced while it
		// was down: once its report reaches the owner they are stopped as
		// extras, and every copy it runs is one the owner counts running
		// on it (no copy ever runs twice meanwhile)
		var final []string
		restarted, extras := time.Now(), -1
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			runs, counted, err := restartedSettled(t, via, ps[owner], dead)
			if extras < 0 && err == nil {
				extras = runs - counted // first seen: the re-attached extras
			}
			if errors.Is(err, errTwice) {
				t.Fatalf("round %d: after the restart: %v", round, err)
			}
			if err == nil && runs == counted {
				if final, err = running(via, ""); err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: after the restart: the restarted peer runs %d copies, the owner counts %d running on it; %v", round, runs, counted, err)
			}
		}
		t.Logf("round %d: supervised again %.2fs after the kill; copies kept %d of %d, after restart %d (%d extras re-attached, stopped within %.2fs)",
			round, took.Seconds(), overlap(before, after), count, overlap(after, final), extras, time.Since(restarted).Seconds())
	}
	slices.Sort(times)
	t.Logf("owner kill to supervised again: median %.2fs of %v", times[len(times)/2].Seconds(), times)
	if os.Getenv("GANTRY_LOG_REATTACH") != "" {
		for _, p := range ps {
			t.Log(p.p.Out.String())
		}
	}
}

// errTwice: two copies of one index run.
var errTwice = errors.New("a copy runs twice")

// restartedSettled returns the copies of web the restarted peer runs (its
// own count, re-attached copies included) and those the job's owner, asked
// through via, counts running on it; errTwice if the owner counts a copy
// twice.
func restartedSettled(t *testing.T, via, restarted *execPeer, id string) (runs, counted int, err error) {
	t.Helper()
	var ms []peerexec.MemberInfo
	if err := getJSON("http://127.0.0.1:"+strconv.Itoa(restarted.http)+"/v1/peer/members", &ms); err != nil {
		return 0, 0, err
	}
	runs = -1
	for _, m := range ms {
		if m.Self {
			runs = m.Tasks
		}
	}
	if runs < 0 {
		return 0, 0, errors.New("no self in the restarted peer's members")
	}
	st, _, err := via.api(t).JobStatus(context.Background(), "web", nil)
	if err != nil {
		return runs, 0, err
	}
	idx := map[int]bool{}
	for _, a := range st.Allocations {
		if a.DesiredStatus != structs.AllocDesiredRun || a.ClientStatus != structs.AllocClientRunning {
			continue
		}
		if idx[a.Index] {
			return runs, counted, fmt.Errorf("%w: web[%d]", errTwice, a.Index)
		}
		idx[a.Index] = true
		if a.NodeID == id {
			counted++
		}
	}
	return runs, counted, nil
}

// selfID returns a peer's node ID.
func selfID(t *testing.T, p *execPeer) string {
	t.Helper()
	var st peer.HTTPStatus
	if err := getJSON("http://127.0.0.1:"+strconv.Itoa(p.http)+"/v1/peer/status", &st); err != nil {
		t.Fatal(err)
	}
	for _, ps := range st.Peers {
		if ps.Self {
			return ps.ID
		}
	}
	t.Fatal("no self in the peer's status")
	return ""
}

func overlap(a, b []string) int {
	n := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			n++
		}
	}
	return n
}
