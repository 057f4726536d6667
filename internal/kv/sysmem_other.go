//go:build !linux

package kv

// totalSystemMemory is INFO's total_system_memory, 0 where unknown (as
// Redis reports it).
func totalSystemMemory() int64 { return 0 }

// processRSS is 0 where the resident set is not read (used_memory_rss
// is then what the Go runtime holds from the system).
func processRSS() int64 { return 0 }
