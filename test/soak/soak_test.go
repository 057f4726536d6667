//go:build linux

package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/testutil"
)

const (
	seed = 13 // the load's random choices; the interleaving is the machine's

	maxMemory   = 16 << 20 // the peer's --maxmemory
	hardLimit   = 1 << 20  // client-output-buffer-limit normal hard
	outputLimit = "normal 1mb 256kb 2"
	bigSize     = 50 << 10 // the values slow and non-reading clients GET
	cacheKeys   = 20000    // keys with an expiry, about 23 MB in all

	durableWriters = 3
	cacheWriters   = 2
	readers        = 2
	slowClients    = 2

	nonReadingBatches = 8
	nonReadingPer     = 3
	nonReadingGets    = 1000 // 50 MB of replies each, without the output limit

	// rssBound is the most RSS the peer may reach. The keys and values are
	// at most maxmemory by the peer's estimate; the Go heap may hold about
	// twice its live data between collections (GOGC=100), and a rewrite
	// serialises shards beside it: 3 × maxmemory. Each non-reading client
	// holds at most the hard limit plus one reply before it is closed, and
	// all 24 may be alive at once: 24 × 2 × hardLimit, counting the freed
	// buffers the runtime has not returned yet. 64 MB cover the runtime,
	// the binary, the other clients' buffers and the log's buffer (the
	// peer starts at about 20 MB). Without the output limits and
	// backpressure of issue 13, the non-reading clients alone would make
	// the peer hold their 24 × 50 MB of replies (1.8 GB was measured for
	// four such clients before the fix, docs/kv.md "Limits"). Backpressure
	// alone would keep them small: the count of clients closed by the
	// output limit, checked below, is what catches a missing limit.
	rssBound = 3*maxMemory + nonReadingBatches*nonReadingPer*2*hardLimit + 64<<20

	// The disk holds the log comfortably; it is then filled by a file.
	tmpfsSize = "160m"
)

// peerArgs are the flags of both runs of the peer.
func peerArgs(port int, dataDir string) []string {
	return []string{"peer", "--port", strconv.Itoa(port), "--data-dir", dataDir,
		"--appendfsync", "always",
		"--maxmemory", strconv.Itoa(maxMemory), "--maxmemory-policy", "volatile-lru",
		"--client-output-buffer-limit", outputLimit}
}

