package peerexec

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// pair is two engines with a synchronous network: w runs tasks, o owns
// every slot (or the slots view says).
type pair struct {
	t     *testing.T
	now   time.Time
	cv    ClusterView
	w, o  *Engine
	queue []pairMsg
	sent  []pairMsg // every message w sent, for inspection
}

type pairMsg struct {
	to string
	m  *Message
}

func newPair(t *testing.T, owner func(uint16) string) *pair {
	t.Helper()
	p := &pair{t: t, now: time.Unix(1_700_000_000, 0)}
	p.cv = ClusterView{OK: true, Members: []string{"o", "w"}, Failed: map[string]bool{}, Owner: owner, Version: 1}
	mk := func(id string, cpu int64) *Engine {
		cfg := DefaultConfig(id)
		cfg.Seed = 1
		cfg.Node = structs.Node{Capacity: structs.Resources{CPU: cpu, MemoryMB: 100000},
			Attributes: map[string]string{structs.DriverAttrPrefix + "mock": "1"}}
		cfg.HTTPAddr = id + ":1"
		e, err := New(cfg, func(to string, m *Message) {
			p.queue = append(p.queue, pairMsg{to, m})
			if id == "w" {
				p.sent = append(p.sent, pairMsg{to, m})
			}
		}, NewMemStore(), &nopRunner{})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	p.w, p.o = mk("w", 100000), mk("o", 0) // o has no room: every copy goes to w
	return p
}

// step advances time, ticks both engines and delivers until quiet.
func (p *pair) step(d time.Duration) {
	p.now = p.now.Add(d)
	p.sent = nil
	p.w.Tick(p.now, p.cv)
	p.o.Tick(p.now, p.cv)
	for len(p.queue) > 0 {
		m := p.queue[0]
		p.queue = p.queue[1:]
		e := map[string]*Engine{"w": p.w, "o": p.o}[m.to]
		if e != nil {
			e.Step(p.now, p.cv, m.m)
		}
	}
}

func (p *pair) reports() []*Report {
	var out []*Report
	for _, m := range p.sent {
		if m.m.Type == MsgReport && m.to == "o" {
			out = append(out, m.m.Report)
		}
	}
	return out
}

func (p *pair) record(job string) map[string]*structs.Allocation {
	st, err := p.o.Job(job)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]*structs.Allocation{}
	for _, a := range st.Allocations {
		out[a.ID] = a
	}
	return out
}

func TestReportDeltas(t *testing.T) {
	p := newPair(t, func(uint16) string { return "o" })
	ri := p.w.cfg.ReportInterval
	p.step(ri)
	if r := p.reports(); len(r) != 1 || r[0].Delta {
		t.Fatalf("without a stream: %+v, want one full report", r)
	}
	if _, err := p.o.Register(p.now, p.cv, simJob("web", structs.JobTypeService, 2)); err != nil {
		t.Fatal(err)
	}
	p.step(p.o.cfg.TakeoverGrace) // past the grace: placed on w
	if n := p.w.LocalTasks(); n != 2 {
		t.Fatalf("w runs %d tasks, want 2", n)
	}
	p.w.Linked("o", true)
	p.step(ri)
	if r := p.reports(); len(r) != 1 || r[0].Delta || len(r[0].Tasks) != 2 {
		t.Fatalf("first report on a stream: %+v, want a full one of 2 tasks", r)
	}
	p.step(ri)
	if r := p.reports(); len(r) != 0 {
		t.Fatalf("nothing changed, yet reports went: %+v", r)
	}
	ids := p.w.Jobs() // w owns nothing
	if len(ids) != 0 {
		t.Fatalf("w owns %v", ids)
	}
	live := p.w.LiveTasks()
	p.w.TaskUpdate(p.now, live[0].ID, structs.AllocClientRunning, structs.TaskState{State: structs.TaskStateRunning})
	p.step(ri)
	r := p.reports()
	if len(r) != 1 || !r[0].Delta || len(r[0].Tasks) != 1 || r[0].Tasks[0].AllocID != live[0].ID {
		t.Fatalf("one task changed: %+v, want a delta of it", r)
	}
	if got := p.record("web")[live[0].ID]; got.ClientStatus != structs.AllocClientRunning {
		t.Fatalf("the owner's record after the delta: %s, want running", got.ClientStatus)
	}
	// a delta does not make the tasks it leaves out lost
	p.o.Step(p.now, p.cv, &Message{Type: MsgReport, From: "w", Inc: p.w.Inc(), Report: &Report{Seq: p.w.seq, Slots: [][2]uint16{{0, numSlots - 1}}, Delta: true}})
	for id, a := range p.record("web") {
		if a.ClientStatus == structs.AllocClientLost {
			t.Fatalf("%s lost after a delta that did not list it", id)
		}
	}
	// the full list goes again after FullReportInterval
	p.step(p.w.cfg.FullReportInterval)
	if r := p.reports(); len(r) != 1 || r[0].Delta || len(r[0].Tasks) != 2 {
		t.Fatalf("after the full-report interval: %+v, want a full report", r)
	}
	// a new stream starts with a full report
	p.w.Linked("o", false)
	p.w.Linked("o", true)
	p.step(ri)
	if r := p.reports(); len(r) != 1 || r[0].Delta {
		t.Fatalf("after a new stream: %+v, want a full report", r)
	}
	// the owner's slots change: full at once, without waiting for the interval
	p.cv.Owner = func(s uint16) string {
		if s < 100 {
			return "w"
		}
		return "o"
	}
	p.cv.Version++
	p.step(time.Millisecond)
	if r := p.reports(); len(r) != 1 || r[0].Delta || len(r[0].Slots) != 1 || r[0].Slots[0] != [2]uint16{100, numSlots - 1} {
		t.Fatalf("after a change of slots: %+v, want an immediate full report for the new slots", r)
	}
}

