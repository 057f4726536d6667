package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/tlsutil"
)

// Server modes.
const (
	ServerProcess   = "process" // a `gantry server` child process
	ServerInProcess = "inproc"  // in this process
)

// Options configure a run.
type Options struct {
	Workload *Workload
	// Server is ServerProcess (needs Exe) or ServerInProcess.
	Server string
	// Exe is the gantry binary started for ServerProcess.
	Exe string
	// DataDir holds the server's data and log; it must exist.
	DataDir string
	// RaftLogStore is the server's Raft log store (wal or boltdb; "" =
	// the server's default).
	RaftLogStore string
	// Progress receives a progress line while the run goes (nil = none).
	Progress io.Writer
	// ProfileDir, when set, receives bench-cpu.pprof (a CPU profile of
	// this process, the simulated nodes, during placement) and, with
	// ServerProcess, cpu.pprof (the server's over the same window) and
	// allocs.pprof.
	ProfileDir string
	// ProfileSeconds is the CPU profile's length (0 = 20s).
	ProfileSeconds int
	// Seed seeds the in-process scheduler and the nodes' jitter.
	Seed int64
	// Logger receives the in-process server's logs (nil = discard).
	Logger *slog.Logger
	// Scheduler is the server's architecture ("" = its default) and
	// Schedulers its number of shared-state workers (0 = default).
	Scheduler  string
	Schedulers int
	// NodesPerWatch is how many simulated nodes share a watch stream,
	// reporter and heartbeat loop (0 = DefaultNodesPerWatch).
	NodesPerWatch int
	// TLS runs the control plane with mutual TLS: a throwaway CA and a
	// server, an agent and a client certificate are made in
	// DataDir/tls; the simulated nodes present the agent certificate,
	// the submitters the client one (tls.go).
	TLS bool
	// MachineCPUs, when > 0, emulates machines of that many CPUs: each
	// child process standing for a machine (the server; with
	// ArchitecturePeer, each peer) runs in a CPU cgroup of its own with
	// that quota (cgroup.go). Needs ServerProcess and a writable cgroup.
	MachineCPUs float64
	// EventSubscribers follow the event stream (every topic) during
	// placement; the report's Events says what they received.
	EventSubscribers int
}

// benchGCPercent is the bench process's GOGC while a child server runs
// (unless GOGC is set): GC was a fifth of its CPU at the default 100.
const benchGCPercent = 400

// ErrTimeout means the workload did not finish within its timeout; the
// report still carries what was measured.
var ErrTimeout = errors.New("benchmark timed out")

