package driver

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// fakeClock fires timers synchronously from Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func exited(task Task) bool {
	select {
	case <-task.Exited():
		return true
	default:
		return false
	}
}

func TestMockValidate(t *testing.T) {
	cases := []struct {
		name   string
		config map[string]any
		fields []string
	}{
		{"empty", nil, nil},
		{"ok", map[string]any{"run_for": "10s", "exit_code": 3.0, "fail_start": false}, nil},
		{"yaml int", map[string]any{"exit_code": 3}, nil},
		{"bad duration", map[string]any{"run_for": "ten"}, []string{"run_for"}},
		{"number duration", map[string]any{"run_for": 10.0}, []string{"run_for"}},
		{"negative duration", map[string]any{"run_for": "-1s"}, []string{"run_for"}},
		{"exit code range", map[string]any{"exit_code": 256.0}, []string{"exit_code"}},
		{"exit code fraction", map[string]any{"exit_code": 1.5}, []string{"exit_code"}},
		{"fail_start type", map[string]any{"fail_start": "yes"}, []string{"fail_start"}},
		{"unknown", map[string]any{"runfor": "1s"}, []string{"runfor"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range mockSchema.Validate(tc.config) {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields = %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestMockTiming(t *testing.T) {
	cases := []struct {
		name    string
		typ     structs.JobType
		config  map[string]any
		endsAt  time.Duration // -1: runs until stopped
		code    int
		failErr bool
	}{
		{"run_for", structs.JobTypeBatch, map[string]any{"run_for": "10s", "exit_code": 3}, 10 * time.Second, 3, false},
		{"service forever", structs.JobTypeService, nil, -1, 0, false},
		{"batch immediate", structs.JobTypeBatch, nil, 0, 0, false},
		{"fail_start", structs.JobTypeService, map[string]any{"fail_start": true}, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			d := NewMock(clk)
			task, err := d.Start(&TaskConfig{AllocID: "a", JobType: tc.typ, Config: tc.config})
			if tc.failErr {
				if !errors.Is(err, ErrStartFailed) {
					t.Fatalf("err = %v, want ErrStartFailed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.endsAt < 0 {
				clk.Advance(1000 * time.Hour)
				if exited(task) {
					t.Fatal("service task with run_for 0 ended")
				}
				return
			}
			if tc.endsAt > 0 {
				clk.Advance(tc.endsAt - time.Millisecond)
				if exited(task) {
					t.Fatal("ended early")
				}
				clk.Advance(time.Millisecond)
			}
			if !exited(task) {
				t.Fatal("did not end on time")
			}
			if r := task.Result(); r.ExitCode != tc.code {
				t.Fatalf("result = %+v, want exit code %d", r, tc.code)
			}
		})
	}
}

func TestMockStopAndRecover(t *testing.T) {
	clk := newFakeClock()
	d := NewMock(clk)
	cfg := &TaskConfig{AllocID: "a", JobType: structs.JobTypeBatch, Config: map[string]any{"run_for": "10s", "exit_code": 4}}
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	task.Detach()
	clk.Advance(10 * time.Second)
	if exited(task) {
		t.Fatal("detached task reported an exit")
	}

	// Re-attached before its end: ends at start + run_for.
	clk2 := newFakeClock()
	d2 := NewMock(clk2)
	clk2.Advance(4 * time.Second)
	again, err := d2.Recover(task.Handle(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk2.Advance(5 * time.Second)
	if exited(again) {
		t.Fatal("recovered task ended early")
	}
	clk2.Advance(time.Second)
	if !exited(again) || again.Result().ExitCode != 4 {
		t.Fatalf("recovered task: exited=%v result=%+v", exited(again), again.Result())
	}

	// Re-attached after its end: already exited.
	late, err := d.Recover(task.Handle(), cfg)
	if err != nil || !exited(late) {
		t.Fatalf("late recover: err=%v exited=%v", err, exited(late))
	}

	svc, _ := d.Start(&TaskConfig{AllocID: "b", JobType: structs.JobTypeService})
	if err := svc.Stop(time.Second); err != nil || !exited(svc) || svc.Result().Signal == 0 {
		t.Fatalf("stop: err=%v result=%+v", err, svc.Result())
	}
	if _, err := d.Recover(&Handle{Driver: "exec"}, cfg); err == nil {
		t.Fatal("recovered a handle of another driver")
	}
}

func BenchmarkMockStartStop(b *testing.B) {
	d := NewMock(nil)
	cfg := &TaskConfig{AllocID: "a", JobType: structs.JobTypeService, Config: map[string]any{"run_for": "1h"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		task, err := d.Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = task.Stop(0)
	}
}

// TestMockStateJSON checks the hand-written handle state against
// encoding/json, which Recover reads it with.
func TestMockStateJSON(t *testing.T) {
	for _, st := range []mockState{
		{},
		{StartedAt: 1_700_000_000_000_000_000, RunFor: 1_500_000_000, ExitCode: 3},
		{StartedAt: -1 << 63, RunFor: 1<<63 - 1, Forever: true, ExitCode: 255},
	} {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON(%+v) = %s, want %s", st, got, want)
		}
	}
}
