package schedstat

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestWindowPercentiles(t *testing.T) {
	tests := []struct {
		name    string
		samples int // samples 1ms..N ms, in order
		p50     float64
		p99     float64
	}{
		{"empty", 0, 0, 0},
		{"one", 1, 1, 1},
		{"hundred", 100, 50, 99},
		// Past WindowSize the oldest samples are dropped: only the last
		// 1024 (ms 977..2000) remain.
		{"ring", 2000, 1488, 1990},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w Window
			for i := 1; i <= tc.samples; i++ {
				w.Add(time.Duration(i) * time.Millisecond)
			}
			got := w.Percentiles(50, 99)
			if got[0] != tc.p50 || got[1] != tc.p99 {
				t.Fatalf("p50, p99 = %v, want %v, %v", got, tc.p50, tc.p99)
			}
		})
	}
}

func TestRegisterReusesExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	b := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if a != b {
		t.Fatal("second registration did not return the registered collector")
	}
}
