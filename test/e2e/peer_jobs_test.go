package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

type execPeer struct {
	peerNode
	http int
}

func (n *execPeer) api(t *testing.T) *api.Client {
	c, err := api.NewClient(api.Config{Address: "http://127.0.0.1:" + strconv.Itoa(n.http)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPeerJobsKill: six gantry peer processes running work (3 primaries,
// 3 replicas) run 200 copies across jobs submitted to any of them; the
// owner of a job and a worker are killed with SIGKILL while more jobs
// are submitted: every acknowledged job reaches exactly its count.
func TestPeerJobsKill(t *testing.T) {
	ctx := context.Background()
	ps := make([]*execPeer, 6)
	var addrs []string
	for i := range ps {
		n := &execPeer{peerNode: peerNode{port: freePort(t), bus: freePort(t), dir: t.TempDir()}, http: freePort(t)}
		n.p = startProc(t, "peer:"+strconv.Itoa(n.port), "peer", "--cluster",
			"--port", strconv.Itoa(n.port), "--cluster-port", strconv.Itoa(n.bus), "--data-dir", n.dir, "--cpus", "1",
			"--http-addr", "127.0.0.1:"+strconv.Itoa(n.http), "--run-tasks", "--drivers", "mock", "--cpu", "20000", "--memory-mb", "20000", "--leave-on-signal", "none",
			// a loaded machine (the whole suite with -race) must not fail
			// peers over by mistake: the kills below are the failures
			"--cluster-node-timeout", "3s")
		ps[i] = n
		addrs = append(addrs, n.addr())
	}
	waitPing(t, addrs...) // listening before the cluster is created
	out, err := exec.Command(gantryBin, append([]string{"cluster", "create", "--replicas", "1"}, addrs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	submit := func(j *structs.Job, via int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := ps[via%len(ps)].api(t).RegisterJob(ctx, j)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("submit %s: %v", j.Name, err)
			}
			via++ // another peer, as a client with several addresses would
			time.Sleep(200 * time.Millisecond)
		}
	}
	acked := map[string]int{}
	killed := map[string]bool{} // node IDs of the killed peers
	mk := func(name string, count int) *structs.Job {
		acked[name] = count
		return &structs.Job{Name: name, Type: structs.JobTypeService, Count: count, Driver: "mock", Priority: 50,
			Resources: structs.Resources{CPU: 20, MemoryMB: 16}}
	}
	waitUntil(t, 30*time.Second, "every peer up with loads", func() bool {
		for _, p := range ps {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.http) + "/v1/peer/members")
			if err != nil {
				return false
			}
			resp.Body.Close()
		}
		return true
	})
	for i := 0; i < 10; i++ {
		submit(mk(fmt.Sprintf("svc%d", i), 20), i)
	}
	alive := func() []*execPeer {
		var out []*execPeer
		for _, p := range ps {
			if p.p != nil {
				out = append(out, p)
			}
		}
		return out
	}
	atCount := func() error {
		live := alive()
		for name, count := range acked {
			st, _, err := live[0].api(t).JobStatus(ctx, name, nil)
			if err != nil {
				return err
			}
			idx := map[int]bool{}
			for _, a := range st.Allocations {
				if a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus == structs.AllocClientRunning {
					if killed[a.NodeID] {
						return fmt.Errorf("%s[%d] still recorded running on killed peer %s", name, a.Index, a.NodeID)
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
	waitUntil(t, 60*time.Second, "200 copies running", func() bool { last = atCount(); return last == nil })

	// SIGKILL the owner of svc0 and a replica that runs copies. The replica
	// must serve another primary: killing a primary together with its only
	// replica leaves its slots with no owner, which the cluster does not
	// survive (as Redis Cluster).
	slot := peerexec.JobSlot("svc0")
	var owner, worker *execPeer
	for _, p := range ps[:3] {
		if ownerOfSlot(t, p, slot) {
			owner = p
		}
	}
	ids := map[*execPeer]string{}
	primaryOf := map[*execPeer]string{}
	tasks := map[*execPeer]int{}
	for _, p := range ps {
		var ms []peerexec.MemberInfo
		if err := getJSON("http://127.0.0.1:"+strconv.Itoa(p.http)+"/v1/peer/members", &ms); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Self {
				ids[p], tasks[p] = m.ID, m.Tasks
				if m.Role == "replica" {
					primaryOf[p] = m.Primary
				}
			}
		}
	}
	for _, p := range ps {
		if owner != nil && primaryOf[p] != "" && primaryOf[p] != ids[owner] && tasks[p] > 0 {
			worker = p
			break
		}
	}
	if owner == nil || worker == nil {
		t.Fatalf("owner %v worker %v", owner != nil, worker != nil)
	}
	killed[ids[owner]], killed[ids[worker]] = true, true
	killedAt := time.Now()
	owner.p.Kill9()
	owner.p = nil
	worker.p.Kill9()
	worker.p = nil
	for i := 10; i < 12; i++ {
		submit(mk(fmt.Sprintf("svc%d", i), 10), i)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if last = atCount(); last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("every acknowledged job at count after the kills: not within 90s: %v", last)
		}
	}
	t.Logf("all jobs at count %.1fs after the kills", time.Since(killedAt).Seconds())
	// not a wait for anything: a window in which nothing may change (no
	// late extra copy, none lost), checked once at its end
	time.Sleep(2 * time.Second)
	if err := atCount(); err != nil {
		t.Errorf("after settling: %v", err)
	}
}

func ownerOfSlot(t *testing.T, p *execPeer, slot uint16) bool {
	var st peer.HTTPStatus
	if err := getJSON("http://127.0.0.1:"+strconv.Itoa(p.http)+"/v1/peer/status", &st); err != nil {
		t.Fatal(err)
	}
	for _, ps := range st.Peers {
		if !ps.Self {
			continue
		}
		for _, r := range ps.Slots {
			if slot >= r[0] && slot <= r[1] {
				return true
			}
		}
	}
	return false
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
