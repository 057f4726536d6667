package bench

import "syscall"

type syscallRlimit = syscall.Rlimit

func getRlimit(l *syscall.Rlimit) error { return syscall.Getrlimit(syscall.RLIMIT_NOFILE, l) }
func setRlimit(l *syscall.Rlimit) error { return syscall.Setrlimit(syscall.RLIMIT_NOFILE, l) }
