package peerexec

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/gantry-project/gantry/internal/binwire"
	"github.com/gantry-project/gantry/internal/structs"
)

// The binary encoding of execution messages. JSON cost about a sixth of a
// peer's CPU in a placement benchmark, most of it decoding loads,
// answers and reports, whose shape is fixed: this encoding writes their
// fields in order (varints, length-prefixed strings), the allocations of
// an admit in the encoding of the plan entries (structs.EncodePlanBatch)
// and the few rich documents (a job, a peer's node) as JSON.
//
// A binary batch starts with the byte wireV1; a JSON batch starts with
// '[' or '{' (or white space), so a receiver reads both: a peer sends
// binary only to peers that announced they read it (Load.Wire, or a
// binary batch from them), and JSON to the others, so peers of the
// previous version keep working during a rolling upgrade.
//
//	batch  = wireV1, uvarint count, count × (uvarint length, entry)
//	entry  = a JSON message (starts with '{'), or
//	         type byte, from, inc, then the type's fields (below)
//	string = uvarint length, bytes
//	count  = uvarint: 0 for nil, n+1 for n items
//
// A message the binary form cannot carry exactly (fields of another
// type, a one-copy admit) goes as a JSON entry of the binary batch.
// Decoding checks every length against what is left before allocating,
// refuses unknown types, flags and trailing bytes, and ends with the
// same checks as JSON (check).

const (
	// wireV1 is the first byte of a binary batch (version 1). A JSON
	// batch never starts with it.
	wireV1 = 0x02
	// WireVersion is the newest binary encoding this peer reads; its loads
	// announce it (Load.Wire).
	WireVersion = 1
	// maxWireString bounds one string of a binary message.
	maxWireString = 1 << 20
	// maxTaskEvents bounds the events of one task state in a report.
	maxTaskEvents = 1000
)

// Type bytes of binary entries (a JSON entry starts with '{').
const (
	wtLoad     = 1
	wtAdmit    = 2
	wtAdmitted = 3
	wtStop     = 4
	wtReport   = 5
)

// Flag bits.
const (
	lfDelta = 1 // Load.Delta; Report.Delta
	lfNode  = 2 // a load's node document follows
	lfAll   = lfDelta | lfNode

	afList = 1 // admitted: Answers (else one Admitted)

	ansOK   = 1 // Admitted.OK
	ansFull = 2 // Admitted.Full
	ansAll  = ansOK | ansFull

	tfDesiredStop = 1 // TaskReport.DesiredStop
	tfFailed      = 2 // TaskState.Failed
	tfAll         = tfDesiredStop | tfFailed
)

// EncodeBinaryBatch renders messages as one binary batch.
func EncodeBinaryBatch(ms []*Message) ([]byte, error) {
	entries := make([][]byte, len(ms))
	for i, m := range ms {
		e, err := appendWireEntry(nil, m)
		if err != nil {
			return nil, err
		}
		entries[i] = e
	}
	return joinWire(entries), nil
}

