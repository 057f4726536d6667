package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// Each peer offers room for five copies (100 CPU, 20 a copy), so the
// 18 service copies cannot all sit on the three replicas: every primary
// could run some, and the one running the most is cut off.
const (
	jobsPeerCPU  = 100
	jobsCopyCPU  = 20
	serviceCount = 6
	batchCount   = 2
)

// peerJobs is the test's handle on the job API of the six containers.
type peerJobs struct {
	t        *testing.T
	c        *peerCluster
	services []string // one owned by each primary
	batches  []string // likewise
	http     *http.Client
}

// client is the job API of container i (bounded: a cut-off peer does not
// answer at all).
func (j *peerJobs) client(i int) *api.Client {
	cl, err := api.NewClient(api.Config{Address: "http://" + j.c.clusterIPs[i] + ":7600", HTTPClient: j.http})
	if err != nil {
		j.t.Fatal(err)
	}
	return cl
}

// status is one job as its owner records it, asked through container via.
func (j *peerJobs) status(ctx context.Context, via int, name string) (*api.JobStatusResponse, error) {
	st, _, err := j.client(via).JobStatus(ctx, name, nil)
	if err != nil {
		return nil, fmt.Errorf("%s via %s: %w", name, j.c.names[via], err)
	}
	return st, nil
}

// atCount reports whether every service runs count copies, one per
// index, in its owner's records (asked through container via). Copies
// recorded on the node without are not counted (the cut-off peer, whose
// copies the majority cannot see); exact also wants no extra copy
// recorded running anywhere.
func (j *peerJobs) atCount(ctx context.Context, via int, without string, exact bool) (bool, string) {
	for _, name := range j.services {
		st, err := j.status(ctx, via, name)
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
			if a.DesiredStatus != structs.AllocDesiredRun || a.NodeID == without {
				continue
			}
			if idx[a.Index] {
				return false, fmt.Sprintf("%s[%d] runs twice", name, a.Index)
			}
			idx[a.Index] = true
		}
		if len(idx) != serviceCount {
			return false, fmt.Sprintf("%s: %d of %d indexes running (via %s)", name, len(idx), serviceCount, j.c.names[via])
		}
		if exact && running != serviceCount {
			return false, fmt.Sprintf("%s: %d copies recorded running, want exactly %d (via %s)", name, running, serviceCount, j.c.names[via])
		}
	}
	return true, ""
}

// runningOn counts the service copies each node runs, as the owners
// record them.
func (j *peerJobs) runningOn(ctx context.Context, via int) (map[string]int, error) {
	out := map[string]int{}
	for _, name := range j.services {
		st, err := j.status(ctx, via, name)
		if err != nil {
			return nil, err
		}
		for _, a := range st.Allocations {
			if a.ClientStatus == structs.AllocClientRunning {
				out[a.NodeID]++
			}
		}
	}
	return out, nil
}

// copiesOn returns the IDs of the service copies recorded running on
// node, by job.
func (j *peerJobs) copiesOn(ctx context.Context, via int, node string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range j.services {
		st, err := j.status(ctx, via, name)
		if err != nil {
			return nil, err
		}
		for _, a := range st.Allocations {
			if a.ClientStatus == structs.AllocClientRunning && a.NodeID == node {
				out[name] = append(out[name], a.ID)
			}
		}
	}
	return out, nil
}

// localTasks is the number of tasks container i runs now, by its own
// account (its own entry of /v1/peer/members is current, not a load):
// what runs there, whatever the owners believe.
func (j *peerJobs) localTasks(ctx context.Context, i int) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+j.c.clusterIPs[i]+":7600/v1/peer/members", nil)
	if err != nil {
		return 0, err
	}
	resp, err := j.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var ms []peerexec.MemberInfo
	if err := json.NewDecoder(resp.Body).Decode(&ms); err != nil {
		return 0, fmt.Errorf("members of %s: %w", j.c.names[i], err)
	}
	for _, m := range ms {
		if m.Self {
			return m.Tasks, nil
		}
	}
	return 0, fmt.Errorf("members of %s: no entry for itself", j.c.names[i])
}

// exactlyEverywhere reports whether, through every container, every
// service is recorded at exactly count, and each peer runs exactly the
// copies its owners record there: no extra copy runs anywhere (a copy the
// isolated side kept running would show on its peer).
func (j *peerJobs) exactlyEverywhere(ctx context.Context) (bool, string) {
	for via := range j.c.names {
		if ok, why := j.atCount(ctx, via, "", true); !ok {
			return false, why
		}
	}
	recorded, err := j.runningOn(ctx, 0)
	if err != nil {
		return false, err.Error()
	}
	total := 0
	for i, id := range j.c.ids {
		n, err := j.localTasks(ctx, i)
		if err != nil {
			return false, err.Error()
		}
		total += n
		if n != recorded[id] {
			return false, fmt.Sprintf("%s runs %d tasks, its owners record %d copies there", j.c.names[i], n, recorded[id])
		}
	}
	if want := len(j.services) * serviceCount; total != want {
		return false, fmt.Sprintf("%d tasks run on the peers, want exactly %d", total, want)
	}
	return true, ""
}

