package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// peerPollInterval is how often a child-process peer run asks the owners
// how many copies they placed (each ask lists every owned job, a cost
// inside the peers' quotas, so not too often).
const peerPollInterval = 500 * time.Millisecond

// runPeerProcs is RunPeers with every peer a `gantry peer` child process
// (o.Exe) in a CPU cgroup of its own with o.MachineCPUs: equal machines
// emulated on one host. The cluster is formed as `gantry cluster create`
// forms one (slots split evenly, MEET over loopback); the submitters stay
// in this process, unlimited. Placements are observed through the peers'
// HTTP API only: the owners' job lists while the run goes, then every
// job's allocations once placement is over (their times, below).
func runPeerProcs(ctx context.Context, o Options, primaries int) (*Report, error) {
	w := o.Workload
	if o.Exe == "" {
		return nil, errors.New("bench: --machine-cpus needs the gantry binary")
	}
	if primaries < 3 {
		return nil, errors.New("bench: a peer cluster of child processes needs at least 3 primaries")
	}
	rep := &Report{Workload: w.Name, StartedAt: time.Now(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Server: ServerProcess, Architecture: ArchitecturePeer, Workers: primaries, MachineCPUs: o.MachineCPUs,
		Nodes: primaries, Jobs: w.TotalJobs(), Tasks: w.TotalTasks()}
	groups, err := openBenchGroups()
	if err != nil {
		return nil, err
	}
	var cl *peerProcs
	defer func() {
		if cl != nil {
			cl.stop()
		}
		if err := groups.close(); err != nil && o.Progress != nil {
			fmt.Fprintf(o.Progress, "removing the cgroups: %v\n", err)
		}
	}()
	start := time.Now()
	if cl, err = startPeerProcs(ctx, o, primaries, groups); err != nil {
		return nil, err
	}
	rep.RegisterSeconds = time.Since(start).Seconds()
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "peer cluster of %d primaries (child processes, %g CPU each) up in %.1fs\n", primaries, o.MachineCPUs, rep.RegisterSeconds)
	}
	timeout := time.Duration(w.Timeout)
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var jobs []*structs.Job
	counts := map[string]int{}
	for _, g := range w.Jobs {
		for i := 0; i < g.Count; i++ {
			j := g.job(i)
			jobs = append(jobs, j)
			counts[structs.JobKey(j.Namespace, j.Name)] = g.Tasks
		}
	}
	// the idle cluster's CPU, as RunPeers measures it
	idle0, err := cl.stat()
	if err != nil {
		return nil, err
	}
	idleStart := time.Now()
	time.Sleep(peerIdleWindow)
	cpu0, err := cl.stat()
	if err != nil {
		return nil, err
	}
	rep.IdleCPUPerSecond = usageSum(cpu0, idle0).Seconds() / time.Since(idleStart).Seconds()
	bench0, _, err := selfUsage()
	if err != nil {
		return nil, err
	}
	submitted := make(map[string]int64, len(jobs)) // job key -> submission, Unix ns
	var subMu sync.Mutex
	profiled := cl.profile(ctx, o, rep)
	t0 := time.Now()
	var retries atomic.Int64
	acked := make(map[string]int64, len(jobs)) // job key -> acknowledgement, Unix ns
	subErr := submitPeerJobs(ctx, w, t0, max(w.Arrival.Concurrency, 1), jobs, cl.clients, func(j *structs.Job) {
		subMu.Lock()
		submitted[structs.JobKey(j.Namespace, j.Name)] = time.Now().UnixNano()
		subMu.Unlock()
	}, func(j *structs.Job) {
		subMu.Lock()
		acked[structs.JobKey(j.Namespace, j.Name)] = time.Now().UnixNano()
		subMu.Unlock()
	}, &retries)
	rep.SubmitSeconds, rep.SubmitRetries = time.Since(t0).Seconds(), retries.Load()
	if subErr != nil {
		return nil, subErr
	}
	settle := time.Duration(w.Settle)
	if settle <= 0 {
		settle = 10 * time.Second
	}
	var runErr error
	if !waitPlaced(ctx, o.Progress, int64(rep.Tasks), settle, peerPollInterval, func() (int64, error) { return cl.placedCount(ctx) }) {
		runErr = ErrTimeout
		rep.TimedOut = true
	}
	// the peers' CPU, in their cgroups, from the first submission to the
	// placement seen complete; the submitters' is the bench's
	cpu1, err := cl.stat()
	if err != nil {
		return nil, err
	}
	window := time.Since(t0)
	rep.ServerCPUSeconds, rep.CPUWindowSeconds = usageSum(cpu1, cpu0).Seconds(), window.Seconds()
	rep.ServerCPUTotalSeconds = usageSum(cpu1, nil).Seconds()
	rep.UsageScope = fmt.Sprintf("the %d peer processes (their cgroups; the submitters not included)", primaries)
	rep.Machines = machineFigures(cl.machines, cpu0, cpu1, window)
	if b, _, err := selfUsage(); err == nil {
		rep.BenchCPUSeconds, rep.BenchCPUTotalSeconds = b-bench0, b
	}
	busy0 := cpu1
	at := time.Now()
	time.Sleep(peerIdleWindow)
	if busy1, err := cl.stat(); err == nil {
		rep.SteadyCPUPerSecond = usageSum(busy1, busy0).Seconds() / time.Since(at).Seconds()
	}
	rep.ServerPeakRSSMB = float64(cl.peakRSS()) / (1 << 20)
	<-profiled

	// what was placed, and when, from the owners' records
	checkCtx, cancelCheck := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelCheck()
	recs, err := cl.allocations(checkCtx)
	if err != nil {
		return nil, errors.Join(runErr, fmt.Errorf("reading the placements: %w", err))
	}
	allocs := recs.allocs
	fig := peerPlacementFigures(allocs, submitted, counts, t0)
	recs.acked = acked
	rep.PeerTimeline = peerTimeline(recs, cl.ids, cl.stats(checkCtx), submitted, t0)
	rep.Placed, rep.Running, rep.Received = fig.placed, fig.running, fig.records
	rep.Unplaced = int64(rep.Tasks) - rep.Placed
	if rep.Placed > 0 && fig.last > 0 {
		rep.TimeToPlaceAllSeconds = time.Duration(fig.last - t0.UnixNano()).Seconds()
		if rep.TimeToPlaceAllSeconds > 0 {
			rep.PlacementsPerSecond = float64(rep.Placed) / rep.TimeToPlaceAllSeconds
		}
	}
	rep.SubmitToPlaced, rep.SubmitToRunning = percentiles(fig.toPlaced), percentiles(fig.toRunning)
	rep.Check = CheckResult{OK: rep.Placed == int64(rep.Tasks) && len(fig.problems) == 0, Nodes: primaries, Allocs: int(fig.records),
		Missing: fig.missing, Duplicates: fig.twice, RanTwice: fig.ranTwice, Replaced: fig.replaced}
	rep.Check.Problems = fig.problems
	if len(rep.Check.Problems) > 10 {
		rep.Check.Problems = append(rep.Check.Problems[:10:10], fmt.Sprintf("... and %d more jobs", len(fig.problems)-10))
	}
	rep.Check.Problems = append(rep.Check.Problems, fig.examples...)
	rep.Scheduler.PlansSubmitted = uint64(rep.Placed)
	return rep, runErr
}

