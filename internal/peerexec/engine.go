// Package peerexec runs jobs on a peer cluster with no central server
// (issue 16, SPEC §4 "Decentralized execution").
//
// A job lives in the peers' data store under a key whose hash slot
// decides its owner: the primary of that slot supervises it, as an entity
// of Akka cluster sharding. The owner places the job's copies with the
// placement core (internal/scheduler) over a view of every peer's labels,
// capacity and usage that the peers send each other; the chosen peer
// admits or refuses with its own exact check, and the owner retries
// elsewhere on a refusal. Every peer runs the tasks it admitted through a
// Runner (the agents' drivers in production), reports them to their
// owners, and keeps them running while owners change. When a replica is
// promoted for a slot, it loads the slot's job and allocation records
// (replicated to it like any key) and learns from the peers' reports what
// runs, so nothing is lost or run twice.
//
// The Engine is the protocol, single-threaded and without clock or I/O of
// its own: time enters as the now of Tick and Step, the network as Send,
// the data store as Store and the tasks as Runner. Service (service.go)
// wires it to a real peer; sim_test.go drives several engines over a
// seeded network.
package peerexec

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/kv"
	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/structs"
)

const numSlots = 16384

// Member lifecycle states (Akka's), as peers announce them in their loads.
const (
	StateJoining = "joining"
	StateUp      = "up"
	StateLeaving = "leaving"
	StateExiting = "exiting"
	StateRemoved = "removed"
	StateDown    = "down"
)

// JobKey is the data-store key of a job's record; its hash tag is the
// job ID, so the job and its allocations share one slot.
func JobKey(jobID string) string { return "gantry/job/{" + jobID + "}" }

// AllocsKey is the hash holding a job's allocation records (field:
// allocation ID, value: JSON).
func AllocsKey(jobID string) string { return "gantry/allocs/{" + jobID + "}" }

// JobSlot is the hash slot of a job: the primary owning it is the job's
// owner.
func JobSlot(jobID string) uint16 { return kv.KeySlot([]byte(JobKey(jobID))) }

// ClusterView is the membership the engine acts on, read from the
// cluster layer before each input.
type ClusterView struct {
	// OK is cluster_state:ok: this peer reaches a majority of the
	// slot-owning primaries. An owner places and stops nothing otherwise.
	OK bool
	// Owner returns the primary owning a slot ("" unassigned).
	Owner func(slot uint16) string
	// Members are every known peer, this one included.
	Members []string
	// Failed are the peers the cluster agreed have failed (FAIL).
	Failed map[string]bool
	// Version changes whenever Owner's answers may have changed; 0 means
	// unknown (the engine then rescans the slots at every input).
	Version uint64
}

// Store keeps job and allocation records in the data store. The engine
// calls it only for jobs whose slot it owns.
type Store interface {
	PutJob(job *structs.Job) error
	// Sync waits until the writes so far are durable as documented (the
	// owner's log and, with replicas, one replica); it backs the
	// acknowledgement of submissions.
	Sync() error
	DeleteJob(jobID string) error
	PutAlloc(a *structs.Allocation) error
	// Load returns the jobs, and their allocations, for which owned(jobID)
	// is true.
	Load(owned func(jobID string) bool) ([]*structs.Job, []*structs.Allocation, error)
}

// Runner runs the tasks a peer admitted. Start must not block on the
// task; the runner reports what happens through Engine.TaskUpdate.
type Runner interface {
	Start(a *structs.Allocation) error
	Stop(allocID string)
}

