package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLimits(t *testing.T) {
	cases := []struct {
		cpu, mem     int64
		cpuMax, mMax string
	}{
		{1000, 256, "100000 100000", "268435456"},
		{500, 1, "50000 100000", "1048576"},
		{2500, 1024, "250000 100000", "1073741824"},
		{1, 0, "1000 100000", "max"},
		{0, 0, "max 100000", "max"},
	}
	for _, tc := range cases {
		root := t.TempDir()
		m := ForRoot(root)
		dir, err := m.Create("alloc-1", tc.cpu, tc.mem)
		if err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]string{"cpu.max": tc.cpuMax, "memory.max": tc.mMax} {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil || string(b) != want {
				t.Errorf("cpu=%d mem=%d: %s = %q (%v), want %q", tc.cpu, tc.mem, file, b, err, want)
			}
		}
		if err := Remove(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists", dir)
		}
	}
}

func TestCreateRejectsBadID(t *testing.T) {
	m := ForRoot(t.TempDir())
	for _, id := range []string{"", "..", "a/b"} {
		if _, err := m.Create(id, 1, 1); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
	}
}

func TestDetectNotCgroup2(t *testing.T) {
	m := Detect(t.TempDir())
	if m.Enabled() || m.Reason() == "" {
		t.Fatalf("a temp dir must not enable limits (reason %q)", m.Reason())
	}
	if Disabled("x").Enabled() {
		t.Fatal("Disabled manager is enabled")
	}
}

func TestKillWritesCgroupKill(t *testing.T) {
	dir, err := ForRoot(t.TempDir()).Create("a1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Kill(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.kill")); err != nil || string(b) != "1" {
		t.Fatalf("cgroup.kill = %q, %v", b, err)
	}
	if err := Kill(""); err != nil {
		t.Fatalf("Kill without a cgroup: %v", err)
	}
}
