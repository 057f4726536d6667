package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/stream"
	"github.com/gantry-project/gantry/internal/structs"
)

// The event stream (GET /v1/event/stream, docs/api.md) is fed from the
// FSM: after an entry is applied, and only while someone subscribes
// (stream.Broker.Want), the FSM hands the broker the request it decoded
// and applied, and snapshots of the state before and after it. The
// broker's goroutine derives the events from them (deriver.derive), so
// the FSM pays one O(1) snapshot or two per entry while subscribed (the
// entry is not copied, nor decoded again), and three atomic operations
// otherwise.
//
// An event says what the entry changed, read from the state after it:
// an allocation named by a plan or a report gives an event only if the
// entry modified it (its ModifyIndex is the entry's index), so placements
// dropped because their job changed, and reports for unknown allocations,
// give none; each object gives at most one event per entry.

// EventsConfig sizes the event stream.
type EventsConfig struct {
	// Broker sizes the ring of recent events and the queue of entries
	// waiting to be derived (stream.DefaultConfig).
	Broker stream.Config
	// Heartbeat is how often an idle stream sends a line without events
	// (its index lets a filtering client resume from there).
	Heartbeat time.Duration
	// WriteTimeout is how long one write to a subscriber may block (its
	// TCP window full) before the subscriber is dropped.
	WriteTimeout time.Duration
	// Coalesce is how long a stream waits after a write that sent all it
	// had before it looks for more: entries committed meanwhile go out
	// in one write, so a subscriber wakes and writes at most once per
	// Coalesce while entries are small and frequent (0: write each entry
	// as soon as it is ready). It is the latency the stream may add.
	Coalesce time.Duration
}

// DefaultEventsConfig: the broker's defaults, a 10 s heartbeat, a 30 s
// write timeout and 5 ms of coalescing.
func DefaultEventsConfig() EventsConfig {
	return EventsConfig{Broker: stream.DefaultConfig(), Heartbeat: 10 * time.Second, WriteTimeout: 30 * time.Second,
		Coalesce: 5 * time.Millisecond}
}

// Validate checks the sizes and durations.
func (c EventsConfig) Validate() error {
	errs := []error{c.Broker.Validate()}
	if c.Heartbeat <= 0 {
		errs = append(errs, fmt.Errorf("event stream: heartbeat must be positive (got %s)", c.Heartbeat))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("event stream: write timeout must be positive (got %s)", c.WriteTimeout))
	}
	if c.Coalesce < 0 || c.Coalesce > time.Second {
		errs = append(errs, fmt.Errorf("event stream: coalescing must be between 0 and 1s (got %s)", c.Coalesce))
	}
	return errors.Join(errs...)
}

// defaultNamespace is the namespace of every job until jobs carry one.
const defaultNamespace = "default"

// jobNamespace is the namespace of a job's events.
func jobNamespace(j *structs.Job) string {
	if j == nil || j.Namespace == "" {
		return defaultNamespace
	}
	return j.Namespace
}

// publishEntry is the FSM's hook, called after the entry at index was
// applied with resp, when the broker wants it. req is the request the FSM
// decoded and applied: the events are derived from it and the state after
// the entry (and before, needsBefore) on the broker's goroutine, without
// decoding the entry again. Nothing modifies req once applied.
//
// writes, when not nil, is what the entry stored in the allocation table
// (state.Store.RecordAllocWrites): the allocation events of plans and
// reports are made from it rather than by looking up each allocation the
// request names in the state after (a tree search per allocation, a fifth
// of the stream's CPU under load: docs/api.md, "Cost, measured").
func (f *fsm) publishEntry(index uint64, t structs.MessageType, req any, before *state.Snapshot, writes *state.AllocWrites, resp any) {
	if err, ok := resp.(error); ok && err != nil || req == nil {
		f.events.Publish(index, func() []*stream.Event { return nil })
		return
	}
	d := &deriver{index: index, before: before, after: f.state.Snapshot()}
	if writes != nil && !writes.Again {
		d.written, d.fromWrites = writes.Allocs, true
	}
	f.events.Publish(index, func() []*stream.Event {
		if err := d.derive(t, req); err != nil {
			f.logger.Warn("events of a raft entry not derived", "index", index, "type", t, "error", err)
		}
		return d.out
	})
}