// peerFigures are the placements read back from the owners.
type peerFigures struct {
	placed, running, records int64
	toPlaced, toRunning      []time.Duration
	last                     int64 // the last copy's placement, Unix ns
	// missing: copies held by no allocation at the end; twice: by two or
	// more; ranTwice: of those, copies whose task ran to completion twice
	// (a batch copy run again); replaced: allocations that hold nothing
	// (stopped, killed, lost: a copy placed again, an extra stopped)
	missing, twice, ranTwice, replaced int
	problems                           []string // the jobs with such copies
	examples                           []string // the allocations of a few copies held twice
}

// maxHeldExamples bounds the copies held twice whose allocations the
// check's problems spell out.
const maxHeldExamples = 3

// copyHold says how an allocation holds its copy at the end of a run:
// live (wanted, pending or running), or ran (its task ran to completion
// on its own, whatever its record wants now: a copy that completed on a
// peer and was then marked stopped still ran), or neither (a replaced
// copy: stopped or killed by its owner, failed, lost).
func copyHold(a *structs.Allocation) (live, ran bool) {
	switch a.ClientStatus {
	case structs.AllocClientPending, structs.AllocClientRunning:
		return a.DesiredStatus == structs.AllocDesiredRun, false
	case structs.AllocClientComplete:
		for _, ev := range a.TaskState.Events {
			if ev.Type == "Killed" {
				return false, false // stopped by its owner
			}
		}
		return false, true
	}
	return false, false
}

