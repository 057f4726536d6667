package shim

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcInfo is what /proc/<pid>/stat says about a process.
type ProcInfo struct {
	PID       int
	PPID      int
	PGID      int    // process group
	State     byte   // R, S, D, Z (zombie), X (dead) ...
	StartTime uint64 // clock ticks after boot
}

// ErrNoProcess means the PID does not exist.
var ErrNoProcess = errors.New("no such process")

// ReadProc parses /proc/<pid>/stat.
func ReadProc(pid int) (ProcInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return ProcInfo{}, ErrNoProcess
		}
		return ProcInfo{}, err
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// or ')'; the fields after the last ')' are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[2] field 5 (pgrp);
	// start time is field 22, f[19].
	if len(f) < 20 {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: parent pid: %w", pid, err)
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: process group: %w", pid, err)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return ProcInfo{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return ProcInfo{PID: pid, PPID: ppid, PGID: pgid, State: f[0][0], StartTime: st}, nil
}

// StartTime returns a process's start time in clock ticks after boot.
func StartTime(pid int) (uint64, error) {
	p, err := ReadProc(pid)
	return p.StartTime, err
}

// Alive reports whether pid is the process that started at start and has
// not exited (a zombie has exited).
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	p, err := ReadProc(pid)
	if err != nil {
		return false
	}
	return p.StartTime == start && !p.exited()
}

func (p ProcInfo) exited() bool { return p.State == 'Z' || p.State == 'X' }

// Descendants lists the live (not zombie) processes below root: its
// children, theirs, and so on. The shim is a child subreaper, so a process
// that double-forked or called setsid to leave the task is re-parented to
// the shim and still listed here. With /proc/<pid>/task/<tid>/children
// (CONFIG_PROC_CHILDREN, on in common kernels) the walk reads only the
// tree; without it, one pass over all of /proc.
func Descendants(root int) ([]ProcInfo, error) {
	if hasProcChildren() {
		return walkChildren(root)
	}
	return scanProc(root)
}

var hasProcChildren = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(syscall.Gettid()) + "/children")
	return err == nil
})

// walkChildren follows the children files from root down.
func walkChildren(root int) ([]ProcInfo, error) {
	var out []ProcInfo
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		kids, err := childrenOf(pid)
		if err != nil {
			if pid == root {
				return nil, err
			}
			continue // exited meanwhile: its children are re-parented to us, found next pass
		}
		for _, c := range kids {
			p, err := ReadProc(c)
			if err != nil {
				continue
			}
			queue = append(queue, c)
			if !p.exited() {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// childrenOf lists the children of every thread of pid.
func childrenOf(pid int) ([]int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue // the thread ended
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// scanProc reads every process's parent from /proc and walks down from
// root.
func scanProc(root int) ([]ProcInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]ProcInfo{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		p, err := ReadProc(pid)
		if err != nil {
			continue // exited since the listing
		}
		children[p.PPID] = append(children[p.PPID], p)
	}
	var out []ProcInfo
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			queue = append(queue, c.PID)
			if !c.exited() {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// signalProc sends sig to p unless p's PID now names another process. A
// pidfd pins the process between the check and the signal; kernels older
// than 5.3 get a plain kill after the check.
func signalProc(p ProcInfo, sig syscall.Signal) {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOSYS) && Alive(p.PID, p.StartTime) {
			_ = syscall.Kill(p.PID, sig)
		}
		return
	}
	defer syscall.Close(fd)
	if st, err := StartTime(p.PID); err != nil || st != p.StartTime {
		return
	}
	_ = unix.PidfdSendSignal(fd, sig, nil, 0)
}

// signalTree sends sig to every live process below the shim, except the
// members of process group skip (0: none), which the caller signalled as a
// group: a second SIGTERM could cut short the handler the first one started.
// It returns how many processes it found alive.
func signalTree(self int, sig syscall.Signal, skip int) int {
	ps, err := Descendants(self)
	if err != nil {
		fmt.Fprintln(os.Stderr, "task-shim: listing the task's processes:", err)
		return 0
	}
	for _, p := range ps {
		if skip == 0 || p.PGID != skip {
			signalProc(p, sig)
		}
	}
	return len(ps)
}

// killTree SIGKILLs every process below the shim until none is left alive.
// Processes forking while they are killed need another pass, and so does a
// process whose parent died during a pass (it is re-parented to the shim
// after the pass read the shim's children): only two empty passes in a row
// end it. The bound only stops a fork bomb from holding the shim forever.
func killTree(self int) {
	empty := 0
	for i := 0; i < 200; i++ {
		if signalTree(self, syscall.SIGKILL, 0) > 0 {
			empty = 0
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if empty++; empty == 2 {
			return
		}
	}
	fmt.Fprintln(os.Stderr, "task-shim: processes of the task are still alive after 200 rounds of SIGKILL")
}

// setChildSubreaper makes orphaned descendants children of this process
// instead of init (prctl PR_SET_CHILD_SUBREAPER).
func setChildSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
