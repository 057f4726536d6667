package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestPeerLeaveOnSignal: a peer running copies gets SIGTERM; it leaves
// the cluster (its copies move to others, its slots go to its replica)
// before it exits, and every job is at count on the others with none
// recorded on it. The time from the signal to the exit is logged as the
// drain time per 100 copies.
func TestPeerLeaveOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("six peer processes; not with -short")
	}
	ctx := context.Background()
	ps := make([]*execPeer, 6)
	var addrs []string
	for i := range ps {
		n := &execPeer{peerNode: peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}, http: freePort(t)}
		n.p = startProc(t, "peer:"+strconv.Itoa(n.port), "peer", "--cluster",
			"--port", strconv.Itoa(n.port), "--cluster-port", strconv.Itoa(n.bus), "--data-dir", n.dir, "--cpus", "1",
			"--http-addr", "127.0.0.1:"+strconv.Itoa(n.http), "--run-tasks", "--drivers", "mock", "--cpu", "20000", "--memory-mb", "20000",
			"--cluster-node-timeout", "3s", "--leave-timeout", "60s")
		ps[i] = n
		addrs = append(addrs, n.addr())
	}
	waitPing(t, addrs...) // listening before the cluster is created
	out, err := exec.Command(gantryBin, append([]string{"cluster", "create", "--replicas", "1"}, addrs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	members := func(p *execPeer) []peerexec.MemberInfo {
		var ms []peerexec.MemberInfo
		if err := getJSON("http://127.0.0.1:"+strconv.Itoa(p.http)+"/v1/peer/members", &ms); err != nil {
			return nil
		}
		return ms
	}
	waitUntil(t, 30*time.Second, "every peer up with loads", func() bool {
		for _, p := range ps {
			ms := members(p)
			up := 0
			for _, m := range ms {
				if m.State == peerexec.StateUp {
					up++
				}
			}
			if up < len(ps) {
				return false
			}
		}
		return true
	})
	counts := map[string]int{}
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("svc%d", i)
		counts[name] = 40
		j := &structs.Job{Name: name, Type: structs.JobTypeService, Count: 40, Driver: "mock", Priority: 50,
			Resources: structs.Resources{CPU: 20, MemoryMB: 16}}
		deadline := time.Now().Add(30 * time.Second)
		for via := i; ; via++ {
			if _, err := ps[via%len(ps)].api(t).RegisterJob(ctx, j); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("submit %s: %v", name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var gone string
	atCount := func(via *execPeer) error {
		for name, count := range counts {
			st, _, err := via.api(t).JobStatus(ctx, name, nil)
			if err != nil {
				return err
			}
			idx := map[int]bool{}
			for _, a := range st.Allocations {
				if a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientRunning {
					if a.NodeID == gone {
						return fmt.Errorf("%s[%d] recorded running on the peer that left", name, a.Index)
					}
					if idx[a.Index] {
						return fmt.Errorf("%s[%d] twice", name, a.Index)
					}
					idx[a.Index] = true
				}
			}
			if len(idx) != count {
				return fmt.Errorf("%s: %d of %d running", name, len(idx), count)
			}
		}
		return nil
	}
	var last error
	waitUntil(t, 60*time.Second, "200 copies running", func() bool { last = atCount(ps[0]); return last == nil })

	// the primary running the most copies leaves on SIGTERM
	var leaver *execPeer
	copies := 0
	for _, p := range ps {
		for _, m := range members(p) {
			if m.Self && m.Role == "primary" && m.Tasks > copies {
				leaver, copies, gone = p, m.Tasks, m.ID
			}
		}
	}
	if leaver == nil || copies == 0 {
		for _, p := range ps {
			for _, m := range members(p) {
				t.Logf("via %d: %s self=%v role=%s tasks=%d used=%v cap=%v state=%s", p.http, m.ID[:6], m.Self, m.Role, m.Tasks, m.Used, m.Capacity, m.State)
			}
		}
		t.Fatal("no primary runs copies")
	}
	var other *execPeer
	for _, p := range ps {
		if p != leaver {
			other = p
			break
		}
	}
	at := time.Now()
	if err := leaver.p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaver.p.Done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the peer did not exit within 90s of SIGTERM\n%s", leaver.p.Out.String())
	}
	drain := time.Since(at)
	if !strings.Contains(leaver.p.Out.String(), "left the cluster") {
		t.Fatalf("the peer exited without leaving:\n%s", leaver.p.Out.String())
	}
	t.Logf("leave on SIGTERM: %d copies moved, exited after %.1fs (%.1fs per 100 copies)",
		copies, drain.Seconds(), drain.Seconds()*100/float64(copies))
	waitUntil(t, 60*time.Second, "every job at count without the peer that left", func() bool {
		last = atCount(other)
		return last == nil
	})
	for _, m := range members(other) {
		if m.ID == gone {
			t.Errorf("the peer that left is still a member (%s)", m.State)
		}
	}
}
