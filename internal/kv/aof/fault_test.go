package aof

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// testLog is a Log of a temporary data directory over a FaultFS, with
// helpers to write through it as the server does.
type testLog struct {
	t   *testing.T
	dir string
	fs  *FaultFS
	ks  *keyspace.Keyspace
	*Log
}

func openTestLog(t *testing.T, dir, fsync string, fs *FaultFS) *testLog {
	t.Helper()
	table := command.NewTable()
	table.Register(command.DataCommands()...)
	ks := keyspace.New()
	var dirty, lastSave atomic.Int64
	cfg := Config{Dir: dir, On: true, Fsync: fsync, KS: ks, Table: table, Track: &command.Tracker{},
		Clock: fixedClock{}, Logger: log.New(io.Discard, "", 0), Dirty: &dirty, LastSave: &lastSave}
	if fs != nil {
		cfg.FS = fs
	}
	a, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, dir: dir, fs: fs, ks: ks, Log: a}
}

// set sets key in the keyspace and logs it, as a command does with its
// shard locked, and returns the offset its reply waits for.
func (l *testLog) set(key, val string) int64 {
	sh := keyspace.ShardOf([]byte(key))
	l.ks.LockShard(sh)
	defer l.ks.UnlockShard(sh)
	l.ks.SetStringLocked([]byte(key), []byte(val), 0, 0)
	return l.Append(cmdBytes("SET", key, val), []int{sh})
}

func (l *testLog) get(key string) (string, bool) {
	sh := keyspace.ShardOf([]byte(key))
	l.ks.LockShard(sh)
	defer l.ks.UnlockShard(sh)
	e := l.ks.LookupLocked([]byte(key), 0)
	if e == nil {
		return "", false
	}
	return string(e.Bytes()), true
}

func (l *testLog) file() []byte {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, logName(1)))
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

func (l *testLog) info(field string) string {
	for _, line := range l.Info() {
		if k, v, _ := strings.Cut(line, ":"); k == field {
			return v
		}
	}
	l.t.Fatalf("INFO has no %s", field)
	return ""
}

