package driver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// mockSchema is what the mock driver accepts in a job's config block.
var mockSchema = driverschema.Schema{Driver: "mock", Options: []driverschema.Option{
	{Name: "run_for", Kind: driverschema.KindDuration, Doc: "how long the task runs (0: until stopped for a service job, exits at once for a batch job)"},
	{Name: "exit_code", Kind: driverschema.KindInt, Min: 0, Max: 255, Doc: "the code it exits with"},
	{Name: "fail_start", Kind: driverschema.KindBool, Doc: "Start fails"},
}}

func init() { driverschema.Register(mockSchema) }

// Clock is the time source of the mock driver; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable AfterFunc timer.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// MockDriver simulates tasks with a timer: no process, no goroutine per
// task, so one process can host thousands of simulated nodes.
//
// Config: run_for (duration string; 0 or absent = run until stopped for a
// service job, exit at once for a batch job), exit_code (int, 0-255),
// fail_start (bool: Start fails).
type MockDriver struct {
	clock Clock
}

var _ Driver = (*MockDriver)(nil)

// NewMock returns the mock driver; a nil clock means real time.
func NewMock(clock Clock) *MockDriver {
	if clock == nil {
		clock = realClock{}
	}
	return &MockDriver{clock: clock}
}

// Name implements Driver.
func (d *MockDriver) Name() string { return "mock" }

// Validate implements Driver.
func (d *MockDriver) Validate(config map[string]any) []structs.FieldError {
	return mockSchema.Validate(config)
}

type mockConfig struct {
	RunFor    time.Duration
	ExitCode  int
	FailStart bool
}

func parseMock(config map[string]any) (mockConfig, []structs.FieldError) {
	if errs := mockSchema.Validate(config); len(errs) > 0 {
		return mockConfig{}, errs
	}
	return mockConfig{
		RunFor:    driverschema.Duration(config, "run_for"),
		ExitCode:  int(driverschema.Int(config, "exit_code")),
		FailStart: driverschema.Bool(config, "fail_start"),
	}, nil
}

// mockState is the mock driver's part of a Handle: enough to know, after a
// restart, when the simulated task ends.
type mockState struct {
	StartedAt int64 `json:"started_at"` // unix nanoseconds
	RunFor    int64 `json:"run_for"`    // nanoseconds
	Forever   bool  `json:"forever,omitempty"`
	ExitCode  int   `json:"exit_code"`
}

// appendJSON appends st as json.Marshal writes it, without reflection:
// simulated clusters start tasks by the hundred thousand.
func (st mockState) appendJSON(b []byte) []byte {
	b = append(b, `{"started_at":`...)
	b = strconv.AppendInt(b, st.StartedAt, 10)
	b = append(b, `,"run_for":`...)
	b = strconv.AppendInt(b, st.RunFor, 10)
	if st.Forever {
		b = append(b, `,"forever":true`...)
	}
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(st.ExitCode), 10)
	return append(b, '}')
}

// Start implements Driver.
func (d *MockDriver) Start(cfg *TaskConfig) (Task, error) {
	c, errs := parseMock(cfg.Config)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: invalid mock config: %w", ErrStartFailed, errs[0])
	}
	if c.FailStart {
		return nil, fmt.Errorf("%w: mock config sets fail_start", ErrStartFailed)
	}
	now := d.clock.Now()
	st := mockState{StartedAt: now.UnixNano(), RunFor: int64(c.RunFor), ExitCode: c.ExitCode,
		Forever: c.RunFor == 0 && cfg.JobType != structs.JobTypeBatch}
	h := &Handle{Driver: d.Name(), AllocID: cfg.AllocID, AllocDir: cfg.AllocDir, StartedAt: st.StartedAt, State: st.appendJSON(nil)}
	return d.arm(h, st), nil
}

// Recover implements Driver: the task ends at its saved start time plus
// run_for, possibly already.
func (d *MockDriver) Recover(h *Handle, cfg *TaskConfig) (Task, error) {
	if h == nil || h.Driver != d.Name() {
		return nil, fmt.Errorf("mock driver: cannot recover a handle of driver %q", handleDriver(h))
	}
	var st mockState
	if err := json.Unmarshal(h.State, &st); err != nil {
		return nil, fmt.Errorf("alloc %s: mock handle: %w", h.AllocID, err)
	}
	return d.arm(h, st), nil
}

func (d *MockDriver) arm(h *Handle, st mockState) *mockTask {
	t := &mockTask{h: h, clock: d.clock, exited: make(chan struct{})}
	if st.Forever {
		return t
	}
	end := time.Unix(0, st.StartedAt).Add(time.Duration(st.RunFor))
	res := ExitResult{ExitCode: st.ExitCode, FinishedAt: end}
	remaining := end.Sub(d.clock.Now())
	if remaining <= 0 {
		t.end(res)
		return t
	}
	t.mu.Lock()
	t.timer = d.clock.AfterFunc(remaining, func() { t.end(res) })
	t.mu.Unlock()
	return t
}

type mockTask struct {
	h      *Handle
	clock  Clock
	exited chan struct{}

	mu     sync.Mutex
	timer  Timer
	result ExitResult
	done   bool
}

func (t *mockTask) Handle() *Handle         { return t.h }
func (t *mockTask) Exited() <-chan struct{} { return t.exited }

func (t *mockTask) Result() ExitResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

func (t *mockTask) end(r ExitResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	t.result = r
	close(t.exited)
}

// Stop implements Task: a simulated task honours SIGTERM at once.
func (t *mockTask) Stop(time.Duration) error {
	t.mu.Lock()
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
	t.end(ExitResult{ExitCode: 128 + int(syscall.SIGTERM), Signal: int(syscall.SIGTERM), FinishedAt: t.clock.Now()})
	return nil
}

// Detach implements Task.
func (t *mockTask) Detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
	}
}
