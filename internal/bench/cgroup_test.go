package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMachineGroups sets up machine cgroups in fake cgroup directories
// (v2, v1 with cpu and cpuacct apart or co-mounted) and checks the
// quota, the process list, the CPU figures read back and the removal;
// and that a host without a usable cpu controller is a clear error.
func TestMachineGroups(t *testing.T) {
	type layout struct {
		mounts func(root string) []cgroupMount
		files  map[string]string // made before opening, relative to root
	}
	cases := []struct {
		name   string
		layout layout
		// after add("peer-1", 0.15) and addPID(4242): files (relative
		// to root) and their contents
		want map[string]string
		// fake kernel figures written into the group, and the stat expected
		stats     map[string]string
		wantUsage time.Duration
		wantThr   time.Duration
		wantErr   string
	}{
		{
			name: "v2",
			layout: layout{
				mounts: func(root string) []cgroupMount {
					return []cgroupMount{{Dir: filepath.Join(root, "unified"), Type: "cgroup2", Options: []string{"rw"}}}
				},
				files: map[string]string{"unified/cgroup.controllers": "cpuset cpu io memory pids\n", "unified/cgroup.subtree_control": ""},
			},
			want: map[string]string{
				"unified/cgroup.subtree_control":                "+cpu",
				"unified/gantry-bench-t/cgroup.subtree_control": "+cpu",
				"unified/gantry-bench-t/peer-1/cpu.max":         "15000 100000",
				"unified/gantry-bench-t/peer-1/cgroup.procs":    "4242",
				"unified/gantry-bench-t/peer-1/cpu.weight":      "11", // nice 10
			},
			stats:     map[string]string{"unified/gantry-bench-t/peer-1/cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 10\nthrottled_usec 250000\n"},
			wantUsage: 1500 * time.Millisecond, wantThr: 250 * time.Millisecond,
		},
		{
			name: "v1, cpu and cpuacct apart (v2 without cpu)",
			layout: layout{
				mounts: func(root string) []cgroupMount {
					return []cgroupMount{
						{Dir: filepath.Join(root, "unified"), Type: "cgroup2", Options: []string{"rw"}},
						{Dir: filepath.Join(root, "cpu"), Type: "cgroup", Options: []string{"rw", "cpu"}},
						{Dir: filepath.Join(root, "cpuacct"), Type: "cgroup", Options: []string{"rw", "cpuacct"}},
					}
				},
				files: map[string]string{"unified/cgroup.controllers": "hugetlb\n", "cpu/cpu.cfs_quota_us": "-1", "cpuacct/cpuacct.usage": "0"},
			},
			want: map[string]string{
				"cpu/gantry-bench-t/peer-1/cpu.cfs_period_us": "100000",
				"cpu/gantry-bench-t/peer-1/cpu.cfs_quota_us":  "15000",
				"cpu/gantry-bench-t/peer-1/cgroup.procs":      "4242",
				"cpuacct/gantry-bench-t/peer-1/cgroup.procs":  "4242",
				"unified/cgroup.controllers":                  "hugetlb\n", // untouched
				"cpu/cpu.cfs_quota_us":                        "-1",        // the root's untouched
				"cpuacct/cpuacct.usage":                       "0",
			},
			stats: map[string]string{
				"cpu/gantry-bench-t/peer-1/cpu.stat":          "nr_periods 20\nnr_throttled 5\nthrottled_time 300000000\nnr_bursts 0\nburst_time 0\n",
				"cpuacct/gantry-bench-t/peer-1/cpuacct.usage": "2000000000\n",
			},
			wantUsage: 2 * time.Second, wantThr: 300 * time.Millisecond,
		},
		{
			name: "v1, cpu,cpuacct co-mounted",
			layout: layout{
				mounts: func(root string) []cgroupMount {
					return []cgroupMount{{Dir: filepath.Join(root, "cpu,cpuacct"), Type: "cgroup", Options: []string{"rw", "cpu", "cpuacct"}}}
				},
				files: map[string]string{"cpu,cpuacct/cpuacct.usage": "0"},
			},
			want: map[string]string{
				"cpu,cpuacct/gantry-bench-t/peer-1/cpu.cfs_quota_us": "15000",
				"cpu,cpuacct/gantry-bench-t/peer-1/cgroup.procs":     "4242",
			},
			stats: map[string]string{
				"cpu,cpuacct/gantry-bench-t/peer-1/cpu.stat":      "nr_periods 3\nnr_throttled 0\nthrottled_time 0\n",
				"cpu,cpuacct/gantry-bench-t/peer-1/cpuacct.usage": "7000000\n",
			},
			wantUsage: 7 * time.Millisecond,
		},
		{
			name: "neither usable",
			layout: layout{
				mounts: func(root string) []cgroupMount {
					return []cgroupMount{{Dir: filepath.Join(root, "unified"), Type: "cgroup2", Options: []string{"rw"}}}
				},
				files: map[string]string{"unified/cgroup.controllers": "hugetlb\n"},
			},
			wantErr: "no cpu controller",
		},
		{
			name: "v1 cpu hierarchy not writable",
			layout: layout{
				mounts: func(root string) []cgroupMount {
					// a file where the hierarchy should be: mkdir fails
					return []cgroupMount{{Dir: filepath.Join(root, "notadir"), Type: "cgroup", Options: []string{"rw", "cpu"}}}
				},
				files: map[string]string{"notadir": "x"},
			},
			wantErr: "cgroup v1 cpu at",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tc.layout.files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := openMachineGroups(tc.layout.mounts(root), "gantry-bench-t")
			if err == nil {
				g.nice = 10 // as under nice -n 10, whatever runs the test
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--machine-cpus needs") {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := g.add("peer-1", 0.15)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.addPID(4242); err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.want {
				got, err := os.ReadFile(filepath.Join(root, p))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			for p, c := range tc.stats {
				if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m.pids = nil // no schedstat of a made-up process
			st, err := m.stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Usage != tc.wantUsage || st.Throttled != tc.wantThr {
				t.Errorf("stat %+v, want usage %v throttled %v", st, tc.wantUsage, tc.wantThr)
			}
			if _, err := g.add("peer-2", 0.001); err == nil {
				t.Error("a quota below 1 ms per period was accepted")
			}
			// the kernel removes a group's files with it; here they are
			// plain files, so take them away as it would
			for _, d := range []string{m.cpuDir, m.acctDir, g.cpuDir, g.acctDir} {
				if d == "" {
					continue
				}
				fs, _ := os.ReadDir(d)
				for _, f := range fs {
					if !f.IsDir() {
						_ = os.Remove(filepath.Join(d, f.Name()))
					}
				}
			}
			if err := g.close(); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{m.cpuDir, m.acctDir, g.cpuDir, g.acctDir} {
				if _, err := os.Stat(d); d != "" && !os.IsNotExist(err) {
					t.Errorf("%s still there (%v)", d, err)
				}
			}
		})
	}
}

// TestParseMounts keeps the cgroup lines of /proc/self/mounts.
func TestParseMounts(t *testing.T) {
	ms, err := parseMounts(strings.NewReader(`overlay / overlay rw,relatime 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,nosuid,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
proc /proc proc rw 0 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Dir != "/sys/fs/cgroup/cpu" || ms[0].Options[3] != "cpu" || ms[2].Type != "cgroup2" {
		t.Fatalf("mounts %+v", ms)
	}
}

// TestRunPeerProcs runs the child-process peer mode on three `gantry peer`
// processes, each in a CPU cgroup, with a tiny workload: every copy placed
// once, observed through the peers' API, and each machine's CPU figures
// filled in. Each machine gets a whole CPU's quota: the test checks the
// mode's mechanics, and a starved peer on a busy test machine would be
// judged failed and its copies placed again (docs/peer.md, Throughput).
func TestRunPeerProcs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gantry and starts three peer processes")
	}
	g, err := openBenchGroups()
	if err != nil {
		t.Skipf("cgroups not writable here: %v", err)
	}
	if err := g.close(); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "gantry")
	build := exec.Command("go", "build", "-o", exe, "github.com/gantry-project/gantry/cmd/gantry")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w, err := ParseWorkload([]byte(`
name: procs
nodes:
  - {count: 3, cpu: 4000, memory_mb: 4096, labels: {zone: [a, b, a]}}
jobs:
  - {name: svc, count: 3, tasks: 10, type: service, priority: 50, cpu: 50, memory_mb: 32}
  - {name: bat, count: 2, tasks: 10, type: batch, priority: 50, cpu: 50, memory_mb: 32, run_for: 50ms}
  - {name: zoned, count: 1, tasks: 5, type: service, priority: 50, cpu: 50, memory_mb: 32,
     constraints: [{label: zone, op: "=", value: a}]}
arrival: {concurrency: 2}
timeout: 2m
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := RunPeers(context.Background(), Options{Workload: w, Exe: exe, DataDir: t.TempDir(), MachineCPUs: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Placed != int64(rep.Tasks) || rep.Tasks != 55 || !rep.Check.OK {
		t.Fatalf("placed %d of %d, check %+v", rep.Placed, rep.Tasks, rep.Check)
	}
	if rep.PlacementsPerSecond <= 0 || rep.SubmitToPlaced.N != 55 || rep.Server != ServerProcess || rep.MachineCPUs != 1 {
		t.Errorf("figures: %+v", rep)
	}
	if len(rep.Machines) != 3 {
		t.Fatalf("machines %+v", rep.Machines)
	}
	for _, m := range rep.Machines {
		if m.QuotaCPUs != 1 || m.CPUSeconds <= 0 || m.QuotaUsed <= 0 {
			t.Errorf("machine %+v", m)
		}
	}
	// the groups are gone
	if _, err := os.Stat(g.cpuDir); !os.IsNotExist(err) {
		t.Errorf("%s left behind (%v)", g.cpuDir, err)
	}
}