// derivesFromWrites reports whether the events of an entry of type t are
// derived from the allocations it stored (deriver.stored): plans and
// reports, which name the allocations they write in the order they write
// them.
func derivesFromWrites(t structs.MessageType) bool {
	switch t {
	case structs.ApplyPlanRequestType, structs.ApplyPlanBatchRequestType, structs.ApplyPlanBatchBinaryType,
		structs.AllocClientUpdateRequestType, structs.AllocClientUpdateBatchRequestType, structs.AllocClientUpdateBatchBinaryType:
		return true
	}
	return false
}

// needsBefore reports whether deriving the events of an entry of type t
// reads the state before it (what a stop, purge or collection removed).
func needsBefore(t structs.MessageType) bool {
	switch t {
	case structs.JobRegisterRequestType, structs.JobDeregisterRequestType, structs.JobBatchRequestType, structs.GCRequestType:
		return true
	}
	return false
}

// deriver collects the events of one entry.
type deriver struct {
	index         uint64
	before, after *state.Snapshot
	out           []*stream.Event
	// allocs is how many events the entry may give (a size hint: the
	// allocations and plans it names).
	allocs int
	// seen holds the topic and key of the events made, so each object
	// changes once per entry; allocSeen the same for allocation events,
	// by the state's object (one per ID in a snapshot), cheaper to hash.
	seen      map[seenKey]struct{}
	allocSeen map[*structs.Allocation]struct{}
	// slab and keys are the events and filter keys not handed out yet:
	// an entry's events are allocated together, not one by one.
	slab []stream.Event
	keys []string
	// fromWrites: the allocations of plans and reports are read from
	// written, the allocations the entry stored (each once), in the
	// order the request names them; stored takes them off the front.
	fromWrites bool
	written    []*structs.Allocation
}

// stored returns the allocation id as this entry stored it, or nil when
// the entry did not store it: the next of the entry's writes when that is
// the one, otherwise (fromWrites off) the state after the entry, whose
// version the caller checks against the entry's index.
func (d *deriver) stored(id string) *structs.Allocation {
	if !d.fromWrites {
		return d.after.AllocByID(id)
	}
	if len(d.written) > 0 && d.written[0].ID == id {
		a := d.written[0]
		d.written = d.written[1:]
		return a
	}
	return nil
}

type seenKey struct {
	topic stream.Topic
	key   string
}

// add adds an event unless its object has one already; it returns the
// event added, or nil.
func (d *deriver) add(topic stream.Topic, typ, key, ns string, payload any) *stream.Event {
	id := seenKey{topic, key}
	if _, ok := d.seen[id]; ok {
		return nil
	}
	if d.seen == nil {
		d.seen = map[seenKey]struct{}{}
	}
	d.seen[id] = struct{}{}
	return d.event(topic, typ, key, ns, payload)
}

// event adds an event from the slab.
func (d *deriver) event(topic stream.Topic, typ, key, ns string, payload any) *stream.Event {
	if len(d.slab) == 0 {
		// The first chunk holds the events the entry is expected to
		// give (an allocation's and a plan's each); more come by 16.
		n := 16
		if d.out == nil {
			n = min(max(d.allocs, 1), 4096)
		}
		d.slab = make([]stream.Event, n)
	}
	e := &d.slab[0]
	d.slab = d.slab[1:]
	*e = stream.Event{Topic: topic, Type: typ, Key: key, Namespace: ns, Payload: payload}
	if d.out == nil {
		d.out = make([]*stream.Event, 0, max(d.allocs, 1))
	}
	d.out = append(d.out, e)
	return e
}

// allocEventOf adds an allocation's event unless the allocation has one
// already; its key filters also match the job and the node.
func (d *deriver) allocEventOf(a *structs.Allocation, typ string, payload, full any) {
	// From the entry's writes each allocation comes once (an entry that
	// wrote one twice is derived from the state instead).
	if !d.fromWrites {
		if _, ok := d.allocSeen[a]; ok {
			return
		}
		if d.allocSeen == nil {
			d.allocSeen = make(map[*structs.Allocation]struct{}, max(d.allocs, 8))
		}
		d.allocSeen[a] = struct{}{}
	}
	e := d.event(stream.TopicAllocation, typ, a.ID, jobNamespace(a.Job), payload)
	e.Full = full
	if len(d.keys) < 2 {
		d.keys = make([]string, 2*min(max(d.allocs, 4), 4096))
	}
	e.FilterKeys = d.keys[:2:2]
	e.FilterKeys[0], e.FilterKeys[1] = a.JobID, a.NodeID
	d.keys = d.keys[2:]
}