// Config configures an engine.
type Config struct {
	// ID is the peer's node ID.
	ID string
	// Node describes the peer to owners: labels, attributes (driver.mock,
	// driver.exec), capacity. ID and Status are set by the engine.
	Node structs.Node
	// HTTPAddr is announced in loads (forwarding, logs).
	HTTPAddr string
	// Inc is this incarnation's identity; empty draws one from Seed.
	Inc  string
	Seed uint64

	LoadInterval   time.Duration // loads sent to every member
	ReportInterval time.Duration // reports to every owner (deltas over a stream)
	// FullReportInterval: over a stream, a report lists only the tasks
	// that changed since the last one, and the whole list goes at least
	// this often (and on every new stream or change of the owner's slots).
	FullReportInterval time.Duration
	// AdmitTimeout: an unanswered admit is sent again after this long,
	// then after twice as long each time, at most AdmitRetryMax apart,
	// for as long as its peer is not judged failed (an admit is given up
	// only then: a live peer may answer late, and may have started it).
	AdmitTimeout  time.Duration
	AdmitRetryMax time.Duration
	// TakeoverGrace is how long a new owner of a slot listens to reports
	// before it places or stops anything for the slot's jobs, unless every
	// live member sent it a full report for the slot before (then it acts
	// at once: it knows everything that runs there).
	TakeoverGrace time.Duration
	// MaxAdmitsInFlight bounds the copies this owner has admitted to one
	// peer and not had answered: the work it queues at a peer (a
	// saturated one answers late). Placements beyond it wait at the owner
	// for answers. 0: no bound.
	MaxAdmitsInFlight int
	// MaxWaiting bounds the copies of this owner's jobs waiting to be
	// placed: a submission (or scale-up) that would pass it is refused
	// with ErrBusy, to be retried. 0: no bound.
	MaxWaiting int
	// RefuseBackoff keeps a peer that refused a job out of its placements.
	RefuseBackoff time.Duration
	// ResyncInterval: every job is reconciled at least this often.
	ResyncInterval time.Duration
	// TerminalRetention and MaxTerminal bound the finished tasks a peer
	// keeps reporting (so an owner that lost their records learns them).
	TerminalRetention time.Duration
	MaxTerminal       int
	// OnPlaced and OnRunning, when set, see each copy of an owned job
	// admitted by its peer and first reported running (benchmarks).
	OnPlaced, OnRunning func(jobID string)
}

// DefaultConfig returns the timings used by gantry peer.
func DefaultConfig(id string) Config {
	return Config{
		ID: id, LoadInterval: 250 * time.Millisecond, ReportInterval: 250 * time.Millisecond,
		FullReportInterval: 5 * time.Second,
		AdmitTimeout:       time.Second, AdmitRetryMax: 5 * time.Second, TakeoverGrace: 750 * time.Millisecond,
		MaxAdmitsInFlight: 256, MaxWaiting: 50_000,
		RefuseBackoff: 5 * time.Second, ResyncInterval: time.Second,
		TerminalRetention: 10 * time.Minute, MaxTerminal: 2000,
	}
}

// Validate checks the settings.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("peerexec: no node ID")
	case c.LoadInterval <= 0 || c.ReportInterval <= 0 || c.AdmitTimeout <= 0 || c.ResyncInterval <= 0 || c.FullReportInterval <= 0:
		return errors.New("peerexec: intervals must be positive")
	case c.AdmitRetryMax < c.AdmitTimeout:
		return errors.New("peerexec: AdmitRetryMax must be at least AdmitTimeout")
	case c.MaxTerminal < 0 || c.TakeoverGrace < 0 || c.RefuseBackoff < 0 || c.TerminalRetention < 0 ||
		c.MaxAdmitsInFlight < 0 || c.MaxWaiting < 0:
		return errors.New("peerexec: negative limit")
	}
	return nil
}

// Errors of the owner's API.
var (
	ErrNotOwner    = errors.New("not the owner of the job's slot")
	ErrClusterDown = errors.New("cluster down: this peer does not reach a majority of primaries")
	ErrNotFound    = errors.New("not found")
	// ErrBusy: the peer has too much work waiting; the request may be
	// sent again later (HTTP 503 with Retry-After).
	ErrBusy = errors.New("peer busy")
)

// NotOwnerError says which peer owns a job (for forwarding).
type NotOwnerError struct{ Owner string }

func (e *NotOwnerError) Error() string { return fmt.Sprintf("%v: owner is %q", ErrNotOwner, e.Owner) }
func (e *NotOwnerError) Unwrap() error { return ErrNotOwner }

