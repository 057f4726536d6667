package structs

import "fmt"

// Bits of a report's mask: statuses written only when they differ from the
// previous report of the entry.
const (
	umNil      = 1 << iota // a nil *AllocClientUpdate; nothing follows
	umIDString             // the ID is not a UUID: a string follows instead of 16 bytes
	umClientStatus
	umClientDescription
	umHealth // a non-nil Health follows the task state (codec_health.go)
	umAll    = umHealth<<1 - 1
)

// EncodeReportBatch returns the binary body of an
// AllocClientUpdateBatchBinaryType entry (without the type byte).
// DecodeReportBatch gives back an equal request.
func EncodeReportBatch(req *AllocClientUpdateBatchRequest) []byte {
	n := 64
	for i := range req.Nodes {
		n += 8 + 40*len(req.Nodes[i].Updates)
	}
	e := newEncoder(n)
	var prev AllocClientUpdate
	e.count(len(req.Nodes), req.Nodes == nil)
	for i := range req.Nodes {
		r := &req.Nodes[i]
		e.ref(r.NodeID)
		e.time(r.Time)
		e.count(len(r.Updates), r.Updates == nil)
		for _, u := range r.Updates {
			if u == nil {
				e.uvarint(umNil)
				continue
			}
			var m uint64
			if !isUUID(u.ID) {
				m |= umIDString
			}
			if u.ClientStatus != prev.ClientStatus {
				m |= umClientStatus
			}
			if u.ClientDescription != prev.ClientDescription {
				m |= umClientDescription
			}
			if u.Health != nil {
				m |= umHealth
			}
			e.uvarint(m)
			if m&umIDString != 0 {
				e.str(u.ID)
			} else {
				e.body = appendUUID(e.body, u.ID)
			}
			if m&umClientStatus != 0 {
				e.ref(u.ClientStatus)
			}
			if m&umClientDescription != 0 {
				e.ref(u.ClientDescription)
			}
			e.taskState(&u.TaskState, &prev.TaskState)
			if m&umHealth != 0 {
				e.health(u.Health)
			}
			prev = *u
		}
	}
	return e.finish()
}

// DecodeReportBatch decodes the body of an AllocClientUpdateBatchBinaryType
// entry.
func DecodeReportBatch(body []byte) (*AllocClientUpdateBatchRequest, error) {
	d := &decoder{b: body}
	d.header()
	req := &AllocClientUpdateBatchRequest{}
	if d.err == nil {
		if n := d.optCount("node count"); n >= 0 {
			req.Nodes = make([]AllocClientUpdateRequest, n)
		}
		var prev AllocClientUpdate
		for i := range req.Nodes {
			d.reportNode(&req.Nodes[i], &prev)
			if d.err != nil {
				d.err = fmt.Errorf("node %d of %d: %w", i, len(req.Nodes), d.err)
				break
			}
		}
	}
	d.end()
	if d.err != nil {
		return nil, fmt.Errorf("decoding report batch: %w", d.err)
	}
	return req, nil
}

func (d *decoder) reportNode(r *AllocClientUpdateRequest, prev *AllocClientUpdate) {
	r.NodeID = d.ref("node_id")
	r.Time = d.time("time")
	n := d.optCount("report count")
	if n < 0 {
		return
	}
	r.Updates = make([]*AllocClientUpdate, n)
	backing := make([]AllocClientUpdate, n)
	for i := range r.Updates {
		if d.report(&backing[i], prev) {
			r.Updates[i] = &backing[i]
		}
		if d.err != nil {
			d.err = fmt.Errorf("report %d of %d: %w", i, n, d.err)
			return
		}
	}
}

// report decodes one report into u and reports whether it is not nil.
func (d *decoder) report(u *AllocClientUpdate, prev *AllocClientUpdate) bool {
	m := d.uvarint("report mask")
	if d.err != nil {
		return false
	}
	if m&^umAll != 0 {
		d.fail("report mask %#x has unknown bits", m)
		return false
	}
	if m&umNil != 0 {
		if m != umNil {
			d.fail("report mask %#x: a nil report with fields", m)
		}
		return false
	}
	if m&umIDString != 0 {
		u.ID = d.str("report id")
	} else {
		u.ID = d.uuid("report id")
	}
	u.ClientStatus, u.ClientDescription = prev.ClientStatus, prev.ClientDescription
	if m&umClientStatus != 0 {
		u.ClientStatus = d.ref("report client_status")
	}
	if m&umClientDescription != 0 {
		u.ClientDescription = d.ref("report client_description")
	}
	d.taskState(&u.TaskState, &prev.TaskState)
	if m&umHealth != 0 {
		u.Health = d.health()
	}
	*prev = *u
	return true
}
