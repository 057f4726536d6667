package peerexec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/peer"
	"github.com/gantry-project/gantry/internal/peerexec"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/testutil"
)

// testPeer is a real peer (RESP store, memberlist gossip on loopback)
// with the execution layer and its HTTP API.
type testPeer struct {
	p    *peer.Peer
	svc  *peerexec.Service
	hs   *http.Server
	http string
	done chan struct{}
	down bool
}

func startPeer(t *testing.T, i int, tl *taskLog) *testPeer {
	t.Helper()
	cfg := peer.DefaultConfig()
	cfg.Port = 0
	cfg.Cluster = true
	cfg.Store.DataDir = t.TempDir()
	cfg.Store.EventLoops = 1
	// generous: a shared machine under the race detector stalls peers for
	// longer than the default second, and flapping would hide what is tested
	cfg.NodeTimeout = 3 * time.Second
	cfg.Store.Logger = log.New(io.Discard, "", 0)
	cfg.Logger = log.New(io.Discard, "", 0)
	p, err := peer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPeer{p: p, done: make(chan struct{})}
	go func() {
		if err := p.Serve(); err != nil {
			t.Errorf("serve: %v", err)
		}
		close(tp.done)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp.http = ln.Addr().String()
	svc, err := peerexec.Start(p, peerexec.ServiceConfig{
		Node:     structs.Node{Capacity: structs.Resources{CPU: 2000, MemoryMB: 2048}, Labels: map[string]string{"n": fmt.Sprint(i)}},
		HTTPAddr: tp.http, DataDir: t.TempDir(), Drivers: []driver.Driver{tl.wrap(driver.NewMock(nil))},
		Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.svc = svc
	tp.hs = &http.Server{Handler: svc.Handler(p.HTTPHandler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = tp.hs.Serve(ln) }()
	return tp
}

func (tp *testPeer) stop() {
	if tp.down {
		return
	}
	tp.down = true
	_ = tp.hs.Close()
	_ = tp.svc.Close()
	_ = tp.p.Close()
	<-tp.done
}

// verifyNoLeaks waits (bounded) for goroutines to end: memberlist's
// probe timers outlive its Shutdown for a moment.
func verifyNoLeaks(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Error(err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCluster forms 3 primaries with a replica each; tl, when not nil,
// logs the tasks of all of them.
func startCluster(t *testing.T, tl *taskLog) []*testPeer {
	t.Helper()
	ctx := context.Background()
	ps := make([]*testPeer, 6)
	for i := range ps {
		ps[i] = startPeer(t, i, tl)
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.stop()
		}
	})
	for i, r := range peer.SplitEven(3) {
		cl := redis.NewClient(&redis.Options{Addr: ps[i].p.Addr().String(), DisableIdentity: true})
		if err := cl.Do(ctx, "cluster", "addslotsrange", r.Start, r.End).Err(); err != nil {
			t.Fatal(err)
		}
		if err := cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	bus := fmt.Sprintf("127.0.0.1:%d", ps[0].p.Cluster().BusPort())
	for i := 1; i < 6; i++ {
		// a loaded machine can miss a join's deadline: try again
		waitFor(t, "join", 20*time.Second, func() bool { return ps[i].p.Cluster().Join([]string{bus}) == nil })
	}
	for i := 3; i < 6; i++ {
		cl := redis.NewClient(&redis.Options{Addr: ps[i].p.Addr().String(), DisableIdentity: true})
		waitFor(t, "cluster replicate", 10*time.Second, func() bool {
			return cl.Do(ctx, "cluster", "replicate", string(ps[i-3].p.Cluster().ID())).Err() == nil
		})
		cl.Close()
	}
	waitFor(t, "cluster ok and loads everywhere", 60*time.Second, func() bool {
		for _, p := range ps {
			st, err := p.p.Cluster().Status()
			if err != nil || !st.OK {
				return false
			}
			ms := members(t, p)
			if len(ms) != 6 {
				return false
			}
			for _, m := range ms {
				if m.State != peerexec.StateUp || m.HTTPAddr == "" {
					return false
				}
			}
		}
		return true
	})
	return ps
}

func members(t *testing.T, p *testPeer) []peerexec.MemberInfo {
	t.Helper()
	var out []peerexec.MemberInfo
	resp, err := (&http.Client{Transport: httpTransport}).Get("http://" + p.http + "/v1/peer/members")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

var httpTransport = &http.Transport{}

func client(t *testing.T, p *testPeer) *api.Client {
	c, err := api.NewClient(api.Config{Address: "http://" + p.http, HTTPClient: &http.Client{Transport: httpTransport}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// taskLog counts, for every peer of a test at once, the tasks of each
// job that their drivers started and have not stopped: what runs, in one
// order (its mutex), whatever the peers report and whenever the test
// looks. While a floor is set, a stop that leaves a job with fewer tasks
// is recorded as an error.
type taskLog struct {
	mu      sync.Mutex
	running map[string]int
	floor   map[string]int
	errs    []string
}

func newTaskLog() *taskLog { return &taskLog{running: map[string]int{}} }

// wrap logs d's tasks; a nil log leaves d alone.
func (l *taskLog) wrap(d driver.Driver) driver.Driver {
	if l == nil {
		return d
	}
	return loggedDriver{Driver: d, log: l}
}

func (l *taskLog) count(job string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[job]
}

// watch sets the floors (nil: none) and returns the errors so far.
func (l *taskLog) watch(floor map[string]int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.floor = floor
	return slices.Clone(l.errs)
}

func (l *taskLog) started(job string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[job]++
}

func (l *taskLog) stopped(job, alloc string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[job]--
	if n, min := l.running[job], l.floor[job]; n < min {
		l.errs = append(l.errs, fmt.Sprintf("%s: stopping %s left %d copies running, want at least %d", job, alloc, n, min))
	}
}

// loggedDriver logs the start and the stop of its tasks. Only stops are
// logged as ends: the tests' service copies run until stopped.
type loggedDriver struct {
	driver.Driver
	log *taskLog
}

func (d loggedDriver) Start(cfg *driver.TaskConfig) (driver.Task, error) {
	task, err := d.Driver.Start(cfg)
	if err != nil {
		return nil, err
	}
	d.log.started(cfg.JobID)
	return &loggedTask{Task: task, log: d.log, job: cfg.JobID, alloc: cfg.AllocID}, nil
}

type loggedTask struct {
	driver.Task
	log        *taskLog
	job, alloc string
	once       sync.Once
}

func (t *loggedTask) Stop(grace time.Duration) error {
	err := t.Task.Stop(grace)
	t.once.Do(func() { t.log.stopped(t.job, t.alloc) })
	return err
}

// live counts the copies of each job running on the peers still up.
func live(ps []*testPeer) map[string]map[int]int {
	out := map[string]map[int]int{}
	for _, p := range ps {
		if p.down {
			continue
		}
		for _, a := range p.svc.LiveTasks() {
			if out[a.JobID] == nil {
				out[a.JobID] = map[int]int{}
			}
			out[a.JobID][a.Index]++
		}
	}
	return out
}

func exactly(got map[int]int, count int) bool {
	if len(got) != count {
		return false
	}
	for idx, n := range got {
		if idx >= count || n != 1 {
			return false
		}
	}
	return true
}

func job(name string, typ structs.JobType, count int) *structs.Job {
	j := &structs.Job{Name: name, Type: typ, Count: count, Driver: "mock", Priority: 50,
		Resources: structs.Resources{CPU: 50, MemoryMB: 32}}
	if typ == structs.JobTypeBatch {
		j.Config = map[string]any{"run_for": "300ms"}
	}
	return j
}

// TestPeerJobs: jobs submitted to any peer (a replica too) are owned by
// their slot's primary, placed on peers, run by the mock driver, and
// visible from every peer; an owner that stops is replaced by its replica,
// which supervises its jobs without losing or duplicating a copy.
func TestPeerJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six peers")
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { // runs after the peers' cleanup
		httpTransport.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		verifyNoLeaks(t, ignore)
	})
	ps := startCluster(t, nil)
	ctx := context.Background()
	c := client(t, ps[5]) // a replica: every job is forwarded to its owner
	jobs := []*structs.Job{job("web", structs.JobTypeService, 12), job("api", structs.JobTypeService, 7), job("etl", structs.JobTypeBatch, 5)}
	for _, j := range jobs {
		waitFor(t, "register "+j.Name, 30*time.Second, func() bool { _, err := c.RegisterJob(ctx, j); return err == nil })
	}
	waitFor(t, "copies running", 20*time.Second, func() bool {
		l := live(ps)
		return exactly(l["web"], 12) && exactly(l["api"], 7)
	})
	waitFor(t, "batch completed", 20*time.Second, func() bool {
		st, _, err := client(t, ps[1]).JobStatus(ctx, "etl", nil)
		return err == nil && st.Summary[structs.AllocClientComplete] == 5 && st.Job.Status == structs.JobStatusDead
	})
	list, _, err := client(t, ps[2]).ListJobs(ctx, nil)
	if err != nil || len(list) != 3 {
		t.Fatalf("job list from another peer: %v %v", list, err)
	}
	st, _, err := client(t, ps[4]).JobStatus(ctx, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := client(t, ps[3]).Allocation(ctx, st.Allocations[0].ID[:12], nil)
	if err != nil || a.JobID != "web" {
		t.Fatalf("allocation by prefix: %v %v", a, err)
	}
	waitFor(t, "scale", 30*time.Second, func() bool { _, err := c.ScaleJob(ctx, "api", 3); return err == nil })
	waitFor(t, "scaled down", 10*time.Second, func() bool { return exactly(live(ps)["api"], 3) })

	// stop the owner of web: its replica takes the slot and the job
	owner := peerexec.JobSlot("web")
	var victim *testPeer
	for _, p := range ps[:3] {
		if p.p.Cluster().SlotOwner(owner) == p.p.Cluster().ID() {
			victim = p
		}
	}
	if victim == nil {
		t.Fatal("no owner of web")
	}
	victim.stop()
	rest := []*testPeer{}
	for _, p := range ps {
		if !p.down {
			rest = append(rest, p)
		}
	}
	waitFor(t, "web supervised again at count", 90*time.Second, func() bool {
		st, _, err := client(t, rest[0]).JobStatus(ctx, "web", nil)
		if err != nil {
			return false
		}
		return st.Summary[structs.AllocClientRunning] == 12 && exactly(live(ps)["web"], 12)
	})
	// batch copies that completed are not run again by the new owner
	time.Sleep(2 * time.Second)
	if n := len(live(ps)["etl"]); n != 0 {
		t.Errorf("completed batch job runs %d copies again", n)
	}
	if !exactly(live(ps)["web"], 12) || !exactly(live(ps)["api"], 3) {
		t.Errorf("after failover: %v", live(ps))
	}
	var apiErr *api.APIError
	if _, _, err := c.JobStatus(ctx, "nope", nil); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Errorf("unknown job: %v", err)
	}
}

// TestPeerLeave: a primary leaves: its copies move first (the job never
// runs fewer than count copies), its slots go to its replica, the others
// forget it, and its jobs stay supervised.
func TestPeerLeave(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six peers")
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		httpTransport.CloseIdleConnections()
		verifyNoLeaks(t, ignore)
	})
	tl := newTaskLog()
	ps := startCluster(t, tl)
	ctx := context.Background()
	c := client(t, ps[0])
	counts := map[string]int{"a": 15, "b": 9}
	for _, j := range []*structs.Job{job("a", structs.JobTypeService, 15), job("b", structs.JobTypeService, 9)} {
		waitFor(t, "register "+j.Name, 30*time.Second, func() bool { _, err := c.RegisterJob(ctx, j); return err == nil })
	}
	// every copy started by its driver, running on its peer and known to
	// run by its owner before the leave (a copy still starting would
	// count as missing)
	waitFor(t, "copies running", 60*time.Second, func() bool {
		l := live(ps)
		for name, n := range counts {
			if !exactly(l[name], n) || tl.count(name) != n {
				return false
			}
			st, _, err := c.JobStatus(ctx, name, nil)
			if err != nil || st.Summary[structs.AllocClientRunning] != n {
				return false
			}
		}
		for _, p := range ps {
			for _, a := range p.svc.LiveTasks() {
				if a.ClientStatus != structs.AllocClientRunning {
					return false
				}
			}
		}
		return true
	})
	leaver := ps[1]
	if len(leaver.svc.LiveTasks()) == 0 {
		t.Fatal("the leaving peer runs nothing: nothing to test")
	}
	leftID := leaver.svc.ID()
	// never fewer than count copies running while copies move: every stop
	// of a task, on any peer, is checked as it happens
	tl.watch(counts)
	errc := make(chan error, 1)
	var out testutil.SyncBuffer
	leaveAt := time.Now()
	go func() { errc <- leaver.svc.Leave(ctx, &out) }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("leave: %v\n%s", err, out.String())
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("leave did not finish in 120 s:\n%s", out.String())
	}
	t.Logf("leave in %s:\n%s", time.Since(leaveAt).Round(time.Millisecond), out.String())
	for _, e := range tl.watch(nil) {
		t.Errorf("during the leave: %s", e)
	}
	<-leaver.svc.Left()
	if n := len(leaver.svc.LiveTasks()); n != 0 {
		t.Errorf("the peer left with %d tasks", n)
	}
	leaver.stop()
	waitFor(t, "jobs at count without the peer, which the others forgot", 60*time.Second, func() bool {
		l := live(ps)
		if !exactly(l["a"], 15) || !exactly(l["b"], 9) {
			return false
		}
		for _, m := range members(t, ps[0]) {
			if m.ID == leftID {
				return false
			}
		}
		st, _, err := client(t, ps[2]).JobStatus(ctx, "a", nil)
		return err == nil && st.Summary[structs.AllocClientRunning] == 15
	})
}