// joinWire frames encoded entries as one binary batch.
func joinWire(entries [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, e := range entries {
		n += binary.MaxVarintLen64 + len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, wireV1)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

// joinJSON frames JSON-encoded messages as one JSON batch (what
// EncodeBatch gives for them).
func joinJSON(entries [][]byte) []byte {
	n := 2
	for _, e := range entries {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// wireForm reports whether m has exactly the binary form of its type:
// the fields of its type and no others.
func wireForm(m *Message) bool {
	other := 0 // parts set besides the type's own
	count := func(set bool) {
		if set {
			other++
		}
	}
	count(m.Load != nil)
	count(m.Alloc != nil)
	count(m.Job != nil || m.Allocs != nil)
	count(m.Admitted != nil || m.Answers != nil)
	count(m.Stop != nil)
	count(m.Report != nil)
	if other != 1 {
		return false
	}
	switch m.Type {
	case MsgLoad:
		return m.Load != nil
	case MsgAdmit:
		if m.Job == nil || m.Allocs == nil {
			return false
		}
		for _, a := range m.Allocs {
			if a == nil || (a.Job != nil && a.Job != m.Job) {
				return false // a copy carrying its own job: JSON says it exactly
			}
		}
		return true
	case MsgAdmitted:
		return (m.Admitted == nil) != (m.Answers == nil)
	case MsgStop:
		return m.Stop != nil
	case MsgReport:
		return m.Report != nil
	}
	return false
}

// appendWireEntry appends m as one entry of a binary batch.
func appendWireEntry(dst []byte, m *Message) ([]byte, error) {
	if !wireForm(m) {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	}
	w := wenc{b: dst}
	switch m.Type {
	case MsgLoad:
		w.b = append(w.b, wtLoad)
	case MsgAdmit:
		w.b = append(w.b, wtAdmit)
	case MsgAdmitted:
		w.b = append(w.b, wtAdmitted)
	case MsgStop:
		w.b = append(w.b, wtStop)
	case MsgReport:
		w.b = append(w.b, wtReport)
	}
	w.str(m.From)
	w.str(m.Inc)
	switch m.Type {
	case MsgLoad:
		if err := w.load(m.Load); err != nil {
			return nil, err
		}
	case MsgAdmit:
		if err := w.admit(m); err != nil {
			return nil, err
		}
	case MsgAdmitted:
		if m.Answers != nil {
			w.uv(afList)
			w.uv(uint64(len(m.Answers)))
			for i := range m.Answers {
				w.answer(&m.Answers[i])
			}
		} else {
			w.uv(0)
			w.answer(m.Admitted)
		}
	case MsgStop:
		w.uv(uint64(len(m.Stop)))
		for _, s := range m.Stop {
			w.str(s.AllocID)
			w.str(s.JobID)
			w.str(s.Description)
		}
	case MsgReport:
		w.report(m.Report)
	}
	return w.b, nil
}

type wenc struct{ b []byte }

func (w *wenc) uv(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wenc) v(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wenc) str(s string) {
	w.uv(uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *wenc) doc(b []byte) {
	w.uv(uint64(len(b)))
	w.b = append(w.b, b...)
}
func (w *wenc) count(n int, isNil bool) {
	if isNil {
		w.uv(0)
		return
	}
	w.uv(uint64(n) + 1)
}
func (w *wenc) res(r structs.Resources) {
	w.v(r.CPU)
	w.v(r.MemoryMB)
}

func (w *wenc) load(l *Load) error {
	var f uint64
	if l.Delta {
		f |= lfDelta
	}
	if l.Node != nil {
		f |= lfNode
	}
	w.uv(f)
	if l.Node != nil {
		doc, err := json.Marshal(l.Node)
		if err != nil {
			return fmt.Errorf("load's node: %w", err)
		}
		w.doc(doc)
	}
	w.res(l.Used)
	w.v(int64(l.Tasks))
	w.str(l.HTTPAddr)
	w.str(l.State)
	w.uv(l.Seq)
	w.uv(l.Version)
	w.uv(uint64(l.Wire))
	return nil
}

func (w *wenc) admit(m *Message) error {
	doc, err := json.Marshal(m.Job)
	if err != nil {
		return fmt.Errorf("admit's job: %w", err)
	}
	w.doc(doc)
	// the copies without the job (it went once, above)
	allocs := make([]*structs.Allocation, len(m.Allocs))
	backing := make([]structs.Allocation, len(m.Allocs))
	for i, a := range m.Allocs {
		backing[i] = *a
		backing[i].Job = nil
		allocs[i] = &backing[i]
	}
	body, err := structs.EncodePlanBatch(&structs.ApplyPlanBatchRequest{Plans: []*structs.ApplyPlanRequest{{Allocs: allocs}}})
	if err != nil {
		return fmt.Errorf("admit's copies: %w", err)
	}
	w.doc(body)
	return nil
}

func (w *wenc) answer(a *Admitted) {
	w.str(a.AllocID)
	var f uint64
	if a.OK {
		f |= ansOK
	}
	if a.Full {
		f |= ansFull
	}
	w.uv(f)
	w.str(a.Reason)
	w.uv(a.Seq)
	w.res(a.Used)
}

func (w *wenc) report(r *Report) {
	w.uv(r.Seq)
	var f uint64
	if r.Delta {
		f = lfDelta
	}
	w.uv(f)
	w.count(len(r.Slots), r.Slots == nil)
	for _, s := range r.Slots {
		w.uv(uint64(s[0]))
		w.uv(uint64(s[1]))
	}
	w.count(len(r.Tasks), r.Tasks == nil)
	for i := range r.Tasks {
		t := &r.Tasks[i]
		w.str(t.AllocID)
		w.str(t.JobID)
		w.uv(t.JobVersion)
		w.str(t.Name)
		w.v(int64(t.Index))
		w.res(t.Resources)
		w.v(int64(t.Priority))
		w.str(t.ClientStatus)
		var f uint64
		if t.DesiredStop {
			f |= tfDesiredStop
		}
		if t.TaskState.Failed {
			f |= tfFailed
		}
		w.uv(f)
		ts := &t.TaskState
		w.str(ts.State)
		w.v(int64(ts.Restarts))
		w.v(int64(ts.ExitCode))
		w.v(ts.StartedAt)
		w.v(ts.FinishedAt)
		w.v(int64(ts.PID))
		w.count(len(ts.Events), ts.Events == nil)
		for _, ev := range ts.Events {
			w.v(ev.Time)
			w.str(ev.Type)
			w.str(ev.Message)
		}
		w.v(t.CreateTime)
		w.uv(t.CreateIndex)
		w.v(int64(t.RescheduleCount))
		w.str(t.Previous)
	}
}

// decodeWireBatch decodes a binary batch (b[0] == wireV1) and checks
// each message as Decode does.
func decodeWireBatch(b []byte) ([]*Message, error) {
	d := &wdec{binwire.Decoder{B: b, Off: 1}}
	n := d.Uvarint("message count")
	if d.Err == nil && n > MaxBatch {
		return nil, fmt.Errorf("%w: %d messages in a batch, limit %d", ErrBadMessage, n, MaxBatch)
	}
	if d.Err == nil && n > uint64(len(b)-d.Off) {
		d.Fail("%d messages cannot fit the %d bytes left", n, len(b)-d.Off)
	}
	if d.Err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, d.Err)
	}
	out := make([]*Message, 0, n)
	for i := range n {
		e := d.Bytes(d.Uvarint("message length"), "message")
		if d.Err != nil {
			return nil, fmt.Errorf("%w: message %d of %d: %w", ErrBadMessage, i, n, d.Err)
		}
		m, err := decodeWireEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d of %d: %w", ErrBadMessage, i, n, err)
		}
		if err := check(m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if d.Off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the batch", ErrBadMessage, len(b)-d.Off)
	}
	return out, nil
}

// decodeWireEntry decodes one entry of a binary batch (without check).
func decodeWireEntry(e []byte) (*Message, error) {
	if len(e) == 0 {
		return nil, fmt.Errorf("empty message")
	}
	if e[0] == '{' {
		m := new(Message)
		if err := json.Unmarshal(e, m); err != nil {
			return nil, err
		}
		return m, nil
	}
	d := &wdec{binwire.Decoder{B: e, Off: 1}}
	m := &Message{}
	switch e[0] {
	case wtLoad:
		m.Type = MsgLoad
	case wtAdmit:
		m.Type = MsgAdmit
	case wtAdmitted:
		m.Type = MsgAdmitted
	case wtStop:
		m.Type = MsgStop
	case wtReport:
		m.Type = MsgReport
	default:
		return nil, fmt.Errorf("unknown message type byte %d", e[0])
	}
	m.From = d.str("from")
	m.Inc = d.str("inc")
	switch m.Type {
	case MsgLoad:
		m.Load = d.load()
	case MsgAdmit:
		d.admit(m)
	case MsgAdmitted:
		switch f := d.Uvarint("admitted form"); {
		case d.Err != nil:
		case f == afList:
			n := d.count("answers", maxAdmits, false)
			if d.Err == nil {
				m.Answers = make([]Admitted, n)
				for i := range m.Answers {
					d.answer(&m.Answers[i])
				}
			}
		case f == 0:
			m.Admitted = new(Admitted)
			d.answer(m.Admitted)
		default:
			d.Fail("admitted form %d is not 0 or 1", f)
		}
	case MsgStop:
		n := d.count("stops", maxStopIDs, false)
		if d.Err == nil {
			m.Stop = make([]StopRequest, n)
			for i := range m.Stop {
				s := &m.Stop[i]
				s.AllocID = d.str("stop alloc_id")
				s.JobID = d.str("stop job_id")
				s.Description = d.str("stop description")
			}
		}
	case MsgReport:
		m.Report = d.report()
	}
	if d.Err == nil && d.Off != len(e) {
		d.Fail("%d bytes after the %s message", len(e)-d.Off, m.Type)
	}
	if d.Err != nil {
		return nil, fmt.Errorf("%s message: %w", m.Type, d.Err)
	}
	return m, nil
}

// wdec reads a binary message. The first error sticks: later reads give
// zero values, and the caller checks Err at the end.
type wdec struct{ binwire.Decoder }

func (d *wdec) int(what string) int {
	v := d.Varint(what)
	if int64(int(v)) != v {
		d.Fail("%s: %d does not fit an int", what, v)
		return 0
	}
	return int(v)
}

func (d *wdec) str(what string) string {
	n := d.Uvarint(what)
	if d.Err == nil && n > maxWireString {
		d.Fail("%s: string of %d bytes, limit %d", what, n, maxWireString)
	}
	return intern(d.Bytes(n, what))
}

// intern returns the status and state words every report repeats without
// allocating a string for each.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case structs.AllocClientPending:
		return structs.AllocClientPending
	case structs.AllocClientRunning:
		return structs.AllocClientRunning
	case structs.AllocClientComplete:
		return structs.AllocClientComplete
	case structs.AllocClientFailed:
		return structs.AllocClientFailed
	case structs.AllocClientLost:
		return structs.AllocClientLost
	case structs.TaskStateDead:
		return structs.TaskStateDead
	case StateUp:
		return StateUp
	}
	return string(b)
}

// count reads a list length: at most limit, and (each item taking at
// least one byte) at most what is left; -1 for nil when nilable.
func (d *wdec) count(what string, limit int, nilable bool) int {
	n := d.Uvarint(what)
	if d.Err != nil {
		return 0
	}
	if nilable {
		if n == 0 {
			return -1
		}
		n--
	}
	if n > uint64(limit) {
		d.Fail("%s: %d items, limit %d", what, n, limit)
		return 0
	}
	if n > uint64(len(d.B)-d.Off) {
		d.Fail("%s: %d items cannot fit the %d bytes left", what, n, len(d.B)-d.Off)
		return 0
	}
	return int(n)
}

func (d *wdec) flags(what string, all uint64) uint64 {
	f := d.Uvarint(what)
	if f&^all != 0 {
		d.Fail("%s %#x: unknown bits", what, f)
	}
	return f
}

func (d *wdec) res(what string) structs.Resources {
	return structs.Resources{CPU: d.Varint(what + " cpu"), MemoryMB: d.Varint(what + " memory_mb")}
}

func (d *wdec) load() *Load {
	l := &Load{}
	f := d.flags("load flags", lfAll)
	l.Delta = f&lfDelta != 0
	if f&lfNode != 0 {
		doc := d.Bytes(d.Uvarint("load node"), "load node")
		if d.Err == nil {
			if err := json.Unmarshal(doc, &l.Node); err != nil {
				d.Fail("load node: %w", err)
			}
		}
		if d.Err == nil && l.Node == nil {
			d.Fail("load node: null")
		}
	}
	l.Used = d.res("load used")
	l.Tasks = d.int("load tasks")
	l.HTTPAddr = d.str("load http_addr")
	l.State = d.str("load state")
	l.Seq = d.Uvarint("load seq")
	l.Version = d.Uvarint("load version")
	w := d.Uvarint("load wire")
	if w > 255 {
		d.Fail("load wire %d", w)
	}
	l.Wire = uint8(w)
	return l
}

func (d *wdec) admit(m *Message) {
	doc := d.Bytes(d.Uvarint("admit job"), "admit job")
	if d.Err != nil {
		return
	}
	if err := json.Unmarshal(doc, &m.Job); err != nil {
		d.Fail("admit job: %w", err)
		return
	}
	if m.Job == nil {
		d.Fail("admit job: null")
		return
	}
	body := d.Bytes(d.Uvarint("admit copies"), "admit copies")
	if d.Err != nil {
		return
	}
	req, err := structs.DecodePlanBatch(body)
	if err != nil {
		d.Fail("admit copies: %w", err)
		return
	}
	if len(req.Plans) != 1 || req.Plans[0] == nil || req.Plans[0].Allocs == nil {
		d.Fail("admit copies: want one list of copies")
		return
	}
	m.Allocs = req.Plans[0].Allocs // check gives each its job
}

func (d *wdec) answer(a *Admitted) {
	a.AllocID = d.str("answer alloc_id")
	f := d.flags("answer flags", ansAll)
	a.OK, a.Full = f&ansOK != 0, f&ansFull != 0
	a.Reason = d.str("answer reason")
	a.Seq = d.Uvarint("answer seq")
	a.Used = d.res("answer used")
}

func (d *wdec) slot(what string) uint16 { return d.Slot(what, numSlots) }

func (d *wdec) report() *Report {
	r := &Report{}
	r.Seq = d.Uvarint("report seq")
	r.Delta = d.flags("report flags", lfDelta) != 0
	if n := d.count("report slots", maxSlotRanges, true); n >= 0 && d.Err == nil {
		r.Slots = make([][2]uint16, n)
		for i := range r.Slots {
			r.Slots[i] = [2]uint16{d.slot("report slot range start"), d.slot("report slot range end")}
		}
	}
	if n := d.count("report tasks", maxReportTasks, true); n >= 0 && d.Err == nil {
		r.Tasks = make([]TaskReport, n)
		for i := range r.Tasks {
			if d.Err != nil {
				break
			}
			d.task(&r.Tasks[i])
		}
	}
	return r
}

func (d *wdec) task(t *TaskReport) {
	t.AllocID = d.str("task alloc_id")
	t.JobID = d.str("task job_id")
	t.JobVersion = d.Uvarint("task job_version")
	t.Name = d.str("task name")
	t.Index = d.int("task index")
	t.Resources = d.res("task resources")
	t.Priority = d.int("task priority")
	t.ClientStatus = d.str("task client_status")
	f := d.flags("task flags", tfAll)
	t.DesiredStop = f&tfDesiredStop != 0
	ts := &t.TaskState
	ts.Failed = f&tfFailed != 0
	ts.State = d.str("task state")
	ts.Restarts = d.int("task restarts")
	ts.ExitCode = d.int("task exit_code")
	ts.StartedAt = d.Varint("task started_at")
	ts.FinishedAt = d.Varint("task finished_at")
	ts.PID = d.int("task pid")
	if n := d.count("task events", maxTaskEvents, true); n >= 0 && d.Err == nil {
		ts.Events = make([]structs.TaskEvent, n)
		for i := range ts.Events {
			ev := &ts.Events[i]
			ev.Time = d.Varint("task event time")
			ev.Type = d.str("task event type")
			ev.Message = d.str("task event message")
		}
	}
	t.CreateTime = d.Varint("task create_time")
	t.CreateIndex = d.Uvarint("task create_index")
	t.RescheduleCount = d.int("task reschedule_count")
	t.Previous = d.str("task previous")
}