// TestSoak: a peer on a small tmpfs with `appendfsync always`, a 16 MB
// maxmemory under volatile-lru, and at once durable writers (keys without
// expiry, which that policy never evicts), cache writers (keys with an
// expiry, evicted), readers checking every value, slow clients that must
// be served and batches of clients that never read and must be closed.
// Meanwhile: SAVEs (log rewrites) under load, a phase under noeviction
// (writes get -OOM), the disk filled (writes get -MISCONF, SAVE fails) and
// freed (writes resume). Then kill -9, a restart from the data directory,
// and every acknowledged write must be there with its value; RSS sampled
// throughout stays under rssBound.
func TestSoak(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("soak: needs /proc to sample the peer's RSS")
	}
	started := time.Now()
	mnt := mountTmpfs(t, tmpfsSize)
	dataDir := filepath.Join(mnt, "data")
	port := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	peer := testutil.StartProc(t, gantryBin, "peer", peerArgs(port, dataDir)...)
	admin := newClient(addr)
	defer admin.Close()
	ctx := context.Background()
	testutil.WaitFor(t, 30*time.Second, 50*time.Millisecond, "the peer to serve", func() (bool, string) {
		err := admin.Ping(ctx).Err()
		return err == nil, fmt.Sprint(err)
	})
	for j := range 4 {
		k := fmt.Sprintf("big:%d", j)
		if err := admin.Set(ctx, k, bigValue(k), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// the cache keys start at the limit, so eviction runs from the start
	preload := admin.Pipeline()
	for i := range cacheKeys {
		k := fmt.Sprintf("c:%d", i)
		preload.Set(ctx, k, cacheValue(k, 256+int(hash(k)%1792)), time.Hour)
	}
	if _, err := preload.Exec(ctx); err != nil {
		t.Fatalf("preloading the cache keys: %v", err)
	}

	rss := sampleRSS(peer.Cmd.Process.Pid)
	defer rss.stop()
	loadCtx, stopLoad := context.WithTimeout(ctx, 3*time.Minute)
	defer stopLoad()
	var cnt counters
	ledgers := make([]ledger, durableWriters)
	var wg sync.WaitGroup
	for i := range durableWriters {
		wg.Go(func() { durableWriter(loadCtx, t, addr, i, seed, &cnt, &ledgers[i], 20000) })
	}
	for i := range cacheWriters {
		wg.Go(func() { cacheWriter(loadCtx, t, addr, i, seed, &cnt, 40000) })
	}
	for i := range readers {
		wg.Go(func() { reader(loadCtx, t, addr, i, seed, &cnt, durableWriters, 50000) })
	}
	for i := range slowClients {
		wg.Go(func() { slowClient(loadCtx, t, addr, i, &cnt, 2000) })
	}
	var nonReading []net.Conn
	var nonReadingMu sync.Mutex
	wg.Go(func() {
		for b := 0; b < nonReadingBatches && loadCtx.Err() == nil; b++ {
			for range nonReadingPer {
				nc, err := nonReadingClient(addr, nonReadingGets)
				if err != nil {
					t.Errorf("non-reading client: %v", err)
					return
				}
				nonReadingMu.Lock()
				nonReading = append(nonReading, nc)
				nonReadingMu.Unlock()
			}
			sleepCtx(loadCtx, 3*time.Second)
		}
	})
	defer func() {
		stopLoad()
		wg.Wait()
		for _, nc := range nonReading {
			nc.Close()
		}
	}()
	probe := &ledger{strings: map[string]bool{}}
	probes := 0
	// set writes one probe key and records it if acknowledged
	set := func() error {
		k := fmt.Sprintf("probe:%d", probes)
		probes++
		err := admin.Set(ctx, k, durableValue(k), 0).Err()
		if err == nil {
			probe.strings[k] = true
		}
		return err
	}
	phase := func(what string, d time.Duration) {
		t.Logf("%5.1fs %s (%s): durable %d acked, %d MISCONF, %d OOM; cache %d acked, %d refused; %d reads, %d slow rounds",
			time.Since(started).Seconds(), what, d, cnt.acked.Load(), cnt.misconf.Load(), cnt.oom.Load(),
			cnt.cacheAcked.Load(), cnt.cacheRefused.Load(), cnt.reads.Load(), cnt.slowRounds.Load())
		sleepCtx(loadCtx, d)
	}

	phase("warm-up under volatile-lru", 8*time.Second)
	if n := infoInt(t, admin, "stats", "evicted_keys"); n == 0 {
		t.Errorf("no key evicted under volatile-lru after the warm-up (used_memory %d)", infoInt(t, admin, "memory", "used_memory"))
	}
	if err := admin.Save(ctx).Err(); err != nil { // compacts the log
		t.Errorf("SAVE: %v", err)
	}

	configSet(t, admin, "maxmemory-policy", "noeviction")
	phase("noeviction", 4*time.Second)
	testutil.WaitFor(t, 30*time.Second, 50*time.Millisecond, "writes refused with OOM under noeviction", func() (bool, string) {
		err := set()
		return err != nil && strings.HasPrefix(err.Error(), "OOM "), fmt.Sprint(err)
	})
	configSet(t, admin, "maxmemory-policy", "volatile-lru")
	phase("volatile-lru again", 4*time.Second)
	if err := admin.Save(ctx).Err(); err != nil {
		t.Errorf("SAVE: %v", err)
	}

	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	ackedAtFill := cnt.acked.Load()
	t.Logf("%5.1fs disk full", time.Since(started).Seconds())
	testutil.WaitFor(t, 30*time.Second, 50*time.Millisecond, "writes refused on the full disk", func() (bool, string) {
		err := set()
		return err != nil && strings.HasPrefix(err.Error(), "MISCONF "), fmt.Sprint(err)
	})
	if st := infoField(t, admin, "persistence", "aof_last_write_status"); st != "err" {
		t.Errorf("aof_last_write_status:%s on a full disk, want err", st)
	}
	ackedAtRefusal := cnt.acked.Load()
	phase("disk full", 5*time.Second)
	if err := admin.Save(ctx).Err(); err == nil {
		t.Errorf("SAVE on a full disk succeeded")
	}
	for range 20 {
		if err := set(); err == nil || !strings.HasPrefix(err.Error(), "MISCONF ") {
			t.Fatalf("a write on a full disk: %v, want MISCONF", err)
		}
	}
	// Reported, not asserted: a retry of the log may succeed if space
	// appears, and then acknowledging is right; the restart checks them.
	ackedWhileRefusing := cnt.acked.Load() - ackedAtRefusal
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	cleared := time.Now()
	t.Logf("%5.1fs disk freed", time.Since(started).Seconds())
	testutil.WaitFor(t, 30*time.Second, 50*time.Millisecond, "writes to resume once the disk has space", func() (bool, string) {
		err := set()
		return err == nil, fmt.Sprint(err)
	})
	resumedAfter := time.Since(cleared)
	if st := infoField(t, admin, "persistence", "aof_last_write_status"); st != "ok" {
		t.Errorf("aof_last_write_status:%s after the disk was freed, want ok", st)
	}
	ackedAfterClear := cnt.acked.Load()
	// No SAVE from here on: the restart reads the log written across the
	// failure, which must hold every write acknowledged before and after
	// it (a rewrite would write the memory afresh and hide a damaged log).
	phase("disk has space again", 8*time.Second)
	if cnt.acked.Load() == ackedAfterClear {
		t.Errorf("no durable write acknowledged after the disk was freed")
	}

	stopLoad()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every non-reading client was closed by the hard output limit, and
	// nothing else was (the slow clients stayed under the soft limit).
	want := int64(len(nonReading))
	testutil.WaitFor(t, 60*time.Second, 100*time.Millisecond, "the non-reading clients to be closed", func() (bool, string) {
		n := infoInt(t, admin, "stats", "client_output_buffer_limit_disconnections")
		return n >= want, fmt.Sprintf("%d of %d closed", n, want)
	})
	if n := infoInt(t, admin, "stats", "client_output_buffer_limit_disconnections"); n != want {
		t.Errorf("%d clients closed by the output limit, want the %d non-reading ones", n, want)
	}
	for i, nc := range nonReading {
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, nc) // the few replies in flight, then the end
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("non-reading client %d is still open", i)
		}
	}
	evicted := infoInt(t, admin, "stats", "evicted_keys")
	oomRejected := infoInt(t, admin, "stats", "gantry_oom_rejected_commands")
	// the load met every condition it is meant to
	for what, n := range map[string]int64{
		"durable writes refused with MISCONF": cnt.misconf.Load(),
		"durable writes refused with OOM":     cnt.oom.Load(),
		"commands refused with OOM (INFO)":    oomRejected,
		"keys evicted":                        evicted,
		"slow client rounds":                  cnt.slowRounds.Load(),
		"reads":                               cnt.reads.Load(),
	} {
		if n == 0 {
			t.Errorf("no %s", what)
		}
	}
	peakRSS, hwm := rss.stop(), rssKB(peer.Cmd.Process.Pid, "VmHWM")<<10
	peakRSS = max(peakRSS, hwm)

	// kill -9 and restart from the data directory
	peer.Kill9()
	port2 := testutil.FreePort(t)
	testutil.StartProc(t, gantryBin, "peer (restarted)", peerArgs(port2, dataDir)...)
	check := newClient(fmt.Sprintf("127.0.0.1:%d", port2))
	defer check.Close()
	testutil.WaitFor(t, 60*time.Second, 50*time.Millisecond, "the restarted peer to serve", func() (bool, string) {
		err := check.Ping(ctx).Err()
		return err == nil, fmt.Sprint(err)
	})
	ackedTotal := verify(t, check, append(ledgers, *probe))

	t.Logf("soak: %s; %d acknowledged writes checked after kill -9 and restart (%d acknowledged between filling the disk and the first refusal, %d while writes were refused); "+
		"refused: %d MISCONF, %d OOM (durable writers; %d refused cache writes); %d cache writes; %d keys evicted; %d commands refused with OOM in all; "+
		"%d reads, %d slow-client rounds; %d non-reading clients closed by the output limit; writes resumed %s after the disk was freed; "+
		"peak RSS %d MB (bound %d MB)",
		time.Since(started).Round(time.Second), ackedTotal, ackedAtRefusal-ackedAtFill, ackedWhileRefusing,
		cnt.misconf.Load(), cnt.oom.Load(), cnt.cacheRefused.Load(), cnt.cacheAcked.Load(), evicted, oomRejected,
		cnt.reads.Load(), cnt.slowRounds.Load(), len(nonReading), resumedAfter.Round(time.Millisecond),
		peakRSS>>20, rssBound>>20)
	if peakRSS > rssBound {
		t.Errorf("peak RSS %d bytes, bound %d", peakRSS, rssBound)
	}
}