// Run executes the workload and returns its report. The report is
// returned (with Check filled) even when err is ErrTimeout.
func Run(ctx context.Context, o Options) (*Report, error) {
	w := o.Workload
	if w == nil {
		return nil, errors.New("bench: no workload")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProfileSeconds <= 0 {
		o.ProfileSeconds = 20
	}
	raiseFileLimit()
	ctx, cancel := context.WithTimeout(ctx, w.Timeout.D())
	defer cancel()

	settings := serverSettings{dataDir: o.DataDir, heartbeatTTL: w.HeartbeatTTL.D(), sampleSize: w.SampleSize, seed: o.Seed,
		scheduler: o.Scheduler, schedulers: o.Schedulers, logStore: o.RaftLogStore}
	var certs *benchTLS
	if o.TLS {
		var err error
		if certs, err = newBenchTLS(filepath.Join(o.DataDir, "tls")); err != nil {
			return nil, err
		}
		settings.tls = certs.server
	}
	var cp controlPlane
	var exited <-chan error
	switch o.Server {
	case ServerInProcess, "":
		o.Server = ServerInProcess
		if o.MachineCPUs > 0 {
			return nil, errors.New("bench: --machine-cpus needs --server process (a machine is a child process)")
		}
		p, err := startInProcess(settings, o.Logger)
		if err != nil {
			return nil, err
		}
		cp = p
	case ServerProcess:
		if o.Exe == "" {
			return nil, errors.New("bench: server mode process needs the gantry binary")
		}
		if os.Getenv("GOGC") == "" {
			// The simulated nodes hold little but churn through frames
			// and reports: collect less often (the server, a child
			// process, keeps its own setting).
			defer debug.SetGCPercent(debug.SetGCPercent(benchGCPercent))
		}
		var groups *machineGroups
		var server *machineGroup
		if o.MachineCPUs > 0 {
			var err error
			if groups, server, err = openServerGroup(o.MachineCPUs); err != nil {
				return nil, err
			}
			defer func() {
				if err := groups.close(); err != nil {
					o.Logger.Warn("removing the cgroups", "error", err)
				}
			}()
		}
		c, err := startChild(o.Exe, settings, o.ProfileDir != "")
		if err != nil {
			return nil, err
		}
		if server != nil {
			// the server starts outside the group (a v1 cgroup cannot be
			// joined at exec); its start is not measured anyway
			if err := server.addPID(c.cmd.Process.Pid); err != nil {
				_ = c.Stop()
				return nil, err
			}
			c.machine = server
		}
		cp, exited = c, c.done
	default:
		return nil, fmt.Errorf("bench: server mode must be %q or %q (got %q)", ServerProcess, ServerInProcess, o.Server)
	}
	r := &runner{o: o, w: w, cp: cp, rep: newReport(w, o.Server), certs: certs}
	r.rep.TLS = o.TLS
	r.rep.MachineCPUs = o.MachineCPUs
	defer func() {
		if err := cp.Stop(); err != nil {
			o.Logger.Warn("stopping server", "error", err)
		}
	}()
	if err := r.setupClients(); err != nil {
		return nil, err
	}
	defer r.closeClients()
	if err := waitLeader(ctx, r.ctlHTTP, cp.Addr(), exited); err != nil {
		return nil, err
	}
	err := r.run(ctx)
	return r.rep, err
}

type runner struct {
	errMu sync.Mutex // guards rep.Errors and rep.SubmitErrors
	o     Options
	w     *Workload
	cp    controlPlane
	rep   *Report
	rec   *recorder

	pollHTTP, writeHTTP, ctlHTTP *http.Client
	poll, write, ctl             *api.Client
	certs                        *benchTLS // nil: no TLS
	nodes                        []*simNode
	groups                       []*simGroup
}

func (r *runner) setupClients() error {
	n := r.w.TotalNodes()
	// Every group's watch stream holds a connection.
	r.pollHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 16, IdleConnTimeout: time.Minute,
		TLSClientConfig: r.certs.forRole(tlsutil.RoleAgent)}}
	// Writes share a bounded pool: the server applies them through one
	// Raft log anyway, so more connections only add contention. They are
	// the nodes' registrations, heartbeats and reports: an agent's.
	r.writeHTTP = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute,
		TLSClientConfig: r.certs.forRole(tlsutil.RoleAgent)}}
	// Job submissions, status and the final check: a client's.
	r.ctlHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute,
		TLSClientConfig: r.certs.forRole(tlsutil.RoleClient)}}
	var err error
	mk := func(hc *http.Client) *api.Client {
		if err != nil {
			return nil
		}
		var c *api.Client
		c, err = api.NewClient(api.Config{Address: r.cp.Addr(), HTTPClient: hc})
		return c
	}
	r.poll, r.write, r.ctl = mk(r.pollHTTP), mk(r.writeHTTP), mk(r.ctlHTTP)
	return err
}

func (r *runner) closeClients() {
	for _, hc := range []*http.Client{r.pollHTTP, r.writeHTTP, r.ctlHTTP} {
		hc.CloseIdleConnections()
	}
}

