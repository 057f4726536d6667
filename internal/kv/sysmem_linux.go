//go:build linux

package kv

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// totalSystemMemory is INFO's total_system_memory: the machine's RAM.
func totalSystemMemory() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// processRSS is INFO's used_memory_rss: the process's resident set, as
// Redis reads it (/proc/self/statm's second field, in pages); 0 when it
// cannot be read.
func processRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
