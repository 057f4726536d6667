package peerexec

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// countRunner counts the starts of each allocation; tasks end only when
// the test says so (TaskUpdate).
type countRunner struct{ starts map[string]int }

func (r *countRunner) Start(a *structs.Allocation) error { r.starts[a.ID]++; return nil }
func (r *countRunner) Stop(string)                       {}

// TestFinishedTaskReportedThenForgotten: a peer that keeps few finished
// tasks (MaxTerminal) forgets one only after a report carried how it
// ended, and an admit of it repeated after that (a retry that waited in
// a queue) does not run it again. Before, a task finished and forgotten
// between two report rounds was never reported complete (its owner,
// seeing it no longer listed, marked it lost and placed the batch copy
// again), and a late repeated admit started it a second time.
func TestFinishedTaskReportedThenForgotten(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig("w")
	cfg.Seed, cfg.MaxTerminal = 1, 0
	cfg.Node = structs.Node{Capacity: structs.Resources{CPU: 1000, MemoryMB: 1000},
		Attributes: map[string]string{structs.DriverAttrPrefix + "mock": "1"}}
	var sent []*Message
	r := &countRunner{starts: map[string]int{}}
	e, err := New(cfg, func(to string, m *Message) {
		if to == "o" {
			sent = append(sent, m)
		}
	}, NewMemStore(), r)
	if err != nil {
		t.Fatal(err)
	}
	cv := ClusterView{OK: true, Members: []string{"o", "w"}, Failed: map[string]bool{}, Owner: func(uint16) string { return "o" }, Version: 1}
	job := simJob("etl", structs.JobTypeBatch, 1)
	admit := func() *Admitted {
		sent = nil
		e.Step(now, cv, &Message{Type: MsgAdmit, From: "o", Inc: "o1", Job: job,
			Allocs: []*structs.Allocation{{ID: "a1", JobID: job.ID, Name: "etl[0]", Resources: job.Resources, DesiredStatus: structs.AllocDesiredRun}}})
		for _, m := range sent {
			if m.Type == MsgAdmitted {
				ans := m.answers()
				return &ans[0]
			}
		}
		t.Fatal("no answer to the admit")
		return nil
	}
	if ans := admit(); !ans.OK || r.starts["a1"] != 1 {
		t.Fatalf("first admit: %+v, %d starts", ans, r.starts["a1"])
	}
	e.Tick(now, cv) // reports it pending
	now = now.Add(10 * time.Millisecond)
	e.TaskUpdate(now, "a1", structs.AllocClientComplete, structs.TaskState{State: structs.TaskStateDead})
	sent = nil
	e.Tick(now, cv) // its end goes out before it may be forgotten
	reported := false
	for _, m := range sent {
		if m.Type != MsgReport {
			continue
		}
		for _, tr := range m.Report.Tasks {
			if tr.AllocID == "a1" && tr.ClientStatus == structs.AllocClientComplete {
				reported = true
			}
		}
	}
	if !reported {
		t.Fatalf("the task's completion was not reported before it was forgotten (sent %d messages)", len(sent))
	}
	now = now.Add(cfg.ReportInterval)
	e.Tick(now, cv)
	if e.LocalTask("a1") != nil {
		t.Fatal("a finished task past MaxTerminal, its end reported, is still kept")
	}
	if ans := admit(); !ans.OK || r.starts["a1"] != 1 {
		t.Fatalf("repeated admit of a task run and forgotten: %+v, %d starts, want an admission without a second start", ans, r.starts["a1"])
	}
	// the ID is forgotten too after TerminalRetention
	now = now.Add(cfg.TerminalRetention + time.Second)
	e.Tick(now, cv)
	if e.ended["a1"] || len(e.endedQ) != 0 {
		t.Fatal("the ID of a forgotten task is kept past TerminalRetention")
	}
}