func (r *runner) run(ctx context.Context) error {
	r.rec = newRecorder(time.Now, r.w)
	nodeCtx, stopNodes := context.WithCancel(context.Background())
	var nodesWG sync.WaitGroup
	defer func() {
		stopNodes()
		nodesWG.Wait()
	}()

	// 1. Register every node, then serve them.
	regStart := time.Now()
	if err := r.registerNodes(ctx, nodeCtx, &nodesWG); err != nil {
		return err
	}
	r.rep.RegisterSeconds = time.Since(regStart).Seconds()
	cpu0, _, _, err := r.cp.Usage()
	if err != nil {
		return err
	}
	benchCPU0, _, err := selfUsage()
	if err != nil {
		return err
	}
	busy0, _ := r.schedulerBusySeconds(ctx)
	mach0, mach0At := r.machineStat()
	writes0 := r.metricValues(ctx, writesWaitedSum, writesWaitedCount)

	// 2. Submit and watch placements.
	var events *eventFollowers
	if r.o.EventSubscribers > 0 {
		if events, err = startEventFollowers(ctx, r.cp.Addr(), r.o.EventSubscribers, r.certs); err != nil {
			return err
		}
		defer events.stop() // stops them too on an early return
	}
	start := time.Now()
	profDone := r.startProfile(ctx)
	submitDone := make(chan struct{})
	go func() {
		defer close(submitDone)
		r.submit(ctx, start)
		r.rep.SubmitSeconds = time.Since(start).Seconds()
	}()
	waitErr := r.waitPlaced(ctx, start, submitDone)
	<-submitDone
	end := time.Now()
	if last := r.rec.lastPlaced.Load(); last > 0 {
		end = time.Unix(0, last)
	}
	// A fresh deadline, so a timed-out run is still measured and checked.
	checkCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r.collect(checkCtx, start, end, cpu0, benchCPU0, busy0)
	if mach0 != nil {
		if mach1, at := r.machineStat(); mach1 != nil {
			r.rep.Machines = machineFigures([]*machineGroup{r.cp.(*childProcess).machine}, mach0, mach1, at.Sub(mach0At))
		}
	}
	if events != nil {
		ef := events.figures(r.o.EventSubscribers, end.Sub(start))
		r.rep.Events = &ef
	}
	if w := r.metricValues(checkCtx, writesWaitedSum, writesWaitedCount); w[writesWaitedCount] > writes0[writesWaitedCount] {
		r.rep.RaftWritesWaited = (w[writesWaitedSum] - writes0[writesWaitedSum]) / (w[writesWaitedCount] - writes0[writesWaitedCount])
	}
	<-profDone

	// 3. Check the final state. Stop the nodes first, so nothing they
	// receive after a node was read counts against the check (after a
	// timeout the server may still be placing).
	stopNodes()
	nodesWG.Wait()
	chk, err := r.checkFinalState(checkCtx)
	if err != nil {
		return errors.Join(waitErr, fmt.Errorf("final-state check: %w", err))
	}
	r.rep.Check = *chk
	for _, g := range r.groups {
		r.rep.NodeErrors += g.errorCount()
	}
	return waitErr
}

// machineStat reads the server machine's cgroup (nil without one).
func (r *runner) machineStat() ([]cpuStat, time.Time) {
	c, ok := r.cp.(*childProcess)
	if !ok || c.machine == nil {
		return nil, time.Time{}
	}
	st, err := c.machine.stat()
	if err != nil {
		r.addError(err)
		return nil, time.Time{}
	}
	return []cpuStat{st}, time.Now()
}

// openServerGroup makes the cgroups of a centralized run: one machine,
// the server.
func openServerGroup(cpus float64) (*machineGroups, *machineGroup, error) {
	g, err := openBenchGroups()
	if err != nil {
		return nil, nil, err
	}
	m, err := g.add("server", cpus)
	if err != nil {
		_ = g.close()
		return nil, nil, err
	}
	return g, m, nil
}

// openBenchGroups creates this bench's parent cgroup.
func openBenchGroups() (*machineGroups, error) {
	mounts, err := readMounts("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("--machine-cpus: reading the cgroup mounts: %w", err)
	}
	return openMachineGroups(mounts, fmt.Sprintf("gantry-bench-%d", os.Getpid()))
}