// Engine is one peer's execution protocol: the worker side (tasks it
// runs) and the owner side (jobs of the slots it owns). Not safe for
// concurrent use: one caller at a time (Service holds a mutex).
type Engine struct {
	cfg    Config
	inc    string
	send   func(to string, m *Message)
	store  Store
	runner Runner
	rng    *rand.Rand
	now    time.Time
	cv     ClusterView
	state  string

	// worker side
	tasks      map[string]*localTask
	seq        uint64 // admissions so far
	lastLoad   time.Time
	lastReport time.Time
	reportNow  bool
	taskVer    uint64                 // bumped at every change of a local task
	sentReport map[string]*reportMark // per owner: what the last report over its stream covered
	// kept as tasks change, so an admission, a load and a tick cost no
	// scan of every task
	liveUsed  structs.Resources // resources of the live tasks
	liveN     int               // live tasks
	finished  []*localTask      // terminal tasks, in the order they ended
	touched   []touch           // tasks changed since the last reports
	reportVer uint64            // the view version of the last reports
	// reportedVer is taskVer when the last reports went: every change
	// up to it was sent to the owners then
	reportedVer uint64
	ended       map[string]bool // tasks run here and forgotten (remember)
	endedQ      []endedID       // the same, in the order they were forgotten

	// what every peer told about itself
	loads map[string]*peerLoad
	// load deltas: peers with a stream up, and what was last sent to each
	linked   map[string]bool
	sentLoad map[string]*Load
	loadVer  uint64
	// linkGen numbers each peer's streams: bumped whenever one comes up
	// or goes down (an admit sent on a stream that lasts is not lost)
	linkGen map[string]uint64

	// selfNode's cached answer, and the lifecycle state it was made for
	node      *structs.Node
	nodeState string

	// owner side
	owned     []bool      // slots owned at the last tick
	graceTill []time.Time // per slot: end of its takeover grace
	takeovers []*takeover // slots gained whose grace may end early
	jobs      map[string]*ownedJob
	props     map[string]string // proposed allocation ID -> job ID
	inflight  map[string]int    // admits in flight (copies) per peer
	blocked   map[string]bool   // jobs with copies held back by a full window
	freed     bool              // a window got room since the last tick
	waiting   int               // copies of owned jobs waiting to be placed
	lastSync  time.Time
	index     uint64
	ownedVer  uint64                 // view version followOwnership last completed for
	ranges    map[string][][2]uint16 // slot ranges per owner, for rangesVer
	rangesVer uint64

	stats Stats
}

// Stats counts what an engine did since it started, for operators and
// benchmarks (GET /v1/peer/members shows them in the peer's own row):
// where placements wait, are refused or are sent again.
type Stats struct {
	// owner side
	Reconciles uint64 `json:"reconciles"`          // placement core runs
	Proposed   uint64 `json:"proposed"`            // copies sent in admits (first sends)
	Resent     uint64 `json:"resent"`              // copies sent again, unanswered
	Admitted   uint64 `json:"admitted"`            // answers admitting a copy
	RefusedFit uint64 `json:"refused_fit"`         // answers refusing a copy for room
	Refused    uint64 `json:"refused"`             // answers refusing a copy for another reason
	HeldBack   uint64 `json:"held_back"`           // placements held back by a full window
	Adopted    uint64 `json:"adopted"`             // copies learned from reports, not answers
	Lost       uint64 `json:"lost"`                // copies a full report no longer listed
	GivenUp    uint64 `json:"given_up"`            // admits dropped: their peer failed
	Registered uint64 `json:"registered"`          // jobs registered or scaled
	Busy       uint64 `json:"busy,omitempty"`      // requests refused busy (set by the service)
	Forwarded  uint64 `json:"forwarded,omitempty"` // requests forwarded to an owner (set by the service)
	// worker side
	AdmitsIn uint64 `json:"admits_in"` // copies asked of this peer
	Started  uint64 `json:"started"`   // copies started here
	Repeated uint64 `json:"repeated"`  // copies asked again after they started
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

type peerLoad struct {
	inc  string
	load Load
	seq  uint64 // the peer's admission counter when it sent the load
	at   time.Time
}

// reportMark is what the last report to an owner over its stream
// covered: a delta after it lists the tasks changed since (ver) for the
// same slots.
type reportMark struct {
	slots [][2]uint16
	ver   uint64
	full  time.Time // when the last full report went
}

// takeover is a set of slots gained at once: their grace ends early
// once every live member sent a full report covering all of them.
type takeover struct {
	slots []uint16
	till  time.Time
	heard map[string]bool
}

// touch is one change of a local task: ver is the task's version then.
type touch struct {
	t   *localTask
	ver uint64
}

type localTask struct {
	alloc       *structs.Allocation
	slot        uint16 // of its job
	seq         uint64
	ver         uint64 // taskVer of its last change
	status      string
	ts          structs.TaskState
	desiredStop bool
	doneAt      time.Time // when it became terminal
}

type ownedJob struct {
	job     *structs.Job
	allocs  map[string]*structs.Allocation
	admits  map[string]admission // how each allocation was admitted (memory only)
	props   map[string]*proposal
	refused map[string]time.Time // node -> until
	failure *structs.PlacementFailure
	retryAt time.Time
	dirty   bool
	slot    uint16
	waiting int // copies held back by full windows (or not reconciled yet)
}

type admission struct {
	inc string
	seq uint64
}

type proposal struct {
	alloc *structs.Allocation
	sent  time.Time
	tries int
	// link is the stream its last send went on (its peer's linkGen
	// then), 0 for the cluster bus
	link uint64
}

// New returns an engine; send delivers a message to a peer (best effort).
func New(cfg Config, send func(to string, m *Message), store Store, runner Runner) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	inc := cfg.Inc
	if inc == "" {
		inc = fmt.Sprintf("%016x", rng.Uint64())
	}
	e := &Engine{
		cfg: cfg, inc: inc, send: send, store: store, runner: runner, rng: rng, state: StateUp,
		tasks: map[string]*localTask{}, loads: map[string]*peerLoad{},
		owned: make([]bool, numSlots), graceTill: make([]time.Time, numSlots),
		jobs: map[string]*ownedJob{}, props: map[string]string{}, inflight: map[string]int{}, blocked: map[string]bool{},
		linked: map[string]bool{}, sentLoad: map[string]*Load{}, sentReport: map[string]*reportMark{},
		linkGen: map[string]uint64{},
	}
	return e, nil
}