// TestAdmitWindowAndRetries: an owner keeps at most MaxAdmitsInFlight
// copies unanswered at a peer (the rest wait at the owner, counted
// against MaxWaiting, which refuses more work with ErrBusy), and it
// sends an unanswered admit again, five times 1 s apart then with
// backoff, for as long as the peer
// is alive, never placing the copy again under another ID (before, an
// admit unanswered after three tries was given up and its copy placed
// again: a late peer then ran both).
func TestAdmitWindowAndRetries(t *testing.T) {
	p := newPair(t, func(uint16) string { return "o" })
	p.o.cfg.MaxAdmitsInFlight, p.o.cfg.MaxWaiting = 4, 10
	p.step(p.w.cfg.ReportInterval) // loads and reports go both ways
	if _, err := p.o.Register(p.now, p.cv, simJob("web", structs.JobTypeService, 10)); err != nil {
		t.Fatal(err)
	}
	// w hears nothing from now on: its messages wait
	ids := map[string]int{} // copy ID -> admits of it sent
	tick := func(d time.Duration) { p.tickWorkerDeaf(d, true, ids) }
	tick(p.o.cfg.TakeoverGrace)
	if len(ids) != 4 || p.o.waiting != 6 {
		t.Fatalf("after the first placement: %d copies admitted, %d waiting; want 4 (the window) and 6", len(ids), p.o.waiting)
	}
	if _, err := p.o.Register(p.now, p.cv, simJob("api", structs.JobTypeService, 5)); !errors.Is(err, ErrBusy) {
		t.Fatalf("a job past MaxWaiting: %v, want ErrBusy", err)
	}
	for range 30 {
		tick(time.Second)
	}
	if len(ids) != 4 {
		t.Fatalf("after 30 s without an answer: %d distinct copies admitted, want the same 4 (never placed again while the peer lives)", len(ids))
	}
	for id, n := range ids {
		// sent at 0, 1, 2, 3, 4 (admitQuickTries sends 1 s apart), then
		// 2, 4 and 5 s apart: 6, 10, 15, 20, 25, 30
		if n < 10 || n > 12 {
			t.Errorf("copy %s admitted %d times in 30 s; want about 11 (five sends 1 s apart, then backing off to 5 s)", id, n)
		}
	}
	// w hears everything now: all ten copies end up there, once each
	for range 10 {
		p.step(100 * time.Millisecond)
	}
	if n := p.w.LocalTasks(); n != 10 || p.o.waiting != 0 || len(p.o.inflight) != 0 {
		t.Fatalf("w runs %d tasks (want 10), %d copies waiting, in flight %v", n, p.o.waiting, p.o.inflight)
	}
	if _, err := p.o.Register(p.now, p.cv, simJob("api", structs.JobTypeService, 5)); err != nil {
		t.Fatalf("with nothing waiting: %v", err)
	}
}

// TestAdmitRetriesOverStream: an admit sent on a stream that stays up
// is not lost (a stream is ordered and reliable while it lasts), so an
// owner waits AdmitRetryMax before it sends it again, not AdmitTimeout:
// a peer that is merely slow is not sent every admit five more times in
// 5 s. When the stream ends (or is replaced), an unanswered admit goes
// again on the quick schedule, as over the cluster bus.
func TestAdmitRetriesOverStream(t *testing.T) {
	tests := []struct {
		name   string
		linked bool
		// sends of each copy in the first 20 s without an answer
		min, max int
	}{
		{"cluster bus", false, 8, 9}, // 0, 1, 2, 3, 4, then 6, 10, 15, 20
		{"stream up", true, 4, 5},    // 0, 5, 10, 15, 20
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, func(uint16) string { return "o" })
			if tc.linked {
				p.o.Linked("w", true)
				p.w.Linked("o", true)
			}
			p.step(p.w.cfg.ReportInterval)
			if _, err := p.o.Register(p.now, p.cv, simJob("web", structs.JobTypeService, 3)); err != nil {
				t.Fatal(err)
			}
			sends := map[string]int{}
			tick := func(d time.Duration) { p.tickWorkerDeaf(d, false, sends) } // w is slow: nothing reaches it yet
			tick(p.o.cfg.TakeoverGrace)
			for range 20 {
				tick(time.Second)
			}
			if len(sends) != 3 {
				t.Fatalf("%d copies admitted, want 3", len(sends))
			}
			for id, n := range sends {
				if n < tc.min || n > tc.max {
					t.Errorf("copy %s sent %d times in 20 s, want %d-%d", id, n, tc.min, tc.max)
				}
			}
			if !tc.linked {
				return
			}
			// the stream ends: what was sent on it may be lost
			p.o.Linked("w", false)
			before := maps.Clone(sends)
			tick(p.o.cfg.AdmitTimeout)
			for id, n := range sends {
				if n != before[id]+1 {
					t.Errorf("copy %s: sent %d times after the stream ended, want once more at once", id, n-before[id])
				}
			}
			// w catches up: each copy runs once
			for range 10 {
				p.step(100 * time.Millisecond)
			}
			if n := p.w.LocalTasks(); n != 3 {
				t.Fatalf("w runs %d tasks, want 3", n)
			}
		})
	}
}

// tickWorkerDeaf advances the pair by d while nothing reaches w: the
// owner ticks (and w too when tickW), messages to w stay queued, those to
// the owner are stepped, and each admit sent to w in this tick counts in
// admits by copy ID.
func (p *pair) tickWorkerDeaf(d time.Duration, tickW bool, admits map[string]int) {
	p.now = p.now.Add(d)
	waiting := len(p.queue) // sent before, counted then
	if tickW {
		p.w.Tick(p.now, p.cv)
	}
	p.o.Tick(p.now, p.cv)
	var keep []pairMsg
	for i, m := range p.queue {
		if m.to == "w" {
			if m.m.Type == MsgAdmit && i >= waiting {
				for _, a := range m.m.admits() {
					admits[a.ID]++
				}
			}
			keep = append(keep, m)
			continue
		}
		p.o.Step(p.now, p.cv, m.m)
	}
	p.queue = keep
}