// batchDone returns the IDs of a batch job's allocations, once all are
// complete.
func (j *peerJobs) batchDone(ctx context.Context, via int, name string) ([]string, string) {
	st, err := j.status(ctx, via, name)
	if err != nil {
		return nil, err.Error()
	}
	var ids []string
	for _, a := range st.Allocations {
		if a.ClientStatus != structs.AllocClientComplete {
			return nil, fmt.Sprintf("%s: allocation %s is %s", name, a.ID, a.ClientStatus)
		}
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	if len(ids) < batchCount {
		return ids, fmt.Sprintf("%s: %d of %d copies complete", name, len(ids), batchCount)
	}
	return ids, ""
}

// jobNames returns, for each primary of lines, the first name
// prefix<k> whose job slot it owns: every primary owns one such job.
func jobNames(t *testing.T, lines []peer.NodeLine, prefix string) []string {
	t.Helper()
	byOwner := map[string]string{}
	for k := 0; k < 1000 && len(byOwner) < 3; k++ {
		name := fmt.Sprint(prefix, k)
		if o := ownerOfSlot(lines, peerexec.JobSlot(name)); o != "" && byOwner[o] == "" {
			byOwner[o] = name
		}
	}
	if len(byOwner) != 3 {
		t.Fatalf("no %s job name for each of the three primaries: %v", prefix, byOwner)
	}
	names := slices.Collect(func(yield func(string) bool) {
		for _, n := range byOwner {
			if !yield(n) {
				return
			}
		}
	})
	slices.Sort(names)
	return names
}

// TestPeerJobsPartition: six peer containers running jobs (3 primaries,
// 3 replicas), each primary owning a service and a batch job. The
// primary running the most service copies is cut off the cluster
// network. The majority promotes its replica, which supervises its jobs,
// and keeps every service at count (the cut-off peer's copies placed
// again once it is judged failed). After healing each service runs
// exactly count copies, in the owners' records and on the peers
// themselves (the copies the isolated side kept running are stopped), and
// the batch copies that completed before the cut are not run again.
func TestPeerJobsPartition(t *testing.T) {
	skipWithoutPeerTools(t, "peer jobs partition test")
	ctx := context.Background()
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	c := newPeerClusterArgs(t, 6, func(_ int, ip string) []string {
		return []string{"--run-tasks", "--drivers", "mock", "--http-addr", ip + ":7600",
			"--cpu", fmt.Sprint(jobsPeerCPU), "--memory-mb", "4096", "--leave-on-signal", "none"}
	})
	lines := c.create(ctx)
	j := &peerJobs{t: t, c: c, services: jobNames(t, lines, "svc"), batches: jobNames(t, lines, "batch"),
		http: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(j.http.CloseIdleConnections)
	t.Logf("%s: cluster formed; services %v, batch jobs %v", since(), j.services, j.batches)

	var jobs []*structs.Job
	for _, name := range j.batches {
		jobs = append(jobs, &structs.Job{Name: name, Type: structs.JobTypeBatch, Count: batchCount, Driver: "mock", Priority: 50,
			Config: map[string]any{"run_for": "200ms"}, Resources: structs.Resources{CPU: jobsCopyCPU, MemoryMB: 16}})
	}
	for _, name := range j.services {
		jobs = append(jobs, &structs.Job{Name: name, Type: structs.JobTypeService, Count: serviceCount, Driver: "mock", Priority: 50,
			Resources: structs.Resources{CPU: jobsCopyCPU, MemoryMB: 16}})
	}
	for i, job := range jobs {
		waitFor(t, 60*time.Second, "job "+job.Name+" submitted", func() (bool, string) {
			_, err := j.client(i%6).RegisterJob(ctx, job)
			return err == nil, fmt.Sprint(err)
		})
	}
	waitFor(t, 90*time.Second, "every service at exactly count", func() (bool, string) { return j.exactlyEverywhere(ctx) })
	batchBefore := map[string][]string{}
	for _, name := range j.batches {
		waitFor(t, 60*time.Second, "batch job "+name+" complete", func() (bool, string) {
			ids, why := j.batchDone(ctx, 0, name)
			batchBefore[name] = ids
			return why == "", why
		})
	}
	t.Logf("%s: services at count, batch jobs complete", since())

	// The victim: the primary running the most service copies; it owns
	// a service and a batch job too (jobNames).
	on, err := j.runningOn(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for _, l := range lines {
		if len(l.Slots) > 0 && (victim < 0 || on[l.ID] > on[c.ids[victim]]) {
			victim = c.index(l.ID)
		}
	}
	if victim < 0 || on[c.ids[victim]] == 0 {
		t.Fatalf("no primary runs a service copy (copies per node: %v)", on)
	}
	victimID := c.ids[victim]
	replica := c.replicaOf(lines, victimID)
	if replica < 0 {
		t.Fatalf("%s has no replica in %+v", c.names[victim], lines)
	}
	replicaID := c.ids[replica]
	var owned []string // the victim's jobs
	for _, job := range jobs {
		if ownerOfSlot(lines, peerexec.JobSlot(job.Name)) == victimID {
			owned = append(owned, job.Name)
		}
	}
	orphans, err := j.copiesOn(ctx, 0, victimID) // the copies the isolated side keeps running
	if err != nil {
		t.Fatal(err)
	}
	other := replica // a majority peer to ask
	if _, err := docker(ctx, "network", "disconnect", c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	t.Logf("%s: cut off %s (owner of %v, running %d service copies)", since(), c.names[victim], owned, on[victimID])

	// The majority: the victim's replica owns its jobs' slots everywhere
	// on that side, and every service runs at count without the victim,
	// whose copies are no longer recorded running there.
	waitFor(t, 90*time.Second, "the majority to promote "+c.names[replica]+" for "+strings.Join(owned, ", "), func() (bool, string) {
		for i := range c.names {
			if i == victim {
				continue
			}
			v, err := c.view(ctx, i)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", c.names[i], err)
			}
			for _, name := range owned {
				if o := ownerOfSlot(v, peerexec.JobSlot(name)); o != replicaID {
					return false, fmt.Sprintf("%s: %s's slot owned by %s", c.names[i], name, o)
				}
			}
		}
		return true, ""
	})
	majority := func() (bool, string) {
		if ok, why := j.atCount(ctx, other, victimID, false); !ok {
			return false, why
		}
		on, err := j.runningOn(ctx, other)
		if err != nil {
			return false, err.Error()
		}
		if on[victimID] != 0 {
			return false, fmt.Sprintf("%d copies still recorded running on the cut-off %s", on[victimID], c.names[victim])
		}
		return true, ""
	}
	waitFor(t, 90*time.Second, "the majority to run every service at count without the cut-off peer", majority)
	t.Logf("%s: majority at count %.1fs after the cut", since(), time.Since(cutAt).Seconds())
	time.Sleep(2 * time.Second)
	if ok, why := majority(); !ok {
		t.Fatalf("2 s later, the majority is no longer at count: %s", why)
	}

	reconnecting := time.Now()
	if _, err := docker(ctx, "network", "connect", "--ip", c.clusterIPs[victim], c.network, c.names[victim]); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	t.Logf("%s: reconnected %s", since(), c.names[victim])
	waitFor(t, 90*time.Second, "every node to agree, "+c.names[victim]+" a replica of "+c.names[replica], func() (bool, string) {
		return c.healed(ctx, peerexec.JobSlot(owned[0]), replicaID, victimID)
	})
	waitFor(t, 120*time.Second, "exactly count copies of every service after healing", func() (bool, string) {
		return j.exactlyEverywhere(ctx)
	})
	t.Logf("%s: exactly count, recorded and running, %.1fs after healing", since(), time.Since(healAt).Seconds())
	// The cut-off peer's copies ran on through the cut (the minority
	// stops nothing) and were stopped by their owners after healing.
	for name, ids := range orphans {
		st, err := j.status(ctx, other, name)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, a := range st.Allocations {
			if !slices.Contains(ids, a.ID) {
				continue
			}
			found++
			killed := slices.ContainsFunc(a.TaskState.Events, func(e structs.TaskEvent) bool {
				return e.Type == "Killed" && e.Time >= reconnecting.UnixNano()
			})
			if a.ClientStatus != structs.AllocClientComplete || a.DesiredStatus != structs.AllocDesiredStop || !killed {
				t.Errorf("%s: the cut-off peer's copy %s is %s (desired %s, %q), events %+v; want killed by its owner after the reconnection",
					name, a.ID, a.ClientStatus, a.DesiredStatus, a.DesiredDescription, a.TaskState.Events)
			}
		}
		if found != len(ids) {
			t.Errorf("%s: %d of the cut-off peer's %d copies recorded after healing", name, found, len(ids))
		}
	}
	for _, name := range j.batches {
		after, why := j.batchDone(ctx, victim, name)
		if why != "" || !slices.Equal(after, batchBefore[name]) {
			t.Errorf("%s: allocations after healing %v (%s), want the completed ones %v, none run again", name, after, why, batchBefore[name])
		}
	}
	time.Sleep(3 * time.Second)
	if ok, why := j.exactlyEverywhere(ctx); !ok {
		t.Errorf("3 s after settling: %s", why)
	}
}