// ID returns the peer's ID; Inc its incarnation.
func (e *Engine) ID() string  { return e.cfg.ID }
func (e *Engine) Inc() string { return e.inc }

// SetState sets the member lifecycle state announced in loads. A peer
// that is not up admits nothing; owners move its copies away (leaving).
func (e *Engine) SetState(s string) { e.state = s; e.lastLoad = time.Time{} }

// State returns the lifecycle state.
func (e *Engine) State() string { return e.state }

func (e *Engine) observe(now time.Time, cv ClusterView) {
	if now.After(e.now) {
		e.now = now
	}
	e.cv = cv
	if e.cv.Owner == nil {
		e.cv.Owner = func(uint16) string { return "" }
	}
}

func (e *Engine) failed(id string) bool { return e.cv.Failed[id] }

// Tick runs the periodic work: loads, reports, ownership changes,
// reconciliation and admit retries.
func (e *Engine) Tick(now time.Time, cv ClusterView) {
	e.observe(now, cv)
	e.workerTick()
	e.ownerTick()
}

// Step handles one message from a peer.
func (e *Engine) Step(now time.Time, cv ClusterView, m *Message) {
	e.observe(now, cv)
	switch m.Type {
	case MsgLoad:
		e.handleLoad(m)
	case MsgAdmit:
		e.handleAdmit(m)
	case MsgAdmitted:
		e.handleAdmitted(m)
	case MsgStop:
		e.handleStop(m)
	case MsgReport:
		e.handleReport(m.From, m.Inc, m.Report)
	}
}

// ---- worker side ----

// used sums the resources of the live local tasks (kept up to date by
// addTask and TaskUpdate).
func (e *Engine) used() (structs.Resources, int) { return e.liveUsed, e.liveN }

// addTask records a new live local task.
func (e *Engine) addTask(t *localTask) {
	t.slot = JobSlot(t.alloc.JobID)
	e.tasks[t.alloc.ID] = t
	e.liveUsed = e.liveUsed.Add(t.alloc.Resources)
	e.liveN++
	e.touch(t)
}

// selfNode describes this peer (read-only: shared by the loads and
// admissions until the lifecycle state changes, so a load round compares
// it with what a peer was last sent without encoding it).
func (e *Engine) selfNode() *structs.Node {
	if e.node != nil && e.nodeState == e.state {
		return e.node
	}
	n := e.cfg.Node.Copy()
	n.ID = e.cfg.ID
	if n.Name == "" {
		n.Name = e.cfg.ID
	}
	n.Status = structs.NodeStatusReady
	n.Drain = e.state == StateLeaving || e.state == StateExiting
	e.node, e.nodeState = n, e.state
	return n
}