// registerNodes registers the nodes with a few concurrent workers (each
// registration is a Raft entry; Raft batches concurrent ones), then
// starts their groups (NodesPerWatch nodes each).
func (r *runner) registerNodes(ctx, nodeCtx context.Context, wg *sync.WaitGroup) error {
	for gi, g := range r.w.Nodes {
		for i := range g.Count {
			r.nodes = append(r.nodes, newSimNode(g.node(gi, i), r.write, r.rec, r.o.Logger))
		}
	}
	work := make(chan *simNode)
	errc := make(chan error, 1)
	var regWG sync.WaitGroup
	var done int64
	var mu sync.Mutex
	for range 32 {
		regWG.Add(1)
		go func() {
			defer regWG.Done()
			for n := range work {
				if err := n.register(ctx); err != nil {
					select {
					case errc <- fmt.Errorf("registering node %s: %w", n.node.Name, err):
					default:
					}
					continue
				}
				mu.Lock()
				done++
				r.progress("registering nodes", done, int64(len(r.nodes)), 0)
				mu.Unlock()
			}
		}()
	}
	for _, n := range r.nodes {
		work <- n
	}
	close(work)
	regWG.Wait()
	r.progressDone()
	select {
	case err := <-errc:
		return err
	default:
	}
	per := r.o.NodesPerWatch
	if per <= 0 {
		per = DefaultNodesPerWatch
	}
	for i := 0; i < len(r.nodes); i += per {
		seed := uint64(r.o.Seed)*1_000_003 + uint64(i)
		g := newSimGroup(r.nodes[i:min(i+per, len(r.nodes))], r.poll, r.write, r.w.HeartbeatTTL.D(), seed, r.o.Logger)
		r.groups = append(r.groups, g)
		wg.Add(1)
		go func() { defer wg.Done(); g.run(nodeCtx) }()
	}
	return nil
}

// submit registers the jobs: all at once with Concurrency submitters, or
// paced at Rate jobs/s. A group's jobs wait for its StartAfter.
func (r *runner) submit(ctx context.Context, start time.Time) {
	type item struct {
		job *structs.Job
		at  time.Time
	}
	work := make(chan item, 1024)
	var wg sync.WaitGroup
	for range r.w.Arrival.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if d := time.Until(it.at); d > 0 && !sleepCtx(ctx, d) {
					continue
				}
				if err := r.submitOne(ctx, it.job); err != nil {
					r.errMu.Lock()
					r.rep.SubmitErrors++
					r.errMu.Unlock()
					r.addError(err)
				}
			}
		}()
	}
	k := 0
	for _, g := range r.w.Jobs {
		for i := range g.Count {
			at := start.Add(g.StartAfter.D())
			if r.w.Arrival.Rate > 0 {
				at = at.Add(time.Duration(float64(k) / r.w.Arrival.Rate * float64(time.Second)))
			}
			k++
			select {
			case work <- item{job: g.job(i), at: at}:
			case <-ctx.Done():
			}
		}
	}
	close(work)
	wg.Wait()
}

// submitOne registers a job, retrying when the server is briefly unable to
// take it (no leader, connection trouble).
func (r *runner) submitOne(ctx context.Context, job *structs.Job) error {
	var err error
	for attempt := range 5 {
		r.rec.submitted(job.ID, time.Now())
		// Job submissions use the control client: a user submitting jobs
		// does not queue for a connection behind 10,000 agents' reports
		// (the shared write pool held c1m-like's submissions to ~1.5
		// jobs/s while the server registered 16 in 0.3 s).
		if _, err = r.ctl.RegisterJob(ctx, job); err == nil {
			return nil
		}
		var ae *api.APIError
		if ctx.Err() != nil || (errors.As(err, &ae) && ae.StatusCode/100 == 4) {
			break
		}
		if !sleepCtx(ctx, time.Duration(attempt+1)*100*time.Millisecond) {
			break
		}
	}
	return fmt.Errorf("submitting job %s: %w", job.ID, err)
}

// waitPlaced shows progress until every task is placed and reported
// running, or nothing has been placed for Settle after submission ended.
func (r *runner) waitPlaced(ctx context.Context, start time.Time, submitDone <-chan struct{}) error {
	total := int64(r.w.TotalTasks())
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	defer r.progressDone()
	submitted := false
	var lastCount int64
	var lastServer uint64
	lastChange := time.Now()
	for {
		select {
		case <-ctx.Done():
			r.rep.TimedOut = true
			return fmt.Errorf("%w after %s: %d of %d tasks placed", ErrTimeout, r.w.Timeout, r.rec.placed.Load(), total)
		case <-submitDone:
			submitted, submitDone = true, nil
			lastChange = time.Now()
		case <-tick.C:
		}
		placed, running := r.rec.placed.Load(), r.rec.running.Load()
		r.progress("placing", placed, total, time.Since(start))
		if placed >= total && running >= placed {
			return nil
		}
		if placed+running != lastCount {
			lastCount, lastChange = placed+running, time.Now()
		}
		if submitted && time.Since(lastChange) >= r.w.Settle.D() {
			// Quiet for Settle: done unless the server committed
			// placements or evictions meanwhile that nodes have not
			// seen yet. Evaluations alone do not count: the periodic
			// reconcile keeps evaluating a settled cluster.
			st, err := r.ctl.SchedulerStatus(ctx)
			if err == nil && st.Placements+st.Preemptions != lastServer {
				lastServer, lastChange = st.Placements+st.Preemptions, time.Now()
				continue
			}
			return nil // quiescent: the check reports what is missing
		}
	}
}