// TestFailedWriteIsNotAcknowledged: a write or fsync of the log that fails
// is reported to every waiter (its reply must not be sent), the log refuses
// writes until the disk works again, a partial write is cut from the file,
// and once the fault is gone the held-back bytes and the later writes are
// written whole: the log reloads into every write, in order.
func TestFailedWriteIsNotAcknowledged(t *testing.T) {
	big := strings.Repeat("x", 100)
	recA, recB, recC := cmdBytes("SET", "a", "1"), cmdBytes("SET", "b", big), cmdBytes("SET", "c", "3")
	cases := []struct {
		name     string
		fsync    string
		inject   func(fs *FaultFS)
		errno    syscall.Errno
		fileWhen []byte // the log file while failing
	}{
		{"full disk, always", "always", func(fs *FaultFS) { fs.SetSpace(10) }, syscall.ENOSPC, recA},
		{"full disk, everysec", "everysec", func(fs *FaultFS) { fs.SetSpace(10) }, syscall.ENOSPC, recA},
		{"full disk, no", "no", func(fs *FaultFS) { fs.SetSpace(10) }, syscall.ENOSPC, recA},
		{"full disk at a record boundary", "always", func(fs *FaultFS) { fs.SetSpace(0) }, syscall.ENOSPC, recA},
		{"fsync fails, always", "always", func(fs *FaultFS) { fs.FailSync(syscall.EIO) }, syscall.EIO, recA},
		{"full disk, cannot cut the partial write", "always", func(fs *FaultFS) {
			fs.SetSpace(10)
			fs.FailTruncate(syscall.EIO)
		}, syscall.ENOSPC, append(append([]byte(nil), recA...), recB[:10]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewFaultFS()
			l := openTestLog(t, t.TempDir(), tc.fsync, fs)
			offA := l.set("a", "1")
			if err := l.WaitDurable(offA); err != nil {
				t.Fatalf("first write: %v", err)
			}
			tc.inject(fs)
			offB := l.set("b", big)
			err := l.WaitDurable(offB)
			if !errors.Is(err, tc.errno) {
				t.Fatalf("WaitDurable after the fault = %v, want %v", err, tc.errno)
			}
			if err2 := l.WaitDurable(offB); !errors.Is(err2, tc.errno) {
				t.Fatalf("second waiter for the failed write got %v, want %v", err2, tc.errno)
			}
			if d := l.DurableOffset(); d < offA || d >= offB {
				t.Errorf("durable offset %d, want in [%d, %d)", d, offA, offB)
			}
			if l.Writable() || l.Failure() == nil {
				t.Error("the log accepts writes while failing")
			}
			if got := l.file(); !bytes.Equal(got, tc.fileWhen) {
				t.Errorf("log file while failing = %q, want %q", got, tc.fileWhen)
			}
			for field, want := range map[string]string{
				"aof_last_write_status": "err", "aof_last_write_errno": strconv.Itoa(int(tc.errno)),
				"aof_last_write_error": tc.errno.Error(),
			} {
				if got := l.info(field); got != want {
					t.Errorf("INFO %s:%s, want %s", field, got, want)
				}
			}

			fs.SetSpace(-1)
			fs.FailSync(nil)
			fs.FailTruncate(nil)
			offC := l.set("c", "3")
			if err := l.WaitDurable(offC); err != nil {
				t.Fatalf("write after the fault is gone: %v", err)
			}
			if !l.Writable() || l.Failure() != nil || l.info("aof_last_write_status") != "ok" {
				t.Errorf("the log still refuses writes: %v", l.Failure())
			}
			want := append(append(append([]byte(nil), recA...), recB...), recC...)
			if got := l.file(); !bytes.Equal(got, want) {
				t.Errorf("log file = %q, want %q", got, want)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openTestLog(t, l.dir, tc.fsync, nil)
			defer l2.Close()
			for k, v := range map[string]string{"a": "1", "b": big, "c": "3"} {
				if got, ok := l2.get(k); !ok || got != v {
					t.Errorf("after reload %s = %q (%v), want %q", k, got, ok, v)
				}
			}
		})
	}
}

// TestEverysecFsyncFailure: with everysec a write is acknowledged once
// written; a failed background fsync makes the log refuse further writes
// until an fsync succeeds.
func TestEverysecFsyncFailure(t *testing.T) {
	fs := NewFaultFS()
	l := openTestLog(t, t.TempDir(), "everysec", fs)
	defer l.Close()
	if err := l.WaitDurable(l.set("a", "1")); err != nil {
		t.Fatal(err)
	}
	fs.FailSync(syscall.EIO)
	if err := l.Fsync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("background fsync = %v, want EIO", err)
	}
	if l.Writable() || l.info("aof_last_write_status") != "err" {
		t.Fatal("the log accepts writes after a failed fsync")
	}
	if err := l.Fsync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("retried fsync = %v, want EIO", err)
	}
	fs.FailSync(nil)
	if err := l.Fsync(); err != nil {
		t.Fatalf("fsync after the fault is gone: %v", err)
	}
	if !l.Writable() || l.info("aof_last_write_status") != "ok" || l.info("aof_write_errors") == "0" {
		t.Errorf("after recovery: writable %v, INFO %q", l.Writable(), l.Info())
	}
}