// derive adds the events of the entry whose decoded request is req (the
// type apply decodes for t). Derived from the entry's writes, every write
// must have been matched to an allocation the request names; if one was
// not (the store wrote in another order than the request names them), the
// events are derived again from the state after the entry, so none is
// lost.
func (d *deriver) derive(t structs.MessageType, req any) error {
	if !d.fromWrites {
		return d.deriveEntry(t, req)
	}
	err := d.deriveEntry(t, req)
	if err == nil && len(d.written) == 0 {
		return nil
	}
	*d = deriver{index: d.index, before: d.before, after: d.after}
	return d.deriveEntry(t, req)
}

func (d *deriver) deriveEntry(t structs.MessageType, req any) error {
	switch r := req.(type) {
	case *structs.NodeRegisterRequest:
		if r.Node != nil {
			d.node("NodeRegistered", r.Node.ID)
		}
	case *structs.NodeUpdateStatusRequest:
		d.node("NodeStatus", r.NodeID)
		d.after.EachAllocOfNode(r.NodeID, func(a *structs.Allocation) bool {
			d.alloc(a)
			return true
		})
	case *structs.NodeUpdateDrainRequest:
		d.node("NodeDrain", r.NodeID)
	case *structs.JobRegisterRequest:
		if r.Job != nil {
			d.jobRegistered(r.Job.ID)
		}
	case *structs.JobDeregisterRequest:
		d.jobDeregistered(r)
	case *structs.JobBatchRequest:
		for _, w := range r.Writes {
			switch {
			case w.Register != nil && w.Register.Job != nil:
				d.jobRegistered(w.Register.Job.ID)
			case w.Deregister != nil:
				d.jobDeregistered(w.Deregister)
			}
		}
	case *structs.AllocClientUpdateRequest:
		d.report(r)
	case *structs.AllocClientUpdateBatchRequest:
		for i := range r.Nodes {
			d.allocs += len(r.Nodes[i].Updates)
		}
		for i := range r.Nodes {
			d.report(&r.Nodes[i])
		}
	case *structs.ApplyPlanRequest:
		d.allocs = len(r.Allocs) + 1
		d.plan(r)
	case *structs.ApplyPlanBatchRequest:
		for _, p := range r.Plans {
			if p != nil {
				d.allocs += len(p.Allocs) + 1
			}
		}
		for _, p := range r.Plans {
			d.plan(p)
		}
	case *structs.GCRequest:
		d.gc(r)
	case *structs.DeploymentUpsertRequest:
		for _, dep := range r.Deployments {
			if dep != nil {
				d.deployment(d.after.DeploymentByID(nil, dep.ID))
			}
		}
	case *structs.ServerMemberUpsertRequest:
		if r.Member != nil {
			d.add(stream.TopicServer, "ServerMemberUpserted", r.Member.ID, "", r.Member)
		}
	case *structs.ServerMemberDeleteRequest:
		d.add(stream.TopicServer, "ServerMemberDeleted", r.ID, "", map[string]string{"id": r.ID})
	default:
		return fmt.Errorf("no events for a %T (entry type %d)", req, t)
	}
	return nil
}

func (d *deriver) node(typ, id string) {
	if n := d.after.NodeByID(id); n != nil && n.ModifyIndex == d.index {
		d.add(stream.TopicNode, typ, n.ID, "", n)
	}
}

// alloc adds an allocation's event if this entry changed it.
func (d *deriver) alloc(a *structs.Allocation) {
	if a == nil || a.ModifyIndex != d.index {
		return
	}
	typ := "AllocationUpdated"
	if a.CreateIndex == d.index {
		typ = "AllocationPlaced"
	}
	d.allocEventOf(a, typ, allocEvent{a}, fullAlloc{a})
}

// allocEvent is the payload of an allocation's event: what a watcher
// follows (where it runs, what is wanted of it and what it does), not the
// whole allocation with its job, which was two thirds of the bytes of a
// stream under load (docs/api.md, "Cost, measured"); ?full=true sends
// the whole allocation (fullAlloc). It holds the state's allocation,
// which is never modified once stored.
type allocEvent struct{ a *structs.Allocation }

