package structs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Bits of an allocation's mask: which fields follow because they differ
// from the previous allocation of the entry (the first is compared with
// the zero Allocation). The bits of a placement like the one before it
// (new ID, index, node) fit the first byte.
const (
	amNil      = 1 << iota // a nil *Allocation; nothing follows
	amIDString             // the ID is not a UUID: a string follows instead of 16 bytes
	amIndex                // Index, as the difference from the previous one
	amNodeID               // string table
	amNodeName             // string table
	amJobID                // string table
	amJobVersion
	amName // inline; when absent Name is AllocName(JobID, Index)
	amResources
	amPriority
	amJob // 0 for nil, else 1 + the entry's job table index
	amDesiredStatus
	amDesiredDescription
	amClientStatus
	amClientDescription
	amTaskState
	amPreviousAllocation // inline ID
	amRescheduleCount
	amPreemptedBy // inline ID
	amCreateTime
	amModifyTime
	amCreateIndex
	amModifyIndex
	amAllocModifyIndex
	amPorts  // the host ports: a count (nil-or-length), then label, value, to each
	amHealth // set when Health is not nil (codec_health.go); not a difference
	// amTaskStates: the extra tasks' states (taskStates); unset in bodies
	// from before task groups.
	amTaskStates
	// amGroup: the task group (string table); unset in bodies from before
	// groups, whose allocations all belong to their job's implicit group.
	amGroup
	amAll = amGroup<<1 - 1
)

// Bits of a plan's flags.
const (
	pfNil = 1 << iota
	pfFailure
	pfClearFailure
	pfAll = pfClearFailure<<1 - 1
)

// planEncoder adds the job table to the encoder: jobs embedded in
// allocations (evicted and stopped copies carry theirs) are written once per
// entry as JSON, referred to by number.
type planEncoder struct {
	*encoder
	jobs     [][]byte
	jobByPtr map[*Job]uint64
	jobByDoc map[string]uint64
	prev     Allocation
}

// EncodePlanBatch returns the binary body of an ApplyPlanBatchBinaryType
// entry (without the type byte). DecodePlanBatch gives back an equal
// request.
func EncodePlanBatch(req *ApplyPlanBatchRequest) ([]byte, error) {
	n := 64
	for _, p := range req.Plans {
		if p != nil {
			n += 32 * len(p.Allocs)
		}
	}
	e := &planEncoder{encoder: newEncoder(n)}
	e.count(len(req.Plans), req.Plans == nil)
	for i, p := range req.Plans {
		if err := e.plan(p); err != nil {
			return nil, fmt.Errorf("encoding plan %d of the batch: %w", i, err)
		}
	}
	e.prependJobTable()
	return e.finish(), nil
}

// prependJobTable puts the job table (the JSON documents of the jobs
// embedded in allocations) before the body: it goes between the string
// table and the plans or nodes.
func (e *planEncoder) prependJobTable() {
	jt := newEncoder(0)
	jt.uvarint(uint64(len(e.jobs)))
	for _, doc := range e.jobs {
		jt.uvarint(uint64(len(doc)))
		jt.body = append(jt.body, doc...)
	}
	e.body = append(jt.body, e.body...)
}

func (e *planEncoder) plan(p *ApplyPlanRequest) error {
	if p == nil {
		e.uvarint(pfNil)
		return nil
	}
	var f uint64
	if p.Failure != nil {
		f |= pfFailure
	}
	if p.ClearFailure {
		f |= pfClearFailure
	}
	e.uvarint(f)
	e.ref(p.JobID)
	e.time(p.Time)
	e.uvarint(p.JobVersion)
	if p.Failure != nil {
		e.failure(p.Failure)
	}
	e.count(len(p.Allocs), p.Allocs == nil)
	for i, a := range p.Allocs {
		if err := e.alloc(a); err != nil {
			return fmt.Errorf("allocation %d: %w", i, err)
		}
	}
	return nil
}

func (e *planEncoder) failure(f *PlacementFailure) {
	e.ref(f.JobID)
	e.int(f.Unplaced)
	e.int(f.NodesEvaluated)
	e.counts(f.NodesFiltered)
	e.counts(f.NodesExhausted)
	e.ref(f.Message)
	e.time(f.Time)
}

