package schedtest

import (
	"sync"
	"time"
)

// Clock is a manual clock: time moves only when a test advances it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// FakeTimer records a timer a scheduler started (its delay D and function
// F); the test fires it by calling F.
type FakeTimer struct {
	D       time.Duration
	F       func()
	Stopped bool
}

// Stop marks the timer stopped.
func (f *FakeTimer) Stop() bool { f.Stopped = true; return true }
