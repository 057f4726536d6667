package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Emulated machines (--machine-cpus): each child process the bench starts
// for a "machine" (a peer, or the centralized server) runs in a CPU
// cgroup of its own with a CFS quota, so that on one host every machine
// has the same, bounded CPU, as machines of equal size would.

// cgroupMount is one line of /proc/self/mounts that matters here.
type cgroupMount struct {
	Dir     string
	Type    string   // cgroup (v1) or cgroup2
	Options []string // mount options; a v1 hierarchy names its controllers there
}

// cpuPeriod is the CFS period the quotas are set against.
const cpuPeriod = 100 * time.Millisecond

// minMachineCPUs is the smallest quota: the kernel refuses a quota below
// 1 ms per period.
const minMachineCPUs = 0.01

// readMounts reads the cgroup mounts of this process's mount namespace.
func readMounts(path string) ([]cgroupMount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMounts(f)
}

func parseMounts(r io.Reader) ([]cgroupMount, error) {
	var out []cgroupMount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || (f[2] != "cgroup" && f[2] != "cgroup2") {
			continue
		}
		out = append(out, cgroupMount{Dir: f[1], Type: f[2], Options: strings.Split(f[3], ",")})
	}
	return out, sc.Err()
}

// machineGroups is a bench-named parent cgroup holding one child group
// per machine; close removes them all.
type machineGroups struct {
	v2      bool
	cpuDir  string // the parent in the cpu hierarchy (v2: the unified one)
	acctDir string // v1: the parent in the cpuacct hierarchy; "" when co-mounted with cpu or absent
	hasAcct bool   // v1: cpuacct.usage is readable (co-mounted or acctDir)
	// nice is the bench's own nice value, given to every group as its
	// weight: a group competes with the host's other processes as one
	// entity, so without it a niced bench's machines would not be niced
	nice     int
	children []*machineGroup
}

// machineGroup is one machine's cgroup.
type machineGroup struct {
	Name    string
	CPUs    float64
	g       *machineGroups
	cpuDir  string
	acctDir string // v1 separate cpuacct hierarchy, else ""
	pids    []int
}

// openMachineGroups creates the parent group named parent in the first
// writable hierarchy with a cpu controller: cgroup v2 (cpu.max) if it
// offers one, else v1 (cpu.cfs_quota_us). Where neither can be used the
// error names what is missing in each.
func openMachineGroups(mounts []cgroupMount, parent string) (*machineGroups, error) {
	if strings.ContainsAny(parent, "/.") || parent == "" {
		return nil, fmt.Errorf("cgroup name %q: want a plain name", parent)
	}
	g, err := openHierarchy(mounts, parent)
	if err != nil {
		return nil, err
	}
	if prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0); err == nil {
		g.nice = 20 - prio // the raw syscall's 1..40 for nice 19..-20
	}
	return g, nil
}

func openHierarchy(mounts []cgroupMount, parent string) (*machineGroups, error) {
	var problems []string
	var v1CPU, v1Acct string
	for _, m := range mounts {
		switch m.Type {
		case "cgroup2":
			ctl, err := os.ReadFile(filepath.Join(m.Dir, "cgroup.controllers"))
			if err != nil {
				problems = append(problems, fmt.Sprintf("cgroup v2 at %s: %v", m.Dir, err))
				continue
			}
			if !slices.Contains(strings.Fields(string(ctl)), "cpu") {
				problems = append(problems, fmt.Sprintf("cgroup v2 at %s: no cpu controller (cgroup.controllers: %q; cpu is bound to a v1 hierarchy or disabled)",
					m.Dir, strings.TrimSpace(string(ctl))))
				continue
			}
			g, err := openV2(m.Dir, parent)
			if err == nil {
				return g, nil
			}
			problems = append(problems, fmt.Sprintf("cgroup v2 at %s: %v", m.Dir, err))
		case "cgroup":
			if slices.Contains(m.Options, "cpu") && v1CPU == "" {
				v1CPU = m.Dir
			}
			if slices.Contains(m.Options, "cpuacct") && v1Acct == "" {
				v1Acct = m.Dir
			}
		}
	}
	if v1CPU == "" {
		problems = append(problems, "cgroup v1: no hierarchy with the cpu controller mounted")
	} else {
		g, err := openV1(v1CPU, v1Acct, parent)
		if err == nil {
			return g, nil
		}
		problems = append(problems, fmt.Sprintf("cgroup v1 cpu at %s: %v", v1CPU, err))
	}
	return nil, fmt.Errorf("--machine-cpus needs a writable CPU cgroup (run as root, or delegate one): %s", strings.Join(problems, "; "))
}

