// Package cgroups puts tasks under cgroup v2 CPU and memory limits where the
// host allows it. It only writes files: the caller moves a process in (the
// shim starts the task directly inside the group with CLONE_INTO_CGROUP).
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultRoot is where the unified (v2) hierarchy is mounted.
const DefaultRoot = "/sys/fs/cgroup"

// cgroup2Magic is CGROUP2_SUPER_MAGIC from statfs(2).
const cgroup2Magic = 0x63677270

// cpuPeriod is the cpu.max period in microseconds (the kernel default).
const cpuPeriod = 100000

// Manager creates one cgroup per task under <root>/gantry.
type Manager struct {
	root string
	// Reason says why limits are off; empty when enabled.
	reason string
}

// Detect probes root (DefaultRoot when empty): limits are enabled only if it
// is a cgroup2 mount where gantry can create its parent group and enable the
// cpu and memory controllers for it.
func Detect(root string) *Manager {
	if root == "" {
		root = DefaultRoot
	}
	m := &Manager{root: root}
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		m.reason = fmt.Sprintf("cannot stat %s: %v", root, err)
		return m
	}
	if st.Type != cgroup2Magic {
		m.reason = fmt.Sprintf("%s is not a cgroup v2 (unified) mount", root)
		return m
	}
	if err := m.prepare(); err != nil {
		m.reason = err.Error()
	}
	return m
}

// ForRoot returns a Manager that trusts root without probing it; tests use a
// plain directory to check the files written.
func ForRoot(root string) *Manager { return &Manager{root: root} }

// Disabled returns a Manager that never sets limits, for the given reason.
func Disabled(reason string) *Manager { return &Manager{reason: reason} }

// Enabled reports whether tasks get limits.
func (m *Manager) Enabled() bool { return m != nil && m.reason == "" }

// Reason explains why limits are not enforced ("" when they are).
func (m *Manager) Reason() string {
	if m == nil {
		return "no cgroup manager"
	}
	return m.reason
}

// prepare creates <root>/gantry and delegates cpu and memory to its children.
func (m *Manager) prepare() error {
	parent := filepath.Join(m.root, "gantry")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", parent, err)
	}
	// The root's subtree_control may already delegate them; enabling is
	// idempotent. A failure here (e.g. EBUSY in a container whose root group
	// holds processes) means children cannot get limits.
	for _, dir := range []string{m.root, parent} {
		ctl := filepath.Join(dir, "cgroup.subtree_control")
		if err := os.WriteFile(ctl, []byte("+cpu +memory"), 0o644); err != nil {
			return fmt.Errorf("cannot enable cpu and memory controllers in %s: %w", ctl, err)
		}
	}
	return nil
}

// Dir is the cgroup of one allocation.
func (m *Manager) Dir(allocID string) string {
	return filepath.Join(m.root, "gantry", allocID)
}

// Create makes the allocation's cgroup and writes its limits: cpu.max from
// millicores (quota = millicores/1000 of each period) and memory.max from
// MiB. Zero means no limit on that resource.
func (m *Manager) Create(allocID string, cpuMillicores, memoryMB int64) (string, error) {
	if allocID == "" || strings.ContainsAny(allocID, "/\x00") || allocID == "." || allocID == ".." {
		return "", fmt.Errorf("invalid allocation id %q for a cgroup name", allocID)
	}
	dir := m.Dir(allocID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	cpu, mem := CPUMax(cpuMillicores), MemoryMax(memoryMB)
	if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(cpu), 0o644); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("cgroup %s: writing cpu.max %q: %w", dir, cpu, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(mem), 0o644); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("cgroup %s: writing memory.max %q: %w", dir, mem, err)
	}
	return dir, nil
}

// CPUMax renders a cpu.max value for a number of millicores.
func CPUMax(millicores int64) string {
	if millicores <= 0 {
		return "max " + strconv.Itoa(cpuPeriod)
	}
	quota := millicores * cpuPeriod / 1000
	if quota < 1000 {
		quota = 1000 // the kernel's minimum quota is 1ms
	}
	return fmt.Sprintf("%d %d", quota, cpuPeriod)
}

// MemoryMax renders a memory.max value for a number of MiB.
func MemoryMax(mb int64) string {
	if mb <= 0 {
		return "max"
	}
	return strconv.FormatInt(mb*1024*1024, 10)
}

// Kill SIGKILLs every process in the cgroup at once (cgroup.kill, Linux
// 5.14+): unlike signalling PIDs one by one, nothing can fork its way out.
// Without cgroup.kill the shim's kill of the task's process tree stands.
func Kill(dir string) error {
	if dir == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0o644)
}

// Remove kills whatever is left in the cgroup and removes it. A missing
// directory is not an error.
func Remove(dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_ = Kill(dir)
	var err error
	for i := 0; i < 50; i++ {
		// rmdir succeeds once the killed processes are reaped.
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A plain directory (tests) holds the files we wrote.
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		if rerr := os.RemoveAll(dir); rerr == nil {
			return nil
		}
	}
	return fmt.Errorf("removing cgroup %s: %w", dir, err)
}