// startProfile takes a CPU profile of the server, and one of this process
// (bench-cpu.pprof: the simulated nodes), while placement runs.
func (r *runner) startProfile(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if r.o.ProfileDir == "" {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.profileSelf(ctx) }()
	go func() { defer wg.Done(); r.profileServer(ctx) }()
	go func() { wg.Wait(); close(done) }()
	return done
}

// profileSelf writes bench-cpu.pprof, a CPU profile of the bench process
// over the server profile's window (the whole process when the server
// runs in it).
func (r *runner) profileSelf(ctx context.Context) {
	path := filepath.Join(r.o.ProfileDir, "bench-cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		r.addError(err)
		return
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		r.addError(fmt.Errorf("bench CPU profile: %w", err))
		return
	}
	sleepCtx(ctx, time.Duration(r.o.ProfileSeconds)*time.Second)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		r.addError(err)
		return
	}
	r.errMu.Lock()
	r.rep.Profiles = append(r.rep.Profiles, path)
	r.errMu.Unlock()
}

// profileServer saves cpu.pprof, the server's CPU profile (server process
// only).
func (r *runner) profileServer(ctx context.Context) {
	addr := r.cp.PprofAddr()
	if addr == "" {
		return
	}
	path := filepath.Join(r.o.ProfileDir, "cpu.pprof")
	if err := fetchProfile(ctx, addr, "profile?seconds="+strconv.Itoa(r.o.ProfileSeconds), path); err != nil {
		r.addError(err)
		return
	}
	r.errMu.Lock()
	r.rep.Profiles = append(r.rep.Profiles, path)
	r.errMu.Unlock()
}

// collect fills the report's figures after placement.
func (r *runner) collect(ctx context.Context, start, end time.Time, cpu0, benchCPU0, busy0 float64) {
	rep := r.rep
	rep.Placed = r.rec.placed.Load()
	rep.Running = r.rec.running.Load()
	rep.Received = r.rec.received.Load()
	rep.Unplaced = int64(r.w.TotalTasks()) - rep.Placed
	rep.TimeToPlaceAllSeconds = end.Sub(start).Seconds()
	if rep.TimeToPlaceAllSeconds > 0 {
		rep.PlacementsPerSecond = float64(rep.Placed) / rep.TimeToPlaceAllSeconds
	}
	rep.SubmitToPlaced, rep.SubmitToRunning, rep.PlacedStages = r.rec.latencies()
	if cpu, rss, scope, err := r.cp.Usage(); err == nil {
		rep.ServerCPUSeconds = cpu - cpu0
		rep.ServerCPUTotalSeconds = cpu
		rep.ServerPeakRSSMB = float64(rss) / (1 << 20)
		rep.UsageScope = scope
	} else {
		r.addError(err)
	}
	if cpu, _, err := selfUsage(); err == nil {
		rep.BenchCPUSeconds = cpu - benchCPU0
		rep.BenchCPUTotalSeconds = cpu
	}
	if st, err := r.ctl.SchedulerStatus(ctx); err == nil {
		rep.Scheduler = SchedulerFigures{Evaluations: st.Evaluations, Placements: st.Placements, Preemptions: st.Preemptions,
			PlansSubmitted: st.PlansSubmitted, Conflicts: st.Conflicts, ConflictFraction: st.ConflictFraction,
			Retries: st.Retries, LatencyP50Ms: st.LatencyP50Ms, LatencyP99Ms: st.LatencyP99Ms,
			OffersSent: st.OffersSent, Declines: st.Declines, Rescinds: st.Rescinds + st.OffersExpired, OfferHoldP99Ms: st.OfferHoldP99Ms}
		rep.Architecture = st.Architecture
		for _, p := range st.Schedulers {
			rep.Workers += p.Workers
		}
	}
	if busy, err := r.schedulerBusySeconds(ctx); err == nil {
		wall := time.Since(start).Seconds()
		rep.Scheduler.BusySeconds = busy - busy0
		deciders := max(rep.Workers, 1)
		if rep.Architecture == "two-level" {
			deciders = 2 // the built-in service and batch frameworks
		}
		if wall > 0 {
			// Parallel deciders: the fraction of their combined time.
			rep.Scheduler.BusyFraction = min(rep.Scheduler.BusySeconds/wall/float64(deciders), 1)
		}
	}
	if r.o.ProfileDir != "" && r.cp.PprofAddr() != "" {
		path := filepath.Join(r.o.ProfileDir, "allocs.pprof")
		if err := fetchProfile(ctx, r.cp.PprofAddr(), "allocs", path); err == nil {
			r.errMu.Lock()
			rep.Profiles = append(rep.Profiles, path)
			r.errMu.Unlock()
		}
	}
}

