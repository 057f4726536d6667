package testutil

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildGantry builds the static gantry binary (CGO_ENABLED=0, so every
// test package that builds it shares one entry of the build cache) into a
// new temporary directory; remove removes that directory. Test packages
// call it from TestMain.
func BuildGantry(pkgDir string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "gantry-test-bin")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "gantry")
	build := exec.Command("go", "build", "-o", bin, pkgDir)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building gantry: %w", err)
	}
	return bin, func() { _ = os.RemoveAll(dir) }, nil
}

// Proc is one process under test, in its own process group, with its
// output kept for failure reports.
type Proc struct {
	Name string
	Args []string
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	Done chan struct{} // closed once the process has exited
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProc starts bin with args. When the test ends the process gets
// SIGTERM (SIGKILL after 10 s), and if the test failed the tail of its
// output is logged.
func StartProc(t testing.TB, bin, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Args: args, Out: &SyncBuffer{}, Done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.Done) }()
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("--- output of %s (%s) ---\n%s", name, strings.Join(args, " "), Tail(p.Out.String(), 6000))
		}
	})
	return p
}

// Stop signals the process and waits for it; SIGKILL after grace.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.Done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.Done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.Done
	}
}

// Kill9 kills the process with SIGKILL, as a crash would, and waits.
func (p *Proc) Kill9() {
	_ = p.Cmd.Process.Kill()
	<-p.Done
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// MainWithGantry is the body of TestMain for packages that run the gantry
// binary as real processes: in -short mode it skips them all with a line
// naming the package (label); otherwise it builds the binary into *bin,
// runs the tests and removes the binary. It returns the exit code.
func MainWithGantry(m *testing.M, label string, bin *string) int {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped in -short mode (the tests start real processes)\n", label)
		return 0
	}
	b, remove, err := BuildGantry("../../cmd/gantry")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", label, err)
		return 1
	}
	defer remove()
	*bin = b
	return m.Run()
}
