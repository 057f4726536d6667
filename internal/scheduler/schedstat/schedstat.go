// Package schedstat holds the figures every scheduling architecture keeps
// the same way: a window of recent latencies for percentiles, and metric
// registration that survives a leader building a new scheduler on the same
// registry.
package schedstat

import (
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c, or returns the collector already registered under
// the same name: a server that regains leadership builds a new scheduler on
// the same registry.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

// WindowSize bounds the samples kept for percentiles.
const WindowSize = 1024

// Window is a ring of the most recent latency samples. It is not safe for
// concurrent use; callers hold their own lock.
type Window struct {
	buf  []time.Duration
	next int
}

// Add records one sample, replacing the oldest once the window is full.
func (w *Window) Add(d time.Duration) {
	if len(w.buf) < WindowSize {
		w.buf = append(w.buf, d)
		return
	}
	w.buf[w.next] = d
	w.next = (w.next + 1) % WindowSize
}

// Percentiles returns the nearest-rank percentiles ps (0..100) in ms.
func (w *Window) Percentiles(ps ...float64) []float64 {
	out := make([]float64, len(ps))
	if len(w.buf) == 0 {
		return out
	}
	s := slices.Clone(w.buf)
	slices.Sort(s)
	for i, p := range ps {
		k := int(p/100*float64(len(s))+0.5) - 1
		k = min(max(k, 0), len(s)-1)
		out[i] = float64(s[k]) / float64(time.Millisecond)
	}
	return out
}
