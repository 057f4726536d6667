package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// fingerprintingMock is the mock driver plus the hooks the docker driver
// implements, recording what the agent asks.
type fingerprintingMock struct {
	*driver.MockDriver
	mu     sync.Mutex
	passes int
	watch  string          // the alloc to ask the agent about
	owned  map[string]bool // alloc -> owned, from the last pass
}

func (f *fingerprintingMock) Fingerprint(context.Context) map[string]string {
	return map[string]string{"driver.fake": "true", "driver.fake.version": "1.2"}
}

func (f *fingerprintingMock) Cleanup(_ context.Context, owns func(string) bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passes++
	f.owned = map[string]bool{}
	for _, id := range []string{"unknown-alloc", f.watch} {
		if id != "" {
			f.owned[id] = owns(id)
		}
	}
	return 0, nil
}

// TestDriverHooks: a driver's fingerprint reaches the node's attributes,
// and its cleanup runs at start and periodically, told that only the
// allocations the agent runs are owned.
func TestDriverHooks(t *testing.T) {
	fake := &fingerprintingMock{MockDriver: driver.NewMock(nil)}
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) {
		c.Drivers = []driver.Driver{testDrivers(t)[0], fake} // exec and the fake
		c.DriverCleanupInterval = 10 * time.Millisecond
	})
	if got := a.Node().Attributes; got["driver.fake"] != "true" || got["driver.fake.version"] != "1.2" || got["os"] == "" {
		t.Fatalf("node attributes %v", got)
	}
	al := testAlloc(a.NodeID(), structs.JobTypeService, "mock", nil)
	fake.mu.Lock()
	fake.watch = al.ID
	fake.mu.Unlock()
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientRunning)
	eventually(t, "a cleanup pass that sees the running alloc", func() bool {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.owned[al.ID] && !fake.owned["unknown-alloc"]
	})
	fs.setDesired(al.ID, structs.AllocDesiredStop)
	fs.waitStatus(al.ID, structs.AllocClientComplete)
	eventually(t, "a cleanup pass that no longer owns the stopped alloc", func() bool {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return !fake.owned[al.ID]
	})
}
