//go:build !linux

package aof

// writeRaw is the Linux write without the runtime's system call
// bookkeeping (rawwrite_linux.go); elsewhere the log writes through f.
func writeRaw(File, []byte) (int, bool, error) { return 0, false, nil }