// counts writes a map of counts with its keys in order.
func (e *planEncoder) counts(m map[string]int) {
	e.count(len(m), m == nil)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.ref(k)
		e.int(m[k])
	}
}

func (e *planEncoder) job(j *Job) (uint64, error) {
	if j == nil {
		return 0, nil
	}
	if i, ok := e.jobByPtr[j]; ok {
		return i, nil
	}
	doc, err := json.Marshal(j)
	if err != nil {
		return 0, fmt.Errorf("job %q: %w", j.ID, err)
	}
	i, ok := e.jobByDoc[string(doc)]
	if !ok {
		if e.jobByPtr == nil {
			e.jobByPtr, e.jobByDoc = map[*Job]uint64{}, map[string]uint64{}
		}
		e.jobs = append(e.jobs, doc)
		i = uint64(len(e.jobs))
		e.jobByDoc[string(doc)] = i
	}
	e.jobByPtr[j] = i
	return i, nil
}

func (e *planEncoder) alloc(a *Allocation) error {
	if a == nil {
		e.uvarint(amNil)
		return nil
	}
	p := &e.prev
	var m uint64
	if !isUUID(a.ID) {
		m |= amIDString
	}
	if a.Index != p.Index {
		m |= amIndex
	}
	if a.NodeID != p.NodeID {
		m |= amNodeID
	}
	if a.NodeName != p.NodeName {
		m |= amNodeName
	}
	if a.JobID != p.JobID {
		m |= amJobID
	}
	if a.JobVersion != p.JobVersion {
		m |= amJobVersion
	}
	if !isGroupAllocName(a.Name, a.JobID, a.Group, a.Index) {
		m |= amName
	}
	if a.Resources != p.Resources {
		m |= amResources
	}
	if a.Priority != p.Priority {
		m |= amPriority
	}
	if a.Job != p.Job {
		m |= amJob
	}
	if a.DesiredStatus != p.DesiredStatus {
		m |= amDesiredStatus
	}
	if a.DesiredDescription != p.DesiredDescription {
		m |= amDesiredDescription
	}
	if a.ClientStatus != p.ClientStatus {
		m |= amClientStatus
	}
	if a.ClientDescription != p.ClientDescription {
		m |= amClientDescription
	}
	if !a.TaskState.equal(&p.TaskState) {
		m |= amTaskState
	}
	if a.PreviousAllocation != p.PreviousAllocation {
		m |= amPreviousAllocation
	}
	if a.RescheduleCount != p.RescheduleCount {
		m |= amRescheduleCount
	}
	if a.PreemptedBy != p.PreemptedBy {
		m |= amPreemptedBy
	}
	if a.CreateTime != p.CreateTime {
		m |= amCreateTime
	}
	if a.ModifyTime != p.ModifyTime {
		m |= amModifyTime
	}
	if a.CreateIndex != p.CreateIndex {
		m |= amCreateIndex
	}
	if a.ModifyIndex != p.ModifyIndex {
		m |= amModifyIndex
	}
	if a.AllocModifyIndex != p.AllocModifyIndex {
		m |= amAllocModifyIndex
	}
	if !slices.Equal(a.Ports, p.Ports) || (a.Ports == nil) != (p.Ports == nil) {
		m |= amPorts
	}
	if a.Health != nil {
		m |= amHealth
	}
	if a.TaskStates != nil || p.TaskStates != nil {
		m |= amTaskStates
	}
	if a.Group != p.Group {
		m |= amGroup
	}

	e.uvarint(m)
	if m&amIDString != 0 {
		e.str(a.ID)
	} else {
		e.body = appendUUID(e.body, a.ID)
	}
	if m&amIndex != 0 {
		e.varint(int64(a.Index) - int64(p.Index))
	}
	if m&amNodeID != 0 {
		e.ref(a.NodeID)
	}
	if m&amNodeName != 0 {
		e.ref(a.NodeName)
	}
	if m&amJobID != 0 {
		e.ref(a.JobID)
	}
	if m&amJobVersion != 0 {
		e.uvarint(a.JobVersion)
	}
	if m&amName != 0 {
		e.str(a.Name)
	}
	if m&amResources != 0 {
		e.varint(a.Resources.CPU)
		e.varint(a.Resources.MemoryMB)
	}
	if m&amPriority != 0 {
		e.int(a.Priority)
	}
	if m&amJob != 0 {
		j, err := e.job(a.Job)
		if err != nil {
			return err
		}
		e.uvarint(j)
	}
	if m&amDesiredStatus != 0 {
		e.ref(a.DesiredStatus)
	}
	if m&amDesiredDescription != 0 {
		e.ref(a.DesiredDescription)
	}
	if m&amClientStatus != 0 {
		e.ref(a.ClientStatus)
	}
	if m&amClientDescription != 0 {
		e.ref(a.ClientDescription)
	}
	if m&amTaskState != 0 {
		e.taskState(&a.TaskState, &p.TaskState)
	}
	if m&amPreviousAllocation != 0 {
		e.id(a.PreviousAllocation)
	}
	if m&amRescheduleCount != 0 {
		e.int(a.RescheduleCount)
	}
	if m&amPreemptedBy != 0 {
		e.id(a.PreemptedBy)
	}
	if m&amCreateTime != 0 {
		e.time(a.CreateTime)
	}
	if m&amModifyTime != 0 {
		e.time(a.ModifyTime)
	}
	if m&amCreateIndex != 0 {
		e.uvarint(a.CreateIndex)
	}
	if m&amModifyIndex != 0 {
		e.uvarint(a.ModifyIndex)
	}
	if m&amAllocModifyIndex != 0 {
		e.uvarint(a.AllocModifyIndex)
	}
	if m&amPorts != 0 {
		e.count(len(a.Ports), a.Ports == nil)
		for _, pt := range a.Ports {
			e.ref(pt.Label)
			e.int(pt.Value)
			e.int(pt.To)
		}
	}
	if m&amHealth != 0 {
		e.health(a.Health)
	}
	if m&amTaskStates != 0 {
		// A flag, then the states: "none" must be sayable when the
		// previous allocation had some.
		if a.TaskStates == nil {
			e.uvarint(0)
		} else {
			e.uvarint(1)
			e.taskStates(a.TaskStates)
		}
	}
	if m&amGroup != 0 {
		e.ref(a.Group)
	}
	e.prev = *a
	return nil
}

