//go:build linux || darwin

package server

import "syscall"

// diskFree returns the bytes available to unprivileged users on dir's
// file system (statfs f_bavail: what is left before the disk is full for
// this process, the root reserve excluded).
func diskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // field types differ by platform
}