// AppendJSON writes {"name","job_id","job_version","node_id",
// "node_name","desired_status","desired_description","client_status",
// "client_description","previous_allocation","preempted_by",
// "create_index","modify_time"}: the allocation's ID and modify index are
// the event's key and the line's index, not repeated, nor is its create
// index when it is that index too (an AllocationPlaced event).
func (p allocEvent) AppendJSON(dst []byte) []byte {
	a := p.a
	o := stream.OpenObject(dst)
	o.String("name", a.Name)
	o.String("job_id", a.JobID)
	o.Uint("job_version", a.JobVersion)
	o.String("node_id", a.NodeID)
	o.StringOmitEmpty("node_name", a.NodeName)
	o.String("desired_status", a.DesiredStatus)
	o.StringOmitEmpty("desired_description", a.DesiredDescription)
	o.String("client_status", a.ClientStatus)
	o.StringOmitEmpty("client_description", a.ClientDescription)
	o.StringOmitEmpty("previous_allocation", a.PreviousAllocation)
	o.StringOmitEmpty("preempted_by", a.PreemptedBy)
	if a.CreateIndex != a.ModifyIndex {
		o.Uint("create_index", a.CreateIndex)
	}
	o.Int("modify_time", a.ModifyTime)
	return o.Close()
}

// fullAlloc is the payload of ?full=true: the allocation without its job,
// as GET /v1/allocation/{id} gives it. Encoded only while a subscriber
// asks for it.
type fullAlloc struct{ a *structs.Allocation }

func (p fullAlloc) MarshalJSON() ([]byte, error) { return json.Marshal(p.a.Stub()) }

// report adds the events of one node's reports: AllocationReported, of
// what a report changes (allocReport).
func (d *deriver) report(n *structs.AllocClientUpdateRequest) {
	for _, u := range n.Updates {
		if u == nil {
			continue
		}
		if a := d.stored(u.ID); a != nil && a.ModifyIndex == d.index {
			d.allocEventOf(a, "AllocationReported", allocReport{a}, fullAlloc{a})
		}
	}
}

// allocReport is the payload of an agent's report (AllocationReported):
// the allocation's name and what a report changes, its client status and
// description. The rest (job, node, desired status, times) a report
// leaves as the allocation's last AllocationPlaced or AllocationUpdated
// event gave it, and key filters still match the job and the node
// (FilterKeys). Half the events of a stream under load are reports,
// each sent to every subscriber: carrying job_id, node_id and
// modify_time too made an event of 184 bytes in c1m-like, 107 without
// (docs/api.md).
type allocReport struct{ a *structs.Allocation }

// AppendJSON writes {"name","client_status","client_description"}.
func (p allocReport) AppendJSON(dst []byte) []byte {
	a := p.a
	o := stream.OpenObject(dst)
	o.String("name", a.Name)
	o.String("client_status", a.ClientStatus)
	o.StringOmitEmpty("client_description", a.ClientDescription)
	return o.Close()
}

// DeploymentEvent is the payload of a Deployment event: what a job
// registration, stop or purge changed of what should run.
type DeploymentEvent struct {
	JobID           string `json:"job_id"`
	Version         uint64 `json:"version"`
	Count           int    `json:"count"`
	PreviousVersion uint64 `json:"previous_version,omitempty"`
	PreviousCount   int    `json:"previous_count,omitempty"`
}

// deployment adds a deployment object's event if this entry changed it
// (keyed by the deployment's ID; the job's Deployment events above are
// keyed by the job's).
func (d *deriver) deployment(dep *structs.Deployment) {
	if dep == nil || dep.ModifyIndex != d.index {
		return
	}
	typ := "DeploymentStatusUpdate"
	if dep.CreateIndex == d.index {
		typ = "DeploymentCreated"
	}
	if e := d.add(stream.TopicDeployment, typ, dep.ID, dep.Namespace, dep); e != nil {
		e.FilterKeys = []string{dep.JobID}
	}
}

// jobDeployments adds the events of the job's deployments this entry
// created or ended.
func (d *deriver) jobDeployments(jobID string) {
	for _, dep := range d.after.DeploymentsByJob(nil, jobID) {
		d.deployment(dep)
	}
}

func (d *deriver) jobRegistered(id string) {
	j := d.after.JobByID(id)
	if j == nil || j.ModifyIndex != d.index {
		return
	}
	d.jobDeployments(id)
	ns := jobNamespace(j)
	d.add(stream.TopicJob, "JobRegistered", j.ID, ns, d.after.JobWithStatus(j))
	dep := &DeploymentEvent{JobID: j.ID, Version: j.Version, Count: j.Count}
	prev := d.before.JobByID(id)
	switch {
	case prev == nil || prev.Stop || prev.Version != j.Version:
		if prev != nil {
			dep.PreviousVersion, dep.PreviousCount = prev.Version, prev.Count
		}
		d.add(stream.TopicDeployment, "DeploymentStarted", j.ID, ns, dep)
	case prev.Count != j.Count:
		dep.PreviousVersion, dep.PreviousCount = prev.Version, prev.Count
		d.add(stream.TopicDeployment, "DeploymentScaled", j.ID, ns, dep)
	}
}