func openV2(root, parent string) (*machineGroups, error) {
	// the cpu controller must be enabled for the parent's children at
	// every level from the root down
	if err := enableCPU(root); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, parent)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	g := &machineGroups{v2: true, cpuDir: dir}
	if err := enableCPU(dir); err != nil {
		_ = g.close()
		return nil, err
	}
	return g, nil
}

// enableCPU adds cpu to dir's cgroup.subtree_control unless it is there.
func enableCPU(dir string) error {
	p := filepath.Join(dir, "cgroup.subtree_control")
	cur, err := os.ReadFile(p)
	if err == nil && slices.Contains(strings.Fields(string(cur)), "cpu") {
		return nil
	}
	if err := writeFile(p, "+cpu"); err != nil {
		return fmt.Errorf("enabling the cpu controller: %w", err)
	}
	return nil
}

func openV1(cpuRoot, acctRoot, parent string) (*machineGroups, error) {
	dir := filepath.Join(cpuRoot, parent)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	g := &machineGroups{cpuDir: dir}
	switch {
	case acctRoot == cpuRoot:
		g.hasAcct = true // co-mounted cpu,cpuacct
	case acctRoot != "":
		g.acctDir = filepath.Join(acctRoot, parent)
		if err := os.Mkdir(g.acctDir, 0o755); err != nil {
			// usage then comes from /proc; the quota still works
			g.acctDir = ""
		} else {
			g.hasAcct = true
		}
	}
	return g, nil
}

