package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/structs"
)

// fingerprinter reads machine facts; the roots are parameters so tests can
// point them at fixture files.
type fingerprinter struct {
	procRoot   string // "/proc"
	cgroupRoot string // "/sys/fs/cgroup"
	numCPU     int
}

func defaultFingerprinter() fingerprinter {
	return fingerprinter{procRoot: "/proc", cgroupRoot: "/sys/fs/cgroup", numCPU: runtime.NumCPU()}
}

// fingerprint returns the node's capacity and attributes. CPU is the
// number of CPUs times 1000 millicores, lowered to the agent's own cgroup CPU
// quota when one is set; memory is MemTotal from /proc/meminfo, lowered to
// the cgroup memory limit when one is set.
func (f fingerprinter) fingerprint() (structs.Resources, map[string]string, error) {
	res := structs.Resources{CPU: int64(f.numCPU) * 1000}
	if q, ok := f.cgroupCPU(); ok && q < res.CPU {
		res.CPU = q
	}
	mem, err := f.memTotalMB()
	if err != nil {
		return res, nil, err
	}
	res.MemoryMB = mem
	if lim, ok := f.cgroupMemoryMB(); ok && lim < res.MemoryMB {
		res.MemoryMB = lim
	}
	attrs := map[string]string{
		"os":        runtime.GOOS,
		"arch":      runtime.GOARCH,
		"cpu.cores": strconv.Itoa(f.numCPU),
	}
	if b, err := os.ReadFile(filepath.Join(f.procRoot, "sys/kernel/osrelease")); err == nil {
		attrs["kernel"] = strings.TrimSpace(string(b))
	}
	return res, attrs, nil
}

func (f fingerprinter) memTotalMB() (int64, error) {
	path := filepath.Join(f.procRoot, "meminfo")
	file, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("fingerprint memory: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("fingerprint memory: %s: bad MemTotal %q", path, fields[1])
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("fingerprint memory: no MemTotal in %s", path)
}

// selfCgroups maps controller ("" for v2) to the agent's cgroup path.
func (f fingerprinter) selfCgroups() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(filepath.Join(f.procRoot, "self/cgroup"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

func readInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// cgroupCPU returns the agent's CPU quota in millicores, v2 or v1.
func (f fingerprinter) cgroupCPU() (int64, bool) {
	cg := f.selfCgroups()
	if p, ok := cg[""]; ok {
		if b, err := os.ReadFile(filepath.Join(f.cgroupRoot, p, "cpu.max")); err == nil {
			fields := strings.Fields(string(b))
			if len(fields) == 2 && fields[0] != "max" {
				quota, err1 := strconv.ParseInt(fields[0], 10, 64)
				period, err2 := strconv.ParseInt(fields[1], 10, 64)
				if err1 == nil && err2 == nil && period > 0 {
					return quota * 1000 / period, true
				}
			}
		}
	}
	if p, ok := cg["cpu"]; ok {
		quota, ok1 := readInt(filepath.Join(f.cgroupRoot, "cpu", p, "cpu.cfs_quota_us"))
		period, ok2 := readInt(filepath.Join(f.cgroupRoot, "cpu", p, "cpu.cfs_period_us"))
		if ok1 && ok2 && quota > 0 && period > 0 {
			return quota * 1000 / period, true
		}
	}
	return 0, false
}

// cgroupMemoryMB returns the agent's memory limit in MiB, v2 or v1.
func (f fingerprinter) cgroupMemoryMB() (int64, bool) {
	cg := f.selfCgroups()
	if p, ok := cg[""]; ok {
		if v, ok := readInt(filepath.Join(f.cgroupRoot, p, "memory.max")); ok && v > 0 {
			return v / (1024 * 1024), true
		}
	}
	if p, ok := cg["memory"]; ok {
		// v1 reports "no limit" as a huge number; the comparison with
		// MemTotal in the caller ignores it.
		if v, ok := readInt(filepath.Join(f.cgroupRoot, "memory", p, "memory.limit_in_bytes")); ok && v > 0 {
			return v / (1024 * 1024), true
		}
	}
	return 0, false
}