func (d *deriver) jobDeregistered(req *structs.JobDeregisterRequest) {
	prev := d.before.JobByID(req.JobID)
	if prev == nil {
		return
	}
	ns := jobNamespace(prev)
	dep := &DeploymentEvent{JobID: prev.ID, Version: prev.Version, PreviousVersion: prev.Version, PreviousCount: prev.Count}
	if req.Purge {
		if d.after.JobByID(req.JobID) != nil {
			return
		}
		d.add(stream.TopicJob, "JobPurged", prev.ID, ns, map[string]string{"id": prev.ID})
		for _, a := range d.before.AllocsByJob(prev.ID) {
			d.allocDeleted(a)
		}
		if !prev.Stop {
			d.add(stream.TopicDeployment, "DeploymentStopped", prev.ID, ns, dep)
		}
		return
	}
	j := d.after.JobByID(req.JobID)
	if j == nil || j.ModifyIndex != d.index {
		return
	}
	d.add(stream.TopicJob, "JobStopped", j.ID, ns, d.after.JobWithStatus(j))
	d.jobDeployments(j.ID)
	for _, a := range d.after.AllocsByJob(j.ID) {
		d.alloc(a)
	}
	if !prev.Stop {
		d.add(stream.TopicDeployment, "DeploymentStopped", j.ID, ns, dep)
	}
}

func (d *deriver) allocDeleted(a *structs.Allocation) {
	if a == nil || d.after.AllocByID(a.ID) != nil {
		return
	}
	d.allocEventOf(a, "AllocationDeleted", map[string]string{"id": a.ID, "job_id": a.JobID, "node_id": a.NodeID}, nil)
}

// PlanEvent is the payload of a Plan event: one plan as committed.
type PlanEvent struct {
	JobID   string `json:"job_id"`
	Placed  int    `json:"placed"`
	Stopped int    `json:"stopped"`
	Evicted int    `json:"evicted"`
	// Dropped is set when the job changed after the plan was checked:
	// its placements were not committed.
	Dropped bool `json:"dropped,omitempty"`
	// Failure is why copies are still pending (after the plan).
	Failure *structs.PlacementFailure `json:"failure,omitempty"`
}

func (d *deriver) plan(p *structs.ApplyPlanRequest) {
	if p == nil {
		return
	}
	ev := &PlanEvent{JobID: p.JobID}
	var ns string
	for _, pa := range p.Allocs {
		if pa == nil {
			continue
		}
		a := d.stored(pa.ID)
		if a == nil || a.ModifyIndex != d.index {
			if pa.CreateIndex == 0 && pa.DesiredStatus == structs.AllocDesiredRun {
				ev.Dropped = true
			}
			continue
		}
		ns = jobNamespace(a.Job)
		switch {
		case a.CreateIndex == d.index:
			ev.Placed++
		case a.DesiredStatus == structs.AllocDesiredEvict:
			ev.Evicted++
		default:
			ev.Stopped++
		}
		d.alloc(a)
	}
	if p.Failure != nil {
		ev.Failure = d.after.PlacementFailure(p.JobID)
	}
	if ns == "" {
		ns = jobNamespace(d.after.JobByID(p.JobID))
	}
	if ev.Placed+ev.Stopped+ev.Evicted > 0 || ev.Failure != nil || ev.Dropped || p.ClearFailure {
		d.add(stream.TopicPlan, "PlanApplied", p.JobID, ns, ev)
	}
}

func (d *deriver) gc(req *structs.GCRequest) {
	for _, g := range req.Allocs {
		for _, id := range g.IDs {
			d.allocDeleted(d.before.AllocByID(id))
		}
	}
	for _, g := range req.Jobs {
		prev := d.before.JobByID(g.ID)
		if prev == nil || d.after.JobByID(g.ID) != nil {
			continue
		}
		for _, a := range d.before.AllocsByJob(g.ID) {
			d.allocDeleted(a)
		}
		d.add(stream.TopicJob, "JobDeleted", g.ID, jobNamespace(prev), map[string]string{"id": g.ID})
	}
}
