package shim

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

func TestDescendants(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	sleeper, _ := strconv.Atoi(strings.TrimSpace(line))
	defer syscall.Kill(sleeper, syscall.SIGKILL)
	walks := map[string]func(int) ([]ProcInfo, error){"scan": scanProc, "default": Descendants}
	if hasProcChildren() {
		walks["children files"] = walkChildren
	}
	for name, walk := range walks {
		ds, err := walk(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		found := map[int]ProcInfo{}
		for _, p := range ds {
			found[p.PID] = p
		}
		if p, ok := found[cmd.Process.Pid]; !ok || p.PPID != os.Getpid() {
			t.Fatalf("%s: the child shell %d is not listed as our child: %+v", name, cmd.Process.Pid, ds)
		}
		if p, ok := found[sleeper]; !ok || p.PPID != cmd.Process.Pid || p.PGID != found[cmd.Process.Pid].PGID {
			t.Fatalf("%s: the grandchild %d is not listed below the shell: %+v", name, sleeper, ds)
		}
	}
}

// BenchmarkDescendants is the cost of one look for a task's processes (a
// stop makes one or two).
func BenchmarkDescendants(b *testing.B) {
	walks := map[string]func(int) ([]ProcInfo, error){"scan": scanProc}
	if hasProcChildren() {
		walks["children"] = walkChildren
	}
	for name, walk := range walks {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if _, err := walk(os.Getpid()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
