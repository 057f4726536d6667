package structs

// The binary form of an *AllocHealth, shared by the report and plan
// codecs. Written only when the health is not nil (a mask bit of the
// report or allocation says so, so bodies written before health existed
// decode with Health nil): a flags uvarint (bit 0 healthy, bit 1 the
// checks list is not nil), the verdict time, then per check its name and
// status (string table), output (inline) and time.
const (
	hfHealthy = 1 << iota
	hfChecks
	hfAll = hfChecks<<1 - 1
)

func (e *encoder) health(h *AllocHealth) {
	var f uint64
	if h.Healthy {
		f |= hfHealthy
	}
	if h.Checks != nil {
		f |= hfChecks
	}
	e.uvarint(f)
	e.time(h.Time)
	if h.Checks == nil {
		return
	}
	e.uvarint(uint64(len(h.Checks)))
	for _, c := range h.Checks {
		e.ref(c.Name)
		e.ref(c.Status)
		e.str(c.Output)
		e.time(c.Time)
	}
}

func (d *decoder) health() *AllocHealth {
	f := d.uvarint("health flags")
	if d.err != nil {
		return nil
	}
	if f&^hfAll != 0 {
		d.fail("health flags %#x have unknown bits", f)
		return nil
	}
	h := &AllocHealth{Healthy: f&hfHealthy != 0}
	h.Time = d.time("health time")
	if f&hfChecks == 0 {
		return h
	}
	n := d.count("health checks")
	if d.err != nil {
		return nil
	}
	h.Checks = make([]CheckStatus, n)
	for i := range h.Checks {
		c := &h.Checks[i]
		c.Name = d.ref("check name")
		c.Status = d.ref("check status")
		c.Output = d.str("check output")
		c.Time = d.time("check time")
		if d.err != nil {
			return nil
		}
	}
	return h
}