// equal reports whether two task states are the same, events included.
func (ts *TaskState) equal(o *TaskState) bool {
	return ts.State == o.State && ts.Restarts == o.Restarts && ts.ExitCode == o.ExitCode &&
		ts.Failed == o.Failed && ts.StartedAt == o.StartedAt && ts.FinishedAt == o.FinishedAt &&
		ts.PID == o.PID && (ts.Events == nil) == (o.Events == nil) && slices.Equal(ts.Events, o.Events)
}

// isAllocName reports whether name is AllocName(job, idx), without
// building it.
func isAllocName(name, job string, idx int) bool {
	if len(name) < len(job)+3 || name[:len(job)] != job || name[len(job)] != '[' || name[len(name)-1] != ']' {
		return false
	}
	var buf [20]byte
	return name[len(job)+1:len(name)-1] == string(strconv.AppendInt(buf[:0], int64(idx), 10))
}

// isGroupAllocName reports whether name is AllocGroupName(job, group, idx).
func isGroupAllocName(name, job, group string, idx int) bool {
	if group == "" {
		return isAllocName(name, job, idx)
	}
	return len(name) > len(job) && name[:len(job)] == job && name[len(job)] == '.' &&
		isAllocName(name[len(job)+1:], group, idx)
}

// allocName is AllocName without fmt (the decoder derives most names).
func allocName(job string, idx int) string {
	b := make([]byte, 0, len(job)+8)
	b = append(b, job...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(idx), 10)
	b = append(b, ']')
	return string(b)
}

// DecodePlanBatch decodes the body of an ApplyPlanBatchBinaryType entry.
// The allocations share the strings of the entry (one copy of each node ID
// and status per entry) and, when equal, embedded jobs.
func DecodePlanBatch(body []byte) (*ApplyPlanBatchRequest, error) {
	d := &planDecoder{decoder: decoder{b: body}}
	d.header()
	if d.err == nil {
		d.jobTable()
	}
	req := &ApplyPlanBatchRequest{}
	if d.err == nil {
		if n := d.optCount("plan count"); n >= 0 {
			req.Plans = make([]*ApplyPlanRequest, n)
		}
		for i := range req.Plans {
			req.Plans[i] = d.plan()
			if d.err != nil {
				d.err = fmt.Errorf("plan %d of %d: %w", i, len(req.Plans), d.err)
				break
			}
		}
	}
	d.end()
	if d.err != nil {
		return nil, fmt.Errorf("decoding plan batch: %w", d.err)
	}
	return req, nil
}

