package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
)

// ArchitecturePeer is the decentralized architecture: a peer cluster with
// no server, each job owned and scheduled by its slot's primary.
const ArchitecturePeer = "peer"

// RunPeers runs the workload on an in-process peer cluster of primaries
// peers (no replicas; RESP stores in memory, memberlist on loopback, the
// mock driver): the workload's total capacity split evenly over the
// peers, every job submitted through the HTTP API of peer i mod n (so
// most are forwarded to their owner), as the workload's arrival says.
// Placed is when a copy's peer admitted it (the owner records it),
// running when the peer first reports it running. With o.MachineCPUs the
// peers are child processes in CPU cgroups instead (runPeerProcs).
func RunPeers(ctx context.Context, o Options, primaries int) (*Report, error) {
	w := o.Workload
	if primaries < 1 {
		return nil, errors.New("bench: primaries must be >= 1")
	}
	if o.MachineCPUs > 0 {
		return runPeerProcs(ctx, o, primaries)
	}
	rep := &Report{Workload: w.Name, StartedAt: time.Now(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Server: "inproc", Architecture: ArchitecturePeer, Workers: primaries,
		Nodes: primaries, Jobs: w.TotalJobs(), Tasks: w.TotalTasks()}
	rec := &peerRecorder{submitted: map[string]time.Time{}}
	var total structs.Resources
	for _, g := range w.Nodes {
		total = total.Add(structs.Resources{CPU: g.CPU * int64(g.Count), MemoryMB: g.MemoryMB * int64(g.Count)})
	}
	start := time.Now()
	cl, err := startBenchPeers(primaries, total, w, rec)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	rep.RegisterSeconds = time.Since(start).Seconds()
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "peer cluster of %d primaries up in %.1fs\n", primaries, rep.RegisterSeconds)
	}
	timeout := time.Duration(w.Timeout)
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var jobs []*structs.Job
	for _, g := range w.Jobs {
		for i := 0; i < g.Count; i++ {
			jobs = append(jobs, g.job(i))
		}
	}
	conc := max(w.Arrival.Concurrency, 1)
	stopProf, err := startPeerProfile(o.ProfileDir, primaries)
	if err != nil {
		return nil, err
	}
	defer stopProf()
	// what the cluster costs doing nothing (heartbeats, loads, reports,
	// ticks): CPU seconds per second, over peerIdleWindow before the
	// first submission
	idle0, _, err := selfUsage()
	if err != nil {
		return nil, err
	}
	idleStart := time.Now()
	time.Sleep(peerIdleWindow)
	cpu0, _, err := selfUsage()
	if err != nil {
		return nil, err
	}
	rep.IdleCPUPerSecond = (cpu0 - idle0) / time.Since(idleStart).Seconds()
	t0 := time.Now()
	var retries atomic.Int64
	subErr := submitPeerJobs(ctx, w, t0, conc, jobs, cl.clients, func(j *structs.Job) { rec.submit(j.ID) }, nil, &retries)
	rep.SubmitSeconds, rep.SubmitRetries = time.Since(t0).Seconds(), retries.Load()
	if subErr != nil {
		return nil, subErr
	}
	settle := time.Duration(w.Settle)
	if settle <= 0 {
		settle = 10 * time.Second
	}
	var runErr error
	if !waitPlaced(ctx, o.Progress, int64(rep.Tasks), settle, 50*time.Millisecond, func() (int64, error) { return rec.placedN.Load(), nil }) {
		runErr = ErrTimeout
	}
	if p := stopProf(); p != "" {
		rep.Profiles = append(rep.Profiles, p)
	}
	// every peer runs in this process: its CPU is the cluster's (and the
	// submitters'), from the first submission to the last placement
	if cpu1, rss, err := selfUsage(); err == nil {
		rep.ServerCPUSeconds, rep.ServerPeakRSSMB = cpu1-cpu0, float64(rss)/(1<<20)
		rep.CPUWindowSeconds = time.Since(t0).Seconds()
		rep.UsageScope = "whole process (every peer and the submitters)"
	}
	// what the cluster costs with the copies placed (reports of the
	// running tasks to their owners, loads): over peerIdleWindow again
	if busy0, _, err := selfUsage(); err == nil {
		at := time.Now()
		time.Sleep(peerIdleWindow)
		if busy1, _, err := selfUsage(); err == nil {
			rep.SteadyCPUPerSecond = (busy1 - busy0) / time.Since(at).Seconds()
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rep.Placed, rep.Running, rep.Received = rec.placedN.Load(), int64(len(rec.running)), rec.placedN.Load()
	rep.Unplaced = int64(rep.Tasks) - rep.Placed
	if rep.Placed > 0 {
		rep.TimeToPlaceAllSeconds = rec.lastPlaced.Sub(t0).Seconds()
		rep.PlacementsPerSecond = float64(rep.Placed) / rep.TimeToPlaceAllSeconds
	}
	rep.SubmitToPlaced = percentiles(rec.placed)
	rep.SubmitToRunning = percentiles(rec.running)
	rep.Check = CheckResult{OK: rep.Placed == int64(rep.Tasks) && !rec.overPlaced, Nodes: primaries, Allocs: int(rep.Placed)}
	rep.Scheduler.PlansSubmitted = uint64(rep.Placed)
	return rep, runErr
}

// peerIdleWindow is how long RunPeers measures the idle cluster's CPU.
const peerIdleWindow = 2 * time.Second

// startPeerProfile takes a CPU profile of the process (every peer) into
// dir/peer-N-cpu.pprof until the returned function is called; without a
// dir it does nothing.
func startPeerProfile(dir string, primaries int) (func() string, error) {
	if dir == "" {
		return func() string { return "" }, nil
	}
	path := filepath.Join(dir, fmt.Sprintf("peer-%d-cpu.pprof", primaries))
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() string {
		saved := ""
		once.Do(func() {
			pprof.StopCPUProfile()
			if f.Close() == nil {
				saved = path
			}
		})
		return saved
	}, nil
}

// peerRecorder collects, from the owners' hooks, when copies were placed
// and running, against their job's submission.
type peerRecorder struct {
	mu         sync.Mutex
	submitted  map[string]time.Time
	placed     []time.Duration
	running    []time.Duration
	lastPlaced time.Time
	placedN    atomic.Int64
	perJob     map[string]int
	counts     map[string]int
	overPlaced bool
}

func (r *peerRecorder) submit(job string) {
	r.mu.Lock()
	r.submitted[job] = time.Now()
	r.mu.Unlock()
}

func (r *peerRecorder) onPlaced(job string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.placed = append(r.placed, now.Sub(r.submitted[job]))
	r.lastPlaced = now
	r.placedN.Add(1)
	r.perJob[job]++
	if r.perJob[job] > r.counts[job] {
		r.overPlaced = true // a copy placed twice
	}
}

func (r *peerRecorder) onRunning(job string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = append(r.running, now.Sub(r.submitted[job]))
}

type benchPeers struct {
	peers   []*peer.Peer
	svcs    []*peerexec.Service
	https   []*http.Server
	clients []*api.Client
	done    []chan struct{}
	tr      *http.Transport
	dir     string // the peers' data directories, removed by close
}

func startBenchPeers(n int, total structs.Resources, w *Workload, rec *peerRecorder) (*benchPeers, error) {
	rec.perJob, rec.counts = map[string]int{}, map[string]int{}
	for _, g := range w.Jobs {
		for i := 0; i < g.Count; i++ {
			rec.counts[g.job(i).ID] = g.Tasks
		}
	}
	dir, err := os.MkdirTemp("", "gantry-bench-peers-")
	if err != nil {
		return nil, err
	}
	cl := &benchPeers{tr: &http.Transport{MaxIdleConnsPerHost: 64}, dir: dir}
	quiet := log.New(io.Discard, "", 0)
	for i := 0; i < n; i++ {
		cfg := peer.DefaultConfig()
		cfg.Port, cfg.Cluster = 0, true
		cfg.Store.EventLoops = 1
		cfg.Store.Logger, cfg.Logger = quiet, quiet
		p, err := peer.New(cfg)
		if err != nil {
			cl.close()
			return nil, err
		}
		done := make(chan struct{})
		go func() { _ = p.Serve(); close(done) }()
		cl.peers, cl.done = append(cl.peers, p), append(cl.done, done)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			cl.close()
			return nil, err
		}
		node := structs.Node{Capacity: structs.Resources{CPU: total.CPU / int64(n), MemoryMB: total.MemoryMB / int64(n)}, Labels: map[string]string{}}
		if len(w.Nodes) > 0 {
			for k, vs := range w.Nodes[0].Labels {
				node.Labels[k] = vs[i%len(vs)]
			}
		}
		ecfg := peerexec.DefaultConfig("")
		ecfg.OnPlaced, ecfg.OnRunning = rec.onPlaced, rec.onRunning
		svc, err := peerexec.Start(p, peerexec.ServiceConfig{Node: node, HTTPAddr: ln.Addr().String(),
			DataDir: filepath.Join(dir, strconv.Itoa(i)), // the tasks' directories and records
			Drivers: []driver.Driver{driver.NewMock(nil)}, Engine: &ecfg, Logger: quiet})
		if err != nil {
			ln.Close()
			cl.close()
			return nil, err
		}
		cl.svcs = append(cl.svcs, svc)
		hs := &http.Server{Handler: svc.Handler(p.HTTPHandler()), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		cl.https = append(cl.https, hs)
		c, err := api.NewClient(api.Config{Address: "http://" + ln.Addr().String(), HTTPClient: &http.Client{Transport: cl.tr}})
		if err != nil {
			cl.close()
			return nil, err
		}
		cl.clients = append(cl.clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, r := range peer.SplitEven(n) {
		rc := redis.NewClient(&redis.Options{Addr: cl.peers[i].Addr().String(), DisableIdentity: true})
		err := rc.Do(ctx, "cluster", "addslotsrange", r.Start, r.End).Err()
		if err == nil {
			err = rc.Do(ctx, "cluster", "set-config-epoch", i+1).Err()
		}
		rc.Close()
		if err != nil {
			cl.close()
			return nil, err
		}
	}
	bus := fmt.Sprintf("127.0.0.1:%d", cl.peers[0].Cluster().BusPort())
	for _, p := range cl.peers[1:] {
		if err := p.Cluster().Join([]string{bus}); err != nil {
			cl.close()
			return nil, err
		}
	}
	// ready: every peer sees the cluster ok and every other peer's load
	for {
		ready := true
		for _, svc := range cl.svcs {
			if !svc.Ready(n) {
				ready = false
			}
		}
		if ready {
			return cl, nil
		}
		if ctx.Err() != nil {
			cl.close()
			return nil, errors.New("bench: the peer cluster did not form within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (cl *benchPeers) close() {
	for _, hs := range cl.https {
		_ = hs.Close()
	}
	for _, s := range cl.svcs {
		_ = s.Close()
	}
	for i, p := range cl.peers {
		_ = p.Close()
		<-cl.done[i]
	}
	cl.tr.CloseIdleConnections()
	_ = os.RemoveAll(cl.dir)
}

// submitPeerJobs submits jobs as the workload's arrival says: conc
// submitters, job i no earlier than i/rate seconds after t0 when a rate is
// set, to clients[i mod n], onSubmit called just before and onAck (when
// set) once it is acknowledged. The first error is returned (the other
// submitters go on, as a cluster's clients would).
func submitPeerJobs(ctx context.Context, w *Workload, t0 time.Time, conc int, jobs []*structs.Job, clients []*api.Client, onSubmit, onAck func(*structs.Job), retries *atomic.Int64) error {
	var next atomic.Int64
	var subErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				if w.Arrival.Rate > 0 {
					at := t0.Add(time.Duration(float64(i) / w.Arrival.Rate * float64(time.Second)))
					time.Sleep(time.Until(at))
				}
				j := jobs[i]
				onSubmit(j)
				if err := submitPeerJob(ctx, clients[i%len(clients)], j, retries); err != nil {
					errOnce.Do(func() { subErr = fmt.Errorf("submit %s: %w", j.ID, err) })
					return
				}
				if onAck != nil {
					onAck(j)
				}
			}
		}()
	}
	wg.Wait()
	return subErr
}

// Submission retries: a peer answers 503 while it cannot take a job now
// (an owner not ready yet, a slot changing hands, or a peer busy at its
// limits: too many requests in progress or too many copies waiting to
// be placed) and 429 when it sheds load; the submitter retries, as a
// cluster's client would, backing off from submitRetryMin to
// submitRetryMax, until the run's context ends.
const (
	submitRetryMin = 50 * time.Millisecond
	submitRetryMax = 2 * time.Second
)

// submitPeerJob registers a job, retrying while the cluster answers 503
// or 429 (counted in retries).
func submitPeerJob(ctx context.Context, c *api.Client, j *structs.Job, retries *atomic.Int64) error {
	wait := submitRetryMin
	for {
		_, err := c.RegisterJob(ctx, j)
		var ae *api.APIError
		if err == nil || !errors.As(err, &ae) || (ae.StatusCode != http.StatusServiceUnavailable && ae.StatusCode != http.StatusTooManyRequests) {
			return err
		}
		retries.Add(1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, submitRetryMax)
	}
}
