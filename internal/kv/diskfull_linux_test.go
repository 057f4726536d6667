//go:build linux

package kv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// mountTmpfs mounts a tmpfs of size (such as "5m") on a temporary
// directory, unmounted when the test ends; it skips the test where
// mounting is not allowed (it needs root or CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a %s tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64*1024)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// TestKill9DiskFull runs the built peer with its data directory on a 5 MB
// tmpfs: 200 writes, then the disk is filled, then writes (each must get
// an error, unless the log really holds it), then the space is freed, 100
// more writes, kill -9 and a restart. Every acknowledged write must be
// there; a refused write may be (the log held it back and wrote it once
// it could) but is not counted as lost.
func TestKill9DiskFull(t *testing.T) {
	bin, err := buildGantry()
	if err != nil {
		t.Fatal(err)
	}
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			mnt := mountTmpfs(t, "5m")
			dir := filepath.Join(mnt, "data")
			p := startPeer(t, bin, dir, fsync)
			killed := false
			defer func() {
				if !killed {
					p.cmd.Process.Kill()
					p.cmd.Wait()
				}
			}()
			ctx := context.Background()
			c := redis.NewClient(&redis.Options{Addr: p.addr, DisableIdentity: true, MaxRetries: -1})
			defer c.Close()
			value := func(k string) string { return k + ":" + strings.Repeat("v", 1000) }
			acked := map[string]bool{}
			var refused []string
			set := func(k string) error {
				err := c.Set(ctx, k, value(k), 0).Err()
				if err == nil {
					acked[k] = true
				} else {
					refused = append(refused, k)
				}
				return err
			}

			for i := range 200 {
				if err := set(fmt.Sprintf("before:%d", i)); err != nil {
					t.Fatalf("write %d with space: %v", i, err)
				}
			}
			filler := filepath.Join(mnt, "filler")
			fillDisk(t, filler)
			for i := range 50 {
				err := set(fmt.Sprintf("full:%d", i))
				if err != nil && !strings.HasPrefix(err.Error(), "MISCONF Errors writing to the AOF file: no space left on device") {
					t.Fatalf("write on a full disk: %v, want MISCONF", err)
				}
			}
			// the last page of the log may still take a few bytes; beyond
			// that every write must be refused
			if len(refused) < 40 {
				t.Errorf("only %d of 50 writes on a full disk were refused", len(refused))
			}
			if got := c.Info(ctx, "persistence").Val(); !strings.Contains(got, "aof_last_write_status:err") {
				t.Errorf("INFO persistence on a full disk:\n%s", got)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for n := 0; set(fmt.Sprintf("probe:%d", n)) != nil; n++ { // the peer retries on writes and every second
				if time.Now().After(deadline) {
					t.Fatalf("writes still refused after the space was freed: %s", p.out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			for i := range 100 {
				if err := set(fmt.Sprintf("after:%d", i)); err != nil {
					t.Fatalf("write %d after the space was freed: %v", i, err)
				}
			}
			p.cmd.Process.Kill() // SIGKILL
			p.cmd.Wait()
			killed = true

			p2 := startPeer(t, bin, dir, fsync)
			defer func() {
				p2.cmd.Process.Kill()
				p2.cmd.Wait()
			}()
			c2 := redis.NewClient(&redis.Options{Addr: p2.addr, DisableIdentity: true})
			defer c2.Close()
			var lost []string
			for k := range acked {
				if v, err := c2.Get(ctx, k).Result(); err != nil || v != value(k) {
					lost = append(lost, k)
				}
			}
			present := 0
			for _, k := range refused {
				if c2.Exists(ctx, k).Val() == 1 {
					present++
				}
			}
			if len(lost) > 0 {
				t.Fatalf("%d of %d acknowledged writes lost after kill -9 (such as %s)\n%s",
					len(lost), len(acked), lost[0], p2.out.String())
			}
			t.Logf("%s: %d acknowledged writes survived kill -9; %d refused writes, %d of them written once the disk had space",
				fsync, len(acked), len(refused), present)
		})
	}
}