type planDecoder struct {
	decoder
	jobs []*Job
	prev Allocation
}

func (d *planDecoder) jobTable() {
	n := d.count("job table")
	if d.err != nil {
		return
	}
	d.jobs = make([]*Job, n)
	for i := range d.jobs {
		doc := d.bytes(d.uvarint("job table entry"), "job table entry")
		if d.err != nil {
			d.err = fmt.Errorf("job table entry %d of %d: %w", i, n, d.err)
			return
		}
		var j *Job
		if err := json.Unmarshal(doc, &j); err != nil {
			d.fail("job table entry %d of %d: %w", i, n, err)
			return
		}
		if j == nil {
			d.fail("job table entry %d of %d: null", i, n)
			return
		}
		d.jobs[i] = j
	}
}

func (d *planDecoder) plan() *ApplyPlanRequest {
	f := d.uvarint("plan flags")
	if d.err != nil {
		return nil
	}
	if f&^pfAll != 0 {
		d.fail("plan flags %#x have unknown bits", f)
		return nil
	}
	if f&pfNil != 0 {
		if f != pfNil {
			d.fail("plan flags %#x: a nil plan with other flags", f)
		}
		return nil
	}
	p := &ApplyPlanRequest{ClearFailure: f&pfClearFailure != 0}
	p.JobID = d.ref("plan job_id")
	p.Time = d.time("plan time")
	p.JobVersion = d.uvarint("plan job_version")
	if f&pfFailure != 0 {
		p.Failure = d.failure()
	}
	if n := d.optCount("allocation count"); n >= 0 {
		p.Allocs = make([]*Allocation, n)
		// One backing array for the plan's allocations: one heap
		// object instead of one per allocation.
		backing := make([]Allocation, n)
		for i := range p.Allocs {
			if d.alloc(&backing[i]) {
				p.Allocs[i] = &backing[i]
			}
			if d.err != nil {
				d.err = fmt.Errorf("allocation %d of %d: %w", i, n, d.err)
				return nil
			}
		}
	}
	return p
}

func (d *planDecoder) failure() *PlacementFailure {
	f := &PlacementFailure{}
	f.JobID = d.ref("failure job_id")
	f.Unplaced = d.int("failure unplaced")
	f.NodesEvaluated = d.int("failure nodes_evaluated")
	f.NodesFiltered = d.counts("failure nodes_filtered")
	f.NodesExhausted = d.counts("failure nodes_exhausted")
	f.Message = d.ref("failure message")
	f.Time = d.time("failure time")
	return f
}

func (d *planDecoder) counts(what string) map[string]int {
	n := d.optCount(what)
	if n < 0 {
		return nil
	}
	m := make(map[string]int, n)
	for range n {
		k := d.ref(what)
		if _, dup := m[k]; dup && d.err == nil {
			d.fail("%s: key %q twice", what, k)
		}
		m[k] = d.int(what)
	}
	return m
}