// verify checks every acknowledged write of the ledgers on the restarted
// peer and returns how many there were.
func verify(t *testing.T, rdb *redis.Client, ledgers []ledger) int {
	t.Helper()
	ctx := context.Background()
	total, lost := 0, 0
	report := func(format string, args ...any) {
		if lost++; lost <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, l := range ledgers {
		keys := make([]string, 0, len(l.strings))
		for k := range l.strings {
			keys = append(keys, k)
		}
		for len(keys) > 0 {
			batch := keys[:min(len(keys), 1000)]
			keys = keys[len(batch):]
			vals, err := rdb.MGet(ctx, batch...).Result()
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range batch {
				if v, _ := vals[i].(string); v != durableValue(k) {
					report("acknowledged SET %s lost: %v", k, vals[i])
				}
			}
			total += len(batch)
		}
		if l.hash != "" {
			got, err := rdb.HGetAll(ctx, l.hash).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f := range l.fields {
				if got[f] != durableValue(f) {
					report("acknowledged HSET %s %s lost: %q", l.hash, f, got[f])
				}
			}
			total += len(l.fields)
		}
		if l.list != "" {
			got, err := rdb.LRange(ctx, l.list, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			// the acknowledged elements in order; a refused RPUSH that ran
			// before the log failed may sit between them
			j := 0
			for _, e := range got {
				if j < len(l.elems) && e == l.elems[j] {
					j++
				}
			}
			if j < len(l.elems) {
				report("list %s: acknowledged element %d of %d (%s) missing or out of order", l.list, j, len(l.elems), l.elems[j])
			}
			total += len(l.elems)
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged writes lost of %d", lost, total)
	}
	return total
}

// rssSampler reads the peer's VmRSS every 100 ms.
type rssSampler struct {
	once sync.Once
	done chan struct{}
	peak chan int64
	max  int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, rssKB(pid, "VmRSS")<<10)
			select {
			case <-s.done:
				s.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak in bytes.
func (s *rssSampler) stop() int64 {
	s.once.Do(func() {
		close(s.done)
		s.max = <-s.peak
	})
	return s.max
}

// rssKB returns a field of /proc/pid/status in KB (VmRSS, VmHWM), 0 if
// the process is gone.
func rssKB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func infoField(t *testing.T, rdb *redis.Client, section, field string) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			return v
		}
	}
	t.Fatalf("INFO %s has no %s:\n%s", section, field, info)
	return ""
}

func infoInt(t *testing.T, rdb *redis.Client, section, field string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(infoField(t, rdb, section, field), 10, 64)
	if err != nil {
		t.Fatalf("INFO %s: %v", field, err)
	}
	return n
}

func configSet(t *testing.T, rdb *redis.Client, name, value string) {
	t.Helper()
	if err := rdb.ConfigSet(context.Background(), name, value).Err(); err != nil {
		t.Fatalf("CONFIG SET %s %s: %v", name, value, err)
	}
}

// mountTmpfs mounts a tmpfs of size on a temporary directory, unmounted
// when the test ends. Filling a small file system of its own is the only
// way to give the peer a full disk without filling the machine's; where
// mounting is not allowed (it needs root or CAP_SYS_ADMIN) the test skips.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("soak: cannot mount a %s tmpfs to fill (needs root or CAP_SYS_ADMIN, e.g. docker run --privileged): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
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
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			// the last partial chunk: fill the remaining pages one by one
			for {
				if _, err := f.Write(chunk[:4096]); err != nil {
					return
				}
			}
		}
	}
}
