//go:build unix

package kv

import "syscall"

// fileLimit returns the process's descriptor limit (RLIMIT_NOFILE), 0 if
// unknown. Go raises the soft limit to the hard one when it starts.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