func TestTakeoverGraceEndsEarly(t *testing.T) {
	tests := []struct {
		name      string
		members   []string
		failed    []string
		reporters []string // full reports the new owner gets
		delta     bool
		early     bool
	}{
		{name: "every member reported", members: []string{"o", "w", "x"}, reporters: []string{"w", "x"}, early: true},
		{name: "one member silent", members: []string{"o", "w", "x"}, reporters: []string{"w"}},
		{name: "the silent member failed", members: []string{"o", "w", "x"}, failed: []string{"x"}, reporters: []string{"w"}, early: true},
		{name: "deltas do not count", members: []string{"o", "w", "x"}, reporters: []string{"w", "x"}, delta: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, func(uint16) string { return "" })
			p.cv.Members = tc.members
			for _, f := range tc.failed {
				p.cv.Failed[f] = true
			}
			p.step(time.Millisecond)
			// o gains every slot
			p.cv.Owner = func(uint16) string { return "o" }
			p.cv.Version++
			p.o.Tick(p.now, p.cv) // o's own report is handled at once
			if len(p.o.takeovers) != 1 {
				t.Fatalf("takeovers: %d, want 1", len(p.o.takeovers))
			}
			for _, from := range tc.reporters {
				p.o.Step(p.now, p.cv, &Message{Type: MsgReport, From: from, Inc: "i-" + from,
					Report: &Report{Slots: [][2]uint16{{0, numSlots - 1}}, Delta: tc.delta}})
			}
			p.now = p.now.Add(time.Millisecond)
			p.o.Tick(p.now, p.cv)
			inGrace := p.now.Before(p.o.graceTill[0])
			if inGrace == tc.early {
				t.Fatalf("in grace after the reports: %v, want %v", inGrace, !tc.early)
			}
			// without the reports the grace ends anyway after TakeoverGrace
			p.now = p.now.Add(p.o.cfg.TakeoverGrace)
			p.o.Tick(p.now, p.cv)
			if p.now.Before(p.o.graceTill[0]) || len(p.o.takeovers) != 0 {
				t.Fatal("grace not over after TakeoverGrace")
			}
		})
	}
	// a report covering only part of the gained slots does not end it
	p := newPair(t, func(uint16) string { return "" })
	p.step(time.Millisecond)
	p.cv.Owner = func(uint16) string { return "o" }
	p.cv.Version++
	p.o.Tick(p.now, p.cv)
	p.o.Step(p.now, p.cv, &Message{Type: MsgReport, From: "w", Inc: "i", Report: &Report{Slots: [][2]uint16{{0, 99}}}})
	p.now = p.now.Add(time.Millisecond)
	p.o.Tick(p.now, p.cv)
	if !p.now.Before(p.o.graceTill[0]) {
		t.Fatal("grace ended on a report that covers only some of the slots")
	}
}