// peerPlacementFigures times each copy of the workload (a job's index)
// against its job's submission (both wall clocks of this host), from the
// owners' records. A copy is placed when its first allocation was: when
// its peer admitted it (its task's "Received" event; while its peer has
// not reported it yet, the owner's record of the admission, ModifyTime
// of a pending allocation); running when its first task started
// (TaskState.StartedAt, the peer's clock). Replacements (of copies on a
// peer judged failed, or extras an owner stopped) are in records, not in
// placed. At the end each copy must be held exactly once: by one
// allocation wanted and pending or running, or (batch) by one whose task
// ran to completion. Two are a duplicate (two live copies, or a copy
// that completed twice); a replaced copy that was stopped is not.
func peerPlacementFigures(allocs []*structs.Allocation, submitted map[string]int64, counts map[string]int, t0 time.Time) peerFigures {
	type copyKey struct {
		job   string
		index int
	}
	placedAt, runningAt := map[copyKey]int64{}, map[copyKey]int64{}
	held, ran := map[copyKey]int{}, map[copyKey]int{}
	byCopy := map[copyKey][]*structs.Allocation{}
	var f peerFigures
	for _, a := range allocs {
		if _, ok := submitted[a.JobID]; !ok {
			continue // not this run's job
		}
		f.records++
		k := copyKey{a.JobID, a.Index}
		byCopy[k] = append(byCopy[k], a)
		at := a.CreateTime
		if a.ClientStatus == structs.AllocClientPending && a.ModifyTime > 0 {
			at = a.ModifyTime
		}
		for _, ev := range a.TaskState.Events {
			if ev.Type == "Received" {
				at = ev.Time
				break
			}
		}
		if cur, ok := placedAt[k]; !ok || at < cur {
			placedAt[k] = at
		}
		if st := a.TaskState.StartedAt; st > 0 {
			if cur, ok := runningAt[k]; !ok || st < cur {
				runningAt[k] = st
			}
		}
		switch live, done := copyHold(a); {
		case live:
			held[k]++
		case done:
			held[k]++
			ran[k]++
		default:
			f.replaced++
		}
	}
	for k, at := range placedAt {
		sub := submitted[k.job]
		f.placed++
		f.toPlaced = append(f.toPlaced, time.Duration(max(at-sub, 0)))
		f.last = max(f.last, at)
		if st, ok := runningAt[k]; ok {
			f.running++
			f.toRunning = append(f.toRunning, time.Duration(max(st-sub, 0)))
		}
	}
	jobs := make([]string, 0, len(counts))
	for j := range counts {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		missing, twice, ranTwice := 0, 0, 0
		for i := range counts[j] {
			k := copyKey{j, i}
			switch n := held[k]; {
			case n == 0:
				missing++
			case n > 1:
				twice++
				if ran[k] > 1 {
					ranTwice++
				}
				if len(f.examples) < maxHeldExamples {
					f.examples = append(f.examples, heldExample(structs.AllocName(j, i), byCopy[k]))
				}
			}
		}
		f.missing, f.twice, f.ranTwice = f.missing+missing, f.twice+twice, f.ranTwice+ranTwice
		if missing > 0 || twice > 0 {
			f.problems = append(f.problems, fmt.Sprintf("job %s: %d copies missing, %d held twice (%d of them ran to completion twice)", j, missing, twice, ranTwice))
		}
	}
	if f.last > 0 && f.last < t0.UnixNano() {
		f.last = t0.UnixNano()
	}
	return f
}

