package shim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadProcSelf(t *testing.T) {
	p, err := ReadProc(os.Getpid())
	if err != nil || p.StartTime == 0 || p.State == 'Z' {
		t.Fatalf("ReadProc(self) = %+v, %v", p, err)
	}
	if !Alive(os.Getpid(), p.StartTime) {
		t.Error("self not alive")
	}
	if Alive(os.Getpid(), p.StartTime+1) {
		t.Error("a different start time must mean another process")
	}
	if _, err := ReadProc(1 << 30); !errors.Is(err, ErrNoProcess) {
		t.Errorf("missing pid: err = %v", err)
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Error("pid <= 0 alive")
	}
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, err string
	}{
		{"empty path", "", "no spec"},
		{"missing", filepath.Join(dir, "nope"), "reading spec"},
		{"garbage", write("g.json", "{"), "spec"},
		{"incomplete", write("i.json", `{"command":"x"}`), "required"},
	}
	for _, tc := range cases {
		if _, err := ReadSpec(tc.path); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
	s, err := ReadSpec(write("ok.json", `{"command":"/bin/true","pid_file":"p","exit_file":"e"}`))
	if err != nil || s.Command != "/bin/true" {
		t.Fatalf("ok spec: %+v %v", s, err)
	}
}

func TestWriteJSONAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	for i := 0; i < 3; i++ {
		if err := WriteJSONAtomic(p, ExitRecord{ExitCode: i}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"exit_code":2`) {
		t.Fatalf("content %s", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}