func (e *Engine) load() *Load {
	used, n := e.used()
	return &Load{Node: e.selfNode(), Used: used, Tasks: n, HTTPAddr: e.cfg.HTTPAddr, State: e.state, Seq: e.seq, Wire: WireVersion}
}

// Linked tells the engine whether a stream to peer is up (Service's
// streams). Over a stream, loads are sent as deltas after a full one, and
// only when they changed; without one, in full every LoadInterval.
func (e *Engine) Linked(peer string, up bool) {
	e.linkGen[peer]++ // a stream that ends may have lost what was sent on it
	if up {
		e.linked[peer] = true
	} else {
		delete(e.linked, peer)
	}
	delete(e.sentLoad, peer)   // the next load to it is full
	delete(e.sentReport, peer) // and so is the next report
}

// handleLoad keeps a peer's newest load; a delta completes the full load
// of the same incarnation it follows.
func (e *Engine) handleLoad(m *Message) {
	l := *m.Load
	old := e.loads[m.From]
	if old != nil && old.inc == m.Inc && l.Version != 0 && l.Version < old.load.Version {
		return // an older load that came late
	}
	if l.Delta {
		if old == nil || old.inc != m.Inc || old.load.Node == nil {
			return // no full load to complete: one follows on the new stream
		}
		l.Node, l.HTTPAddr, l.Delta = old.load.Node, old.load.HTTPAddr, false
	}
	e.loads[m.From] = &peerLoad{inc: m.Inc, load: l, seq: l.Seq, at: e.now}
}

// sameLoad compares what a delta carries; sameNode what it leaves out.
func sameLoad(a, b *Load) bool {
	return a.Used == b.Used && a.Tasks == b.Tasks && a.State == b.State && a.Seq == b.Seq
}

func sameNode(a, b *Load) bool {
	if a.HTTPAddr != b.HTTPAddr || (a.Node == nil) != (b.Node == nil) {
		return false
	}
	if a.Node == b.Node {
		return true // the same (shared, unchanged) node
	}
	x, _ := json.Marshal(a.Node)
	y, _ := json.Marshal(b.Node)
	return string(x) == string(y)
}

// sendLoads sends this peer's load to every member: one message for
// the round, shared by every member that gets it in full and one for
// those that get a delta (the service encodes a message once, whatever
// the number of receivers). Version numbers the rounds.
func (e *Engine) sendLoads() {
	l := e.load()
	e.loads[e.cfg.ID] = &peerLoad{inc: e.inc, load: *l, seq: e.seq, at: e.now}
	e.loadVer++
	var full, delta *Message
	for _, id := range e.cv.Members {
		if id == e.cfg.ID {
			continue
		}
		isDelta := false
		if e.linked[id] {
			last := e.sentLoad[id]
			switch {
			case last == nil || !sameNode(last, l):
			case sameLoad(last, l):
				continue // nothing changed
			default:
				isDelta = true
			}
			e.sentLoad[id] = l
		}
		if isDelta {
			if delta == nil {
				d := *l
				d.Node, d.HTTPAddr, d.Delta, d.Version = nil, "", true, e.loadVer
				delta = &Message{Type: MsgLoad, From: e.cfg.ID, Inc: e.inc, Load: &d}
			}
			e.send(id, delta)
			continue
		}
		if full == nil {
			v := *l
			v.Version = e.loadVer
			full = &Message{Type: MsgLoad, From: e.cfg.ID, Inc: e.inc, Load: &v}
		}
		e.send(id, full)
	}
}

func (e *Engine) workerTick() {
	if e.now.Sub(e.lastLoad) >= e.cfg.LoadInterval {
		e.lastLoad = e.now
		e.sendLoads()
	}
	e.expireTerminal()
	if e.cv.Version != 0 && e.cv.Version != e.reportVer {
		e.reportNow = true // slots changed hands: tell the new owners at once
	}
	if e.reportNow || e.now.Sub(e.lastReport) >= e.cfg.ReportInterval {
		e.reportNow = false
		e.lastReport = e.now
		e.sendReports()
	}
}