// addError keeps the first few errors of a run for the report.
func (r *runner) addError(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.rep.Errors) < 10 {
		r.rep.Errors = append(r.rep.Errors, err.Error())
	}
}

// The server's count of log writes its Raft entries waited for.
const (
	writesWaitedSum   = "gantry_raft_log_writes_waited_sum"
	writesWaitedCount = "gantry_raft_log_writes_waited_count"
)

// metricValues reads unlabelled figures from the server's /metrics (those
// missing are left out).
func (r *runner) metricValues(ctx context.Context, names ...string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, "GET", r.cp.Addr()+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := r.ctlHTTP.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// schedulerBusySeconds reads the time the scheduler spent scheduling from
// /metrics: the sum of the monolithic loop's per-job latency histogram, or
// the shared-state workers' (two-level built-in frameworks') busy seconds
// summed over schedulers (frameworks).
func (r *runner) schedulerBusySeconds(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.cp.Addr()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.ctlHTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		v, ok := strings.CutPrefix(line, "gantry_scheduler_latency_seconds_sum ")
		if !ok && (strings.HasPrefix(line, "gantry_sharedstate_busy_seconds_total{") || strings.HasPrefix(line, "gantry_twolevel_busy_seconds_total{")) {
			v, ok = line[strings.LastIndexByte(line, ' ')+1:], true
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("scheduler busy time in /metrics: %w", err)
		}
		sum += f
		found = true
	}
	if !found {
		return 0, errors.New("no scheduler busy time (gantry_scheduler_latency_seconds_sum, gantry_sharedstate_busy_seconds_total, gantry_twolevel_busy_seconds_total) in /metrics")
	}
	return sum, nil
}

var (
	progressMu   sync.Mutex
	progressLast time.Time // guarded by progressMu
)

// progress draws a one-line progress bar (carriage return, no newline),
// at most every 200ms except for the final state.
func (r *runner) progress(what string, done, total int64, elapsed time.Duration) {
	if r.o.Progress == nil || total == 0 {
		return
	}
	progressMu.Lock()
	defer progressMu.Unlock()
	if done < total && time.Since(progressLast) < 200*time.Millisecond {
		return
	}
	progressLast = time.Now()
	const width = 30
	filled := int(done * width / total)
	filled = min(max(filled, 0), width)
	line := fmt.Sprintf("\r%-18s [%s%s] %d/%d (%.0f%%)", what, strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		done, total, 100*float64(done)/float64(total))
	if elapsed > 0 {
		line += fmt.Sprintf("  %.0f/s  %.1fs", float64(done)/elapsed.Seconds(), elapsed.Seconds())
	}
	fmt.Fprint(r.o.Progress, line+"   ")
}

func (r *runner) progressDone() {
	if r.o.Progress != nil {
		fmt.Fprintln(r.o.Progress)
	}
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// simulated node holds a connection for its blocking query.
func raiseFileLimit() {
	var l syscallRlimit
	if getRlimit(&l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = setRlimit(&l)
	}
}

// environment facts for the report
func hostFacts() (string, int) { return runtime.Version(), runtime.NumCPU() }
