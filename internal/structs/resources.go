package structs

import "fmt"

// Resources is an amount of schedulable capacity.
//
// CPU is in millicores (1000 = one core), as Kubernetes counts it, so small
// tasks can ask for a fraction of a core without floating point. Memory is in
// mebibytes (MiB).
type Resources struct {
	CPU      int64 `json:"cpu" yaml:"cpu"`
	MemoryMB int64 `json:"memory_mb" yaml:"memory_mb"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, MemoryMB: r.MemoryMB + o.MemoryMB}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, MemoryMB: r.MemoryMB - o.MemoryMB}
}

// Fits reports whether o fits inside r, and if not, which dimension is short
// ("cpu" or "memory").
func (r Resources) Fits(o Resources) (bool, string) {
	if o.CPU > r.CPU {
		return false, "cpu"
	}
	if o.MemoryMB > r.MemoryMB {
		return false, "memory"
	}
	return true, ""
}

// IsZero reports whether no resource is set.
func (r Resources) IsZero() bool { return r.CPU == 0 && r.MemoryMB == 0 }

func (r Resources) String() string {
	return fmt.Sprintf("cpu=%dm mem=%dMiB", r.CPU, r.MemoryMB)
}