// expireTerminal forgets finished tasks past their retention, oldest
// first beyond MaxTerminal (finished is in the order they ended: doneAt
// never goes back), but never one whose last change no report has
// carried yet: its owner must learn how it ended (a batch copy it never
// heard complete would be placed again once a full report no longer
// lists it). A forgotten task's ID is kept a while longer (ended), so a
// repeated admit of it that comes late does not start it again.
func (e *Engine) expireTerminal() {
	n := 0
	for _, t := range e.finished {
		if len(e.finished)-n <= e.cfg.MaxTerminal && e.now.Sub(t.doneAt) <= e.cfg.TerminalRetention {
			break
		}
		if t.ver > e.reportedVer {
			break // not reported yet: the next report round carries it
		}
		delete(e.tasks, t.alloc.ID)
		e.remember(t.alloc.ID)
		n++
	}
	if n > 0 {
		clear(e.finished[:n])
		e.finished = e.finished[n:]
	}
	e.expireEnded()
}

// maxEnded bounds the IDs of forgotten tasks a peer keeps (about 100
// bytes each).
const maxEnded = 100_000

// endedID is the ID of a task this peer ran and forgot, and when.
type endedID struct {
	id string
	at time.Time
}

// remember keeps the ID of a forgotten task, so that a repeated admit
// of it is answered without running it again.
func (e *Engine) remember(id string) {
	if e.ended == nil {
		e.ended = map[string]bool{}
	}
	e.ended[id] = true
	e.endedQ = append(e.endedQ, endedID{id, e.now})
}

// expireEnded forgets the IDs of forgotten tasks past TerminalRetention,
// oldest first beyond maxEnded.
func (e *Engine) expireEnded() {
	n := 0
	for _, x := range e.endedQ {
		if len(e.endedQ)-n <= maxEnded && e.now.Sub(x.at) <= e.cfg.TerminalRetention {
			break
		}
		delete(e.ended, x.id)
		n++
	}
	if n > 0 {
		clear(e.endedQ[:n])
		e.endedQ = e.endedQ[n:]
	}
}

// sendReports sends every slot owner the list of this peer's tasks for
// the slots it owns in this peer's view: the full list (an empty list
// too: that is how an owner learns a restarted peer lost its tasks), or,
// over a stream (ordered and reliable while it lasts) after a full one
// for the same slots, only the tasks changed since the last report, and
// nothing when none did. A full list still goes every FullReportInterval.
// This peer's report to itself follows the same rule (nothing is lost on
// the way). When every owner gets a delta, only the tasks changed since
// the last round are looked at, not every task.
func (e *Engine) sendReports() {
	ranges := e.ownerRanges()
	e.reportVer = e.cv.Version
	marks := map[string]*reportMark{}
	all := false // some owner gets the full list
	for o := range ranges {
		if e.failed(o) {
			delete(e.sentReport, o) // the next report to it, if it returns, is full
			continue
		}
		if m := e.sentReport[o]; m != nil && (e.linked[o] || o == e.cfg.ID) &&
			e.now.Sub(m.full) < e.cfg.FullReportInterval && slices.Equal(m.slots, ranges[o]) {
			marks[o] = m
		} else {
			all = true
		}
	}
	byOwner := map[string][]TaskReport{}
	add := func(t *localTask) {
		o := e.cv.Owner(t.slot)
		if o == "" {
			return
		}
		if m := marks[o]; m != nil && t.ver <= m.ver {
			return // unchanged since the last report to o
		}
		byOwner[o] = append(byOwner[o], e.taskReport(t))
	}
	if all {
		for _, t := range e.tasks {
			add(t)
		}
	} else {
		for _, c := range e.touched {
			if c.ver == c.t.ver && e.tasks[c.t.alloc.ID] == c.t { // its last change, still kept
				add(c.t)
			}
		}
	}
	for _, o := range slices.Sorted(mapKeys(ranges)) {
		if e.failed(o) {
			continue
		}
		tasks := byOwner[o]
		slices.SortFunc(tasks, func(a, b TaskReport) int { return cmp.Compare(a.AllocID, b.AllocID) })
		r := &Report{Seq: e.seq, Slots: ranges[o], Tasks: tasks}
		if m := marks[o]; m != nil {
			m.ver = e.taskVer // every change for o up to now is in this delta
			if len(tasks) == 0 {
				continue
			}
			r.Delta = true
		} else if e.linked[o] || o == e.cfg.ID {
			e.sentReport[o] = &reportMark{slots: ranges[o], ver: e.taskVer, full: e.now}
		} else {
			delete(e.sentReport, o)
		}
		if o == e.cfg.ID {
			e.handleReport(e.cfg.ID, e.inc, r)
			continue
		}
		e.send(o, &Message{Type: MsgReport, From: e.cfg.ID, Inc: e.inc, Report: r})
	}
	for o := range e.sentReport {
		if _, ok := ranges[o]; !ok {
			delete(e.sentReport, o) // no longer an owner
		}
	}
	clear(e.touched)
	e.touched = e.touched[:0]
	e.reportedVer = e.taskVer
}

