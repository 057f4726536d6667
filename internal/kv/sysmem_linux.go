//go:build linux

package kv

import "syscall"

// totalSystemMemory is INFO's total_system_memory: the machine's RAM.
func totalSystemMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}