// alloc decodes one allocation into a and reports whether it is not nil.
func (d *planDecoder) alloc(a *Allocation) bool {
	m := d.uvarint("allocation mask")
	if d.err != nil {
		return false
	}
	if m&^amAll != 0 {
		d.fail("allocation mask %#x has unknown bits", m)
		return false
	}
	if m&amNil != 0 {
		if m != amNil {
			d.fail("allocation mask %#x: a nil allocation with fields", m)
		}
		return false
	}
	p := &d.prev
	*a = *p
	a.TaskState.Events = p.TaskState.Events
	if m&amIDString != 0 {
		a.ID = d.str("allocation id")
	} else {
		a.ID = d.uuid("allocation id")
	}
	if m&amIndex != 0 {
		idx := int64(p.Index) + d.varint("allocation index")
		if int64(int(idx)) != idx {
			d.fail("allocation index %d does not fit an int", idx)
		}
		a.Index = int(idx)
	}
	if m&amNodeID != 0 {
		a.NodeID = d.ref("allocation node_id")
	}
	if m&amNodeName != 0 {
		a.NodeName = d.ref("allocation node_name")
	}
	if m&amJobID != 0 {
		a.JobID = d.ref("allocation job_id")
	}
	if m&amJobVersion != 0 {
		a.JobVersion = d.uvarint("allocation job_version")
	}
	if m&amName != 0 {
		a.Name = d.str("allocation name")
	}
	if m&amResources != 0 {
		a.Resources.CPU = d.varint("allocation cpu")
		a.Resources.MemoryMB = d.varint("allocation memory_mb")
	}
	if m&amPriority != 0 {
		a.Priority = d.int("allocation priority")
	}
	if m&amJob != 0 {
		j := d.uvarint("allocation job")
		switch {
		case d.err != nil:
		case j == 0:
			a.Job = nil
		case j > uint64(len(d.jobs)):
			d.fail("allocation job: job %d is not in the entry's table of %d", j, len(d.jobs))
		default:
			a.Job = d.jobs[j-1]
		}
	}
	if m&amDesiredStatus != 0 {
		a.DesiredStatus = d.ref("allocation desired_status")
	}
	if m&amDesiredDescription != 0 {
		a.DesiredDescription = d.ref("allocation desired_description")
	}
	if m&amClientStatus != 0 {
		a.ClientStatus = d.ref("allocation client_status")
	}
	if m&amClientDescription != 0 {
		a.ClientDescription = d.ref("allocation client_description")
	}
	if m&amTaskState != 0 {
		var ts TaskState
		d.taskState(&ts, &p.TaskState)
		a.TaskState = ts
	}
	if a.TaskState.Events != nil && m&amTaskState == 0 {
		// Same events as the previous allocation: its own copy, as the
		// store's allocations never share a slice.
		a.TaskState.Events = slices.Clone(a.TaskState.Events)
	}
	if m&amPreviousAllocation != 0 {
		a.PreviousAllocation = d.id("allocation previous_allocation")
	}
	if m&amRescheduleCount != 0 {
		a.RescheduleCount = d.int("allocation reschedule_count")
	}
	if m&amPreemptedBy != 0 {
		a.PreemptedBy = d.id("allocation preempted_by")
	}
	if m&amCreateTime != 0 {
		a.CreateTime = d.time("allocation create_time")
	}
	if m&amModifyTime != 0 {
		a.ModifyTime = d.time("allocation modify_time")
	}
	if m&amCreateIndex != 0 {
		a.CreateIndex = d.uvarint("allocation create_index")
	}
	if m&amModifyIndex != 0 {
		a.ModifyIndex = d.uvarint("allocation modify_index")
	}
	if m&amAllocModifyIndex != 0 {
		a.AllocModifyIndex = d.uvarint("allocation alloc_modify_index")
	}
	if m&amPorts != 0 {
		a.Ports = nil
		if n := d.optCount("allocation ports"); n >= 0 {
			a.Ports = make([]AllocPort, 0, n)
			for i := 0; i < n && d.err == nil; i++ {
				a.Ports = append(a.Ports, AllocPort{
					Label: d.ref("allocation port label"),
					Value: d.int("allocation port value"),
					To:    d.int("allocation port to"),
				})
			}
		}
	} else if a.Ports != nil {
		// Same ports as the previous allocation: its own copy.
		a.Ports = slices.Clone(a.Ports)
	}
	a.Health = nil
	if m&amHealth != 0 {
		a.Health = d.health()
	}
	if m&amTaskStates != 0 {
		a.TaskStates = nil
		switch f := d.uvarint("allocation task states flag"); {
		case d.err != nil:
		case f == 1:
			a.TaskStates = d.taskStates()
		case f != 0:
			d.fail("allocation task states flag %d is not 0 or 1", f)
		}
	} else {
		a.TaskStates = CopyTaskStates(a.TaskStates)
	}
	if m&amGroup != 0 {
		a.Group = d.ref("allocation group")
	}
	if m&amName == 0 {
		// Derived once the group is known (it follows the name).
		if a.Group == "" {
			a.Name = allocName(a.JobID, a.Index)
		} else {
			a.Name = allocName(a.JobID+"."+a.Group, a.Index)
		}
	}
	*p = *a
	return true
}