// heldExample spells out the allocations of a copy held twice: each
// one's ID, peer, statuses and task events, oldest first.
func heldExample(name string, allocs []*structs.Allocation) string {
	allocs = slices.Clone(allocs)
	slices.SortFunc(allocs, func(a, b *structs.Allocation) int { return cmp.Compare(a.CreateIndex, b.CreateIndex) })
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", name)
	for _, a := range allocs {
		fmt.Fprintf(&b, " [%s on %s: %s/%s", short(a.ID), short(a.NodeID), a.DesiredStatus, a.ClientStatus)
		if a.DesiredDescription != "" {
			fmt.Fprintf(&b, " (%s)", a.DesiredDescription)
		}
		if a.ClientDescription != "" {
			fmt.Fprintf(&b, " (%s)", a.ClientDescription)
		}
		for _, ev := range a.TaskState.Events {
			fmt.Fprintf(&b, " %s@%s", ev.Type, time.Unix(0, ev.Time).UTC().Format("15:04:05.000"))
		}
		fmt.Fprintf(&b, " created %s]", time.Unix(0, a.CreateTime).UTC().Format("15:04:05.000"))
	}
	return b.String()
}

func short(id string) string { return id[:min(len(id), 8)] }

// usageSum is the CPU the machines used between two snapshots (before nil:
// since they started).
func usageSum(after, before []cpuStat) time.Duration {
	var d time.Duration
	for i := range after {
		d += after[i].Usage
		if before != nil {
			d -= before[i].Usage
		}
	}
	return d
}

// peerProcs is a cluster of `gantry peer` child processes.
type peerProcs struct {
	cmds     []*exec.Cmd
	done     []chan struct{}
	machines []*machineGroup
	clients  []*api.Client
	https    []string // each peer's API base URL
	ids      []string // each peer's node ID (once the cluster is up)
	pprofs   []string // each peer's pprof address (with a profile dir)
	hc       *http.Client
	dir      string
	removeAt bool // remove dir when stopped
}

