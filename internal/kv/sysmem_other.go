//go:build !linux

package kv

// totalSystemMemory is INFO's total_system_memory, 0 where unknown (as
// Redis reports it).
func totalSystemMemory() int64 { return 0 }