// add creates the group of one machine with a quota of cpus CPUs.
func (g *machineGroups) add(name string, cpus float64) (*machineGroup, error) {
	if cpus < minMachineCPUs || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
		return nil, fmt.Errorf("machine %s: %g CPUs: want at least %g", name, cpus, minMachineCPUs)
	}
	m := &machineGroup{Name: name, CPUs: cpus, g: g, cpuDir: filepath.Join(g.cpuDir, name)}
	if err := os.Mkdir(m.cpuDir, 0o755); err != nil {
		return nil, err
	}
	g.children = append(g.children, m)
	period := cpuPeriod.Microseconds()
	quota := int64(math.Round(cpus * float64(period)))
	weight := niceWeight(g.nice)
	if g.v2 {
		if err := writeFile(filepath.Join(m.cpuDir, "cpu.max"), fmt.Sprintf("%d %d", quota, period)); err != nil {
			return nil, err
		}
		if g.nice != 0 {
			// cpu.weight is 100 for nice 0's 1024
			w := min(max((weight*100+512)/1024, 1), 10000)
			if err := writeFile(filepath.Join(m.cpuDir, "cpu.weight"), strconv.Itoa(w)); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	if g.nice != 0 {
		if err := writeFile(filepath.Join(m.cpuDir, "cpu.shares"), strconv.Itoa(weight)); err != nil {
			return nil, err
		}
	}
	if err := writeFile(filepath.Join(m.cpuDir, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(m.cpuDir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)); err != nil {
		return nil, err
	}
	if g.acctDir != "" {
		m.acctDir = filepath.Join(g.acctDir, name)
		if err := os.Mkdir(m.acctDir, 0o755); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// niceWeight is the scheduler's weight of a nice value (the kernel's
// sched_prio_to_weight; nice 0 is 1024).
func niceWeight(nice int) int {
	weights := [40]int{
		88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
		9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
		1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
		110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
	}
	return weights[min(max(nice, -20), 19)+20]
}

// addPID moves a process into the group.
func (m *machineGroup) addPID(pid int) error {
	s := strconv.Itoa(pid)
	if err := writeFile(filepath.Join(m.cpuDir, "cgroup.procs"), s); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	if m.acctDir != "" {
		if err := writeFile(filepath.Join(m.acctDir, "cgroup.procs"), s); err != nil {
			return fmt.Errorf("machine %s: %w", m.Name, err)
		}
	}
	m.pids = append(m.pids, pid)
	return nil
}

// cpuStat is a machine's CPU figures so far.
type cpuStat struct {
	Usage            time.Duration // CPU used
	Periods          int64         // CFS periods with the group runnable
	ThrottledPeriods int64         // of them, periods that ran out of quota
	Throttled        time.Duration // time spent throttled
	Wait             time.Duration // the processes' time runnable but waiting for a CPU (schedstat; throttled time included)
}

func (a cpuStat) sub(b cpuStat) cpuStat {
	return cpuStat{Usage: a.Usage - b.Usage, Periods: a.Periods - b.Periods, ThrottledPeriods: a.ThrottledPeriods - b.ThrottledPeriods,
		Throttled: a.Throttled - b.Throttled, Wait: a.Wait - b.Wait}
}

// stat reads the group's CPU usage and throttling, and its processes'
// run-queue wait.
func (m *machineGroup) stat() (cpuStat, error) {
	kv, err := readKV(filepath.Join(m.cpuDir, "cpu.stat"))
	if err != nil {
		return cpuStat{}, fmt.Errorf("machine %s: %w", m.Name, err)
	}
	s := cpuStat{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"]}
	switch {
	case m.g.v2:
		s.Usage = time.Duration(kv["usage_usec"]) * time.Microsecond
		s.Throttled = time.Duration(kv["throttled_usec"]) * time.Microsecond
	default:
		s.Throttled = time.Duration(kv["throttled_time"])
		if m.g.hasAcct {
			dir := m.cpuDir
			if m.acctDir != "" {
				dir = m.acctDir
			}
			b, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage"))
			if err != nil {
				return cpuStat{}, fmt.Errorf("machine %s: %w", m.Name, err)
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return cpuStat{}, fmt.Errorf("machine %s: cpuacct.usage: %w", m.Name, err)
			}
			s.Usage = time.Duration(ns)
		} else {
			for _, pid := range m.pids {
				cpu, err := procCPU(pid)
				if err != nil {
					return cpuStat{}, fmt.Errorf("machine %s: %w", m.Name, err)
				}
				s.Usage += cpu
			}
		}
	}
	for _, pid := range m.pids {
		s.Wait += procRunqueueWait(pid)
	}
	return s, nil
}

// readKV reads a "key value" per line file (cpu.stat).
func readKV(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, k, err)
		}
		out[k] = n
	}
	return out, nil
}

// procCPU is a process's user and system CPU from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// procRunqueueWait sums the second field of /proc/<pid>/task/*/schedstat
// (ns spent runnable, waiting for a CPU) over the process's threads; 0
// where the kernel does not keep schedstats.
func procRunqueueWait(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(n)
		}
	}
	return sum
}

// close removes every group it made (their processes must have exited;
// the kernel may take a moment to release an emptied group).
func (g *machineGroups) close() error {
	var errs []error
	var dirs []string
	for _, m := range g.children {
		dirs = append(dirs, m.cpuDir)
		if m.acctDir != "" {
			dirs = append(dirs, m.acctDir)
		}
	}
	dirs = append(dirs, g.cpuDir)
	if g.acctDir != "" {
		dirs = append(dirs, g.acctDir)
	}
	for _, d := range dirs {
		var err error
		for range 40 {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	g.children = nil
	return errors.Join(errs...)
}

func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
