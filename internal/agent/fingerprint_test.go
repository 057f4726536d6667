package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	const meminfo = "MemTotal:        8388608 kB\nMemFree:  1 kB\n"
	cases := []struct {
		name   string
		proc   map[string]string
		cgroup map[string]string
		want   structs.Resources
	}{
		{"no cgroup limits", map[string]string{"meminfo": meminfo}, nil, structs.Resources{CPU: 4000, MemoryMB: 8192}},
		{"v2 limits", map[string]string{"meminfo": meminfo, "self/cgroup": "0::/box\n"},
			map[string]string{"box/cpu.max": "150000 100000\n", "box/memory.max": "1073741824\n"},
			structs.Resources{CPU: 1500, MemoryMB: 1024}},
		{"v2 unlimited", map[string]string{"meminfo": meminfo, "self/cgroup": "0::/box\n"},
			map[string]string{"box/cpu.max": "max 100000\n", "box/memory.max": "max\n"},
			structs.Resources{CPU: 4000, MemoryMB: 8192}},
		{"v2 quota above cores", map[string]string{"meminfo": meminfo, "self/cgroup": "0::/box\n"},
			map[string]string{"box/cpu.max": "800000 100000\n"},
			structs.Resources{CPU: 4000, MemoryMB: 8192}},
		{"v1 limits", map[string]string{"meminfo": meminfo, "self/cgroup": "4:memory:/m\n1:cpu,cpuacct:/c\n"},
			map[string]string{"cpu/c/cpu.cfs_quota_us": "50000\n", "cpu/c/cpu.cfs_period_us": "100000\n",
				"memory/m/memory.limit_in_bytes": "536870912\n"},
			structs.Resources{CPU: 500, MemoryMB: 512}},
		{"v1 unlimited", map[string]string{"meminfo": meminfo, "self/cgroup": "4:memory:/m\n1:cpu:/c\n"},
			map[string]string{"cpu/c/cpu.cfs_quota_us": "-1\n", "cpu/c/cpu.cfs_period_us": "100000\n",
				"memory/m/memory.limit_in_bytes": "9223372036854771712\n"},
			structs.Resources{CPU: 4000, MemoryMB: 8192}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proc, cg := t.TempDir(), t.TempDir()
			writeFiles(t, proc, tc.proc)
			writeFiles(t, cg, tc.cgroup)
			f := fingerprinter{procRoot: proc, cgroupRoot: cg, numCPU: 4}
			res, attrs, err := f.fingerprint()
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.want {
				t.Errorf("resources = %v, want %v", res, tc.want)
			}
			if attrs["cpu.cores"] != "4" || attrs["os"] == "" || attrs["arch"] == "" {
				t.Errorf("attributes = %v", attrs)
			}
		})
	}
}

func TestFingerprintErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no meminfo":  {},
		"no MemTotal": {"meminfo": "MemFree: 1 kB\n"},
		"bad number":  {"meminfo": "MemTotal: lots kB\n"},
	} {
		proc := t.TempDir()
		writeFiles(t, proc, files)
		if _, _, err := (fingerprinter{procRoot: proc, cgroupRoot: proc, numCPU: 1}).fingerprint(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFingerprintThisMachine(t *testing.T) {
	res, attrs, err := defaultFingerprinter().fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU <= 0 || res.MemoryMB <= 0 || attrs["kernel"] == "" {
		t.Fatalf("resources %v attributes %v", res, attrs)
	}
}