// TestRewriteOnFullDisk: a rewrite that runs out of space fails and leaves
// the current generation in place (manifest, log, no new files); a later
// rewrite succeeds. A rewrite also ends a write failure: the new
// generation holds what the failing log held back.
func TestRewriteOnFullDisk(t *testing.T) {
	fs := NewFaultFS()
	dir := t.TempDir()
	l := openTestLog(t, dir, "always", fs)
	val := strings.Repeat("v", 1000)
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := l.WaitDurable(l.set(k, val)); err != nil {
			t.Fatal(err)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(dir, manifestName))
	fs.SetSpace(1500) // less than the snapshot
	done, err := l.StartRewrite()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("rewrite on a full disk = %v, want ENOSPC", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, manifestName)); !bytes.Equal(got, manifest) {
		t.Errorf("manifest changed by a failed rewrite: %q", got)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		if b := filepath.Base(n); b != manifestName && b != logName(1) && b != "LOCK" {
			t.Errorf("a failed rewrite left %s", b)
		}
	}
	if l.info("aof_last_bgrewrite_status") != "err" || l.info("aof_rewrites_consecutive_failures") != "1" {
		t.Errorf("INFO after a failed rewrite: %q", l.Info())
	}

	// the log fails too now; a rewrite with space again repairs both
	fs.SetSpace(0)
	if err := l.WaitDurable(l.set("e", "5")); err == nil {
		t.Fatal("write on a full disk acknowledged")
	}
	fs.SetSpace(-1)
	done, err = l.StartRewrite()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("rewrite with space: %v", err)
	}
	if !l.Writable() || l.info("aof_last_bgrewrite_status") != "ok" || l.info("aof_last_write_status") != "ok" {
		t.Errorf("after a good rewrite: writable %v, INFO %q", l.Writable(), l.Info())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTestLog(t, dir, "always", nil)
	defer l2.Close()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if _, ok := l2.get(k); !ok {
			t.Errorf("%s lost", k)
		}
	}
}

// TestGroupCommitUnderFaults: writers wait for their writes (group
// commits) while the disk fills and empties and fsyncs fail; every write
// acknowledged (WaitDurable returned nil) is in the log after a reload, and
// the file always consists of whole records: the loader never cuts
// anything.
func TestGroupCommitUnderFaults(t *testing.T) {
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			fs := NewFaultFS()
			dir := t.TempDir()
			l := openTestLog(t, dir, fsync, fs)
			const writers = 4
			acked := make([][]string, writers)
			var stop atomic.Bool
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						k := fmt.Sprintf("w%d:%d", w, i)
						if !l.Writable() {
							time.Sleep(100 * time.Microsecond)
							continue
						}
						if l.WaitDurable(l.set(k, k)) == nil {
							acked[w] = append(acked[w], k)
						}
					}
				}()
			}
			// faults in phases, whatever the writers are doing meanwhile;
			// one write of the test's own per phase hits the fault for sure
			var own []string
			for i := range 30 {
				switch i % 3 {
				case 0:
					fs.SetSpace(int64(17 * i))
				case 1:
					fs.SetSpace(-1)
					fs.FailSync(syscall.EIO)
				case 2:
					fs.FailSync(nil)
				}
				_ = l.Fsync()
				k := fmt.Sprintf("own:%d", i)
				err := l.WaitDurable(l.set(k, k))
				switch {
				case err == nil:
					own = append(own, k)
				case i%3 == 2:
					t.Errorf("phase %d: write with the faults gone: %v", i, err)
				}
				if i == 0 && err == nil {
					t.Error("a write on a full disk was acknowledged")
				}
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			wg.Wait()
			fs.SetSpace(-1)
			fs.FailSync(nil)
			if err := l.Fsync(); err != nil {
				t.Fatalf("fsync with the faults gone: %v", err)
			}
			if fs.FailedWrites() == 0 {
				t.Error("no write hit the full disk")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(filepath.Join(dir, logName(1)))
			var args [][]byte
			for pos := 0; pos < len(data); {
				var n int
				var err error
				args, n, err = resp.ParseCommand(data[pos:], args)
				if err != nil || n == 0 {
					t.Fatalf("the log is cut at byte %d of %d: %v", pos, len(data), err)
				}
				pos += n
			}
			l2 := openTestLog(t, dir, fsync, nil)
			defer l2.Close()
			n := 0
			for _, ks := range append(acked, own) {
				for _, k := range ks {
					n++
					if v, ok := l2.get(k); !ok || v != k {
						t.Fatalf("acknowledged write %s lost", k)
					}
				}
			}
			t.Logf("%d acknowledged writes, all in the log", n)
		})
	}
}