// touch marks a local task changed (it goes in the next delta).
func (e *Engine) touch(t *localTask) {
	e.taskVer++
	t.ver = e.taskVer
	e.touched = append(e.touched, touch{t, t.ver})
}

// ownerRanges returns the slot ranges of every owner in the view.
func (e *Engine) ownerRanges() map[string][][2]uint16 {
	if e.ranges != nil && e.cv.Version != 0 && e.cv.Version == e.rangesVer {
		return e.ranges
	}
	ranges := map[string][][2]uint16{}
	last, start := "", 0
	flush := func(end int) {
		if last != "" {
			ranges[last] = append(ranges[last], [2]uint16{uint16(start), uint16(end)})
		}
	}
	for s := 0; s < numSlots; s++ {
		o := e.cv.Owner(uint16(s))
		if o != last {
			flush(s - 1)
			last, start = o, s
		}
	}
	flush(numSlots - 1)
	e.ranges, e.rangesVer = ranges, e.cv.Version
	return ranges
}

func mapKeys[K cmp.Ordered, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (e *Engine) taskReport(t *localTask) TaskReport {
	a := t.alloc
	return TaskReport{
		AllocID: a.ID, JobID: a.JobID, JobVersion: a.JobVersion, Name: a.Name, Index: a.Index,
		Resources: a.Resources, Priority: a.Priority, ClientStatus: t.status, DesiredStop: t.desiredStop,
		TaskState: t.ts, CreateTime: a.CreateTime, CreateIndex: a.CreateIndex,
		RescheduleCount: a.RescheduleCount, Previous: a.PreviousAllocation,
	}
}

// admitCheck is the peer's exact local check of an allocation: the
// reason of a refusal ("" to admit), and whether only room was lacking.
// node is this peer (selfNode), shared by the copies of one admit.
func (e *Engine) admitCheck(from string, a *structs.Allocation, node *structs.Node) (string, bool) {
	if o := e.cv.Owner(JobSlot(a.JobID)); o != from {
		return fmt.Sprintf("not the job's owner in this peer's view (owner %q)", o), false
	}
	if e.state != StateUp {
		return "peer is " + e.state, false
	}
	cons, _ := scheduler.CompileConstraints(a.Job.Constraints)
	if r := cons.Check(node); r != "" {
		return r, false
	}
	if a.Job.Driver != "" && !node.HasDriver(structs.DriverAttrPrefix+a.Job.Driver) {
		return scheduler.ReasonDriver(a.Job.Driver), false
	}
	used, _ := e.used()
	if ok, dim := node.Capacity.Fits(used.Add(a.Resources)); !ok {
		return fmt.Sprintf("out of %s: %s used of %s, %s asked", dim, used, node.Capacity, a.Resources), true
	}
	return "", false
}

// handleAdmit admits or refuses each copy of an admit, in order, and
// answers them all in one message.
func (e *Engine) handleAdmit(m *Message) {
	var node *structs.Node
	allocs := m.admits()
	answers := make([]Admitted, 0, len(allocs))
	for _, a := range allocs {
		if a.Job == nil {
			a.Job = m.Job // a copy built in this process (sendTo to itself)
		}
		if node == nil {
			node = e.selfNode()
		}
		answers = append(answers, e.admitOne(m.From, a, node))
	}
	reply := &Message{Type: MsgAdmitted, From: e.cfg.ID, Inc: e.inc, Answers: answers}
	if len(answers) == 1 {
		reply.Admitted, reply.Answers = &answers[0], nil
	}
	if m.From == e.cfg.ID {
		e.handleAdmitted(reply)
		return
	}
	e.send(m.From, reply)
}

// admitOne admits or refuses one copy.
func (e *Engine) admitOne(from string, a *structs.Allocation, node *structs.Node) Admitted {
	full := false
	answer := func(ok bool, reason string) Admitted {
		used, _ := e.used()
		return Admitted{AllocID: a.ID, OK: ok, Reason: reason, Full: full, Seq: e.seq, Used: used}
	}
	e.stats.AdmitsIn++
	if _, ok := e.tasks[a.ID]; ok {
		e.stats.Repeated++
		return answer(true, "") // a repeated admit
	}
	if e.ended[a.ID] {
		e.stats.Repeated++
		// a repeated admit of a copy that ran here and ended (its end
		// reported): admitted once, it is not run again
		return answer(true, "")
	}
	if r, room := e.admitCheck(from, a, node); r != "" {
		full = room
		return answer(false, r)
	}
	a = a.Copy()
	a.NodeID = e.cfg.ID
	if err := e.runner.Start(a); err != nil {
		return answer(false, "start: "+err.Error())
	}
	e.seq++
	e.stats.Started++
	t := &localTask{alloc: a, seq: e.seq, status: structs.AllocClientPending,
		ts: structs.TaskState{State: structs.TaskStatePending}}
	e.addTask(t)
	return answer(true, "")
}

func (e *Engine) handleStop(m *Message) {
	for _, s := range m.Stop {
		t := e.tasks[s.AllocID]
		if t == nil || t.desiredStop {
			continue
		}
		if o := e.cv.Owner(JobSlot(t.alloc.JobID)); o != m.From {
			continue // only the job's owner in this peer's view stops its tasks
		}
		t.desiredStop = true
		e.touch(t)
		e.reportNow = true
		if t.doneAt.IsZero() {
			e.runner.Stop(s.AllocID)
		}
	}
}

// AdoptLocal takes a task this peer already runs (re-attached after a
// restart of the peer) as admitted: it is reported to its owner, which
// keeps its record instead of placing the copy again.
func (e *Engine) AdoptLocal(now time.Time, a *structs.Allocation) {
	if now.After(e.now) {
		e.now = now
	}
	if _, ok := e.tasks[a.ID]; ok {
		return
	}
	a = a.Copy()
	a.NodeID = e.cfg.ID
	e.seq++
	t := &localTask{alloc: a, seq: e.seq, status: structs.AllocClientRunning,
		ts: structs.TaskState{State: structs.TaskStateRunning}}
	e.addTask(t)
	e.reportNow = true
}

// TaskUpdate is the runner's report of a task's state. A terminal client
// status (complete, failed) is final.
func (e *Engine) TaskUpdate(now time.Time, allocID, clientStatus string, ts structs.TaskState) {
	if now.After(e.now) {
		e.now = now
	}
	t := e.tasks[allocID]
	if t == nil || !t.doneAt.IsZero() {
		return
	}
	t.status, t.ts = clientStatus, ts
	e.touch(t)
	if clientStatus == structs.AllocClientComplete || clientStatus == structs.AllocClientFailed || clientStatus == structs.AllocClientLost {
		t.doneAt = e.now
		e.liveUsed = e.liveUsed.Sub(t.alloc.Resources)
		e.liveN--
		e.finished = append(e.finished, t)
	}
	e.reportNow = true
}

// LocalTask returns a copy of the allocation of a task this peer runs (or
// ran), with its state; nil when unknown.
func (e *Engine) LocalTask(allocID string) *structs.Allocation {
	t := e.tasks[allocID]
	if t == nil {
		return nil
	}
	a := t.alloc.Copy()
	a.ClientStatus, a.TaskState = t.status, t.ts
	return a
}

// LocalTasks counts this peer's live tasks.
func (e *Engine) LocalTasks() int { _, n := e.used(); return n }

// Loads returns the last load of every peer (its own included).
func (e *Engine) Loads() map[string]Load {
	out := make(map[string]Load, len(e.loads))
	for id, l := range e.loads {
		out[id] = l.load
	}
	return out
}

// LiveTasks returns copies of the allocations this peer runs now.
func (e *Engine) LiveTasks() []*structs.Allocation {
	var out []*structs.Allocation
	for _, id := range sortedKeys(e.tasks) {
		if t := e.tasks[id]; t.doneAt.IsZero() {
			out = append(out, e.LocalTask(id))
		}
	}
	return out
}