func startPeerProcs(ctx context.Context, o Options, n int, groups *machineGroups) (*peerProcs, error) {
	w := o.Workload
	var total structs.Resources
	for _, g := range w.Nodes {
		total = total.Add(structs.Resources{CPU: g.CPU * int64(g.Count), MemoryMB: g.MemoryMB * int64(g.Count)})
	}
	cl := &peerProcs{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}}
	var err error
	if o.DataDir != "" {
		cl.dir = filepath.Join(o.DataDir, fmt.Sprintf("peers-%d", n))
		err = os.MkdirAll(cl.dir, 0o755)
	} else {
		cl.dir, err = os.MkdirTemp("", "gantry-bench-peers-")
		cl.removeAt = true
	}
	if err != nil {
		return nil, err
	}
	// every peer's ports at once: free ports taken one peer at a time
	// could repeat a port an earlier peer has not bound yet
	per := 3 // RESP, cluster bus, HTTP; and pprof with a profile dir
	if o.ProfileDir != "" {
		per = 4
	}
	allPorts, err := freePorts(per * n)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for i := 0; i < n; i++ {
		ports := allPorts[per*i : per*i+per]
		tmp := filepath.Join(cl.dir, "peer-"+strconv.Itoa(i+1))
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			cl.stop()
			return nil, err
		}
		addr, httpAddr := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[2]
		args := []string{"peer", "--cluster", "--bind", "127.0.0.1", "--port", ports[0], "--cluster-port", ports[1],
			"--http-addr", httpAddr, "--run-tasks", "--drivers", "mock", "--leave-on-signal", "none",
			"--cpu", strconv.FormatInt(total.CPU/int64(n), 10), "--memory-mb", strconv.FormatInt(total.MemoryMB/int64(n), 10)}
		if len(w.Nodes) > 0 {
			for k, vs := range w.Nodes[0].Labels {
				args = append(args, "--label", k+"="+vs[i%len(vs)])
			}
		}
		if o.ProfileDir != "" {
			pp := "127.0.0.1:" + ports[3]
			args = append(args, "--pprof", pp)
			cl.pprofs = append(cl.pprofs, pp)
		}
		m, err := groups.add("peer-"+strconv.Itoa(i+1), o.MachineCPUs)
		if err != nil {
			cl.stop()
			return nil, err
		}
		logf, err := os.Create(tmp + ".log")
		if err != nil {
			cl.stop()
			return nil, err
		}
		cmd := exec.Command(o.Exe, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		// memory-only store (no --data-dir); the tasks' directories go
		// to a temporary directory, here under the run's
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			cl.stop()
			return nil, fmt.Errorf("starting %s peer: %w", o.Exe, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
		cl.cmds, cl.done, cl.machines = append(cl.cmds, cmd), append(cl.done, done), append(cl.machines, m)
		if err := m.addPID(cmd.Process.Pid); err != nil {
			cl.stop()
			return nil, err
		}
		c, err := api.NewClient(api.Config{Address: "http://" + httpAddr, HTTPClient: cl.hc})
		if err != nil {
			cl.stop()
			return nil, err
		}
		cl.clients, cl.https, addrs = append(cl.clients, c), append(cl.https, "http://"+httpAddr), append(addrs, addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for i, a := range addrs {
		if err := cl.waitPort(ctx, i, a); err != nil {
			cl.stop()
			return nil, err
		}
	}
	if err := peer.CreateWithReplicas(ctx, addrs, 0, 60*time.Second, io.Discard); err != nil {
		cl.stop()
		return nil, fmt.Errorf("bench: forming the peer cluster: %w", err)
	}
	// ready: every peer sees every other up with its API address
	for !cl.allUp(ctx, n) {
		if ctx.Err() != nil {
			cl.stop()
			return nil, fmt.Errorf("bench: the peer cluster did not form within 90s (with --data-dir the peers' logs stay in %s)", cl.dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// the owners' takeover grace after gaining their slots (at most
	// 750 ms) is not visible through the API: let it pass
	time.Sleep(time.Second)
	return cl, nil
}

// profile takes a CPU profile of every peer from now on, for
// o.ProfileSeconds, into o.ProfileDir/peer-I-of-N-cpu.pprof (with a
// profile dir); the channel closes when they are saved.
func (cl *peerProcs) profile(ctx context.Context, o Options, rep *Report) <-chan struct{} {
	done := make(chan struct{})
	if o.ProfileDir == "" || len(cl.pprofs) == 0 {
		close(done)
		return done
	}
	secs := o.ProfileSeconds
	if secs <= 0 {
		secs = 20
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, addr := range cl.pprofs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(o.ProfileDir, fmt.Sprintf("peer-%d-of-%d-cpu.pprof", i+1, len(cl.pprofs)))
			err := fetchProfile(ctx, addr, "profile?seconds="+strconv.Itoa(secs), path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Errors = append(rep.Errors, err.Error())
				return
			}
			rep.Profiles = append(rep.Profiles, path)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// waitPort waits until peer i accepts connections on addr.
func (cl *peerProcs) waitPort(ctx context.Context, i int, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-cl.done[i]:
			return fmt.Errorf("bench: peer %d exited at start (log: %s)", i+1, filepath.Join(cl.dir, fmt.Sprintf("peer-%d.log", i+1)))
		case <-ctx.Done():
			return fmt.Errorf("bench: peer %d not listening on %s: %w", i+1, addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allUp reports whether every peer lists n members up with their API
// (and notes each peer's node ID).
func (cl *peerProcs) allUp(ctx context.Context, n int) bool {
	ids := make([]string, len(cl.https))
	for i, base := range cl.https {
		var ms []peerexec.MemberInfo
		if err := cl.getJSON(ctx, base+"/v1/peer/members", &ms); err != nil {
			return false
		}
		up := 0
		for _, m := range ms {
			if m.State == peerexec.StateUp && m.HTTPAddr != "" {
				up++
			}
			if m.Self {
				ids[i] = m.ID
			}
		}
		if up < n {
			return false
		}
	}
	cl.ids = ids
	return true
}

// stats reads every peer's execution counters (nil for a peer that did
// not answer).
func (cl *peerProcs) stats(ctx context.Context) []*peerexec.Stats {
	out := make([]*peerexec.Stats, len(cl.https))
	for i, base := range cl.https {
		var ms []peerexec.MemberInfo
		if err := cl.getJSON(ctx, base+"/v1/peer/members", &ms); err != nil {
			continue
		}
		for _, m := range ms {
			if m.Self {
				out[i] = m.Exec
			}
		}
	}
	return out
}

// placedCount sums the copies every owner recorded for its own jobs.
func (cl *peerProcs) placedCount(ctx context.Context) (int64, error) {
	var n int64
	for _, base := range cl.https {
		var jobs []*api.JobListStub
		if err := cl.getJSON(ctx, base+"/v1/jobs?local=true", &jobs); err != nil {
			return -1, err
		}
		for _, j := range jobs {
			for _, c := range j.Summary {
				n += int64(c)
			}
		}
	}
	return n, nil
}

// allocations reads every job's allocations from its owner, with which
// peer owns each job and when it registered it.
func (cl *peerProcs) allocations(ctx context.Context) (peerRecords, error) {
	out := peerRecords{owner: map[string]int{}, registered: map[string]int64{}}
	for i, base := range cl.https {
		var jobs []*api.JobListStub
		if err := cl.getJSON(ctx, base+"/v1/jobs?local=true", &jobs); err != nil {
			return out, err
		}
		for _, j := range jobs {
			var as []*structs.Allocation
			if err := cl.getJSON(ctx, base+"/v1/job/"+url.PathEscape(j.ID)+"/allocations", &as); err != nil {
				return out, fmt.Errorf("job %s: %w", j.ID, err)
			}
			out.allocs = append(out.allocs, as...)
			out.owner[j.ID], out.registered[j.ID] = i, j.SubmitTime
		}
	}
	return out, nil
}

func (cl *peerProcs) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(body, v)
}

// stat snapshots every machine's cgroup.
func (cl *peerProcs) stat() ([]cpuStat, error) {
	out := make([]cpuStat, len(cl.machines))
	for i, m := range cl.machines {
		s, err := m.stat()
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// peakRSS sums the peers' peak resident sizes (VmHWM).
func (cl *peerProcs) peakRSS() int64 {
	var sum int64
	for _, c := range cl.cmds {
		if kb, err := procStatusKB(fmt.Sprintf("/proc/%d/status", c.Process.Pid), "VmHWM:"); err == nil {
			sum += kb * 1024
		}
	}
	return sum
}

// stop ends every peer (SIGTERM, then SIGKILL after 10 s) and waits.
func (cl *peerProcs) stop() {
	for _, c := range cl.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range cl.cmds {
		select {
		case <-cl.done[i]:
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			<-cl.done[i]
		}
	}
	cl.cmds, cl.done = nil, nil
	if t, ok := cl.hc.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if cl.removeAt {
		_ = os.RemoveAll(cl.dir)
	}
}

// waitPlaced polls placed every interval until it reaches total, stops
// growing for settle, or ctx ends (false: the run timed out), printing
// progress when progress is not nil. A failed read counts as no change.
func waitPlaced(ctx context.Context, progress io.Writer, total int64, settle, interval time.Duration, placed func() (int64, error)) bool {
	defer func() {
		if progress != nil {
			fmt.Fprintln(progress)
		}
	}()
	lastCount, lastChange := int64(-1), time.Now()
	for {
		n, err := placed()
		if err == nil && n >= total {
			return true
		}
		if err == nil && n != lastCount {
			lastCount, lastChange = n, time.Now()
		} else if time.Since(lastChange) > settle {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if progress != nil {
			fmt.Fprintf(progress, "\rplaced %d/%d", max(n, 0), total)
		}
		time.Sleep(interval)
	}
}
