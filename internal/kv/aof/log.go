// Package aof is the persistence of the data store: an append-only log of
// the commands that changed the keyspace, in a data directory, and the
// rewrites that compact it into a snapshot (the commands that recreate
// every key) and a new empty log. Loading replays the snapshot and the log
// through the command layer (command.Table.Apply).
package aof

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-project/gantry/internal/durable"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Log is the append-only log of a data directory and the rewrites that
// compact it into a snapshot.
//

// Writes are appended to an in-memory buffer while the command holds its
// shard locks (so the log order agrees with the order of conflicting
// commands) and get a logical offset. Before a connection sends the replies
// of a pipeline it calls WaitDurable with the highest offset they
// acknowledge: the first waiter becomes the leader, writes the whole buffer
// to the file (and fsyncs it with appendfsync always) while the others
// wait on writeMu and then find their offset covered: a group commit, with
// no goroutine hand-off.
type Log struct {
	cfg Config
	dir string

	writeMu sync.Mutex // held while writing the file (and fsyncing it with always), and to switch files
	syncMu  sync.Mutex // held by the everysec fsync, and to switch files

	mu       sync.Mutex // guards the fields below
	buf      []byte     // appended, not yet written
	spare    []byte
	off      int64 // logical offset of the end of buf
	f        *os.File
	gen      int
	mode     string
	sizeCur  int64 // bytes in the current log file
	sizeBase int64

	on     atomic.Bool // appendonly yes
	always atomic.Bool // appendfsync always

	written atomic.Int64 // offset written to the file (survives a process crash)
	synced  atomic.Int64 // offset fsynced (survives a machine crash)

	rw atomic.Pointer[rewriteState]
	// snapDone[i] is true while a rewrite runs once shard i has been
	// written to the new snapshot: its later writes go to the new log too.
	// Guarded by the keyspace's lock of shard i.
	snapDone    [keyspace.NumShards]bool
	shardDelay  atomic.Int64 // see SetRewriteDelay
	rewriting   atomic.Bool
	lastRWError atomic.Value // string
	rewrites    atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
	lock *os.File // dir/LOCK, held while open
}

// File names in the data directory.
const manifestName = "manifest"

func snapshotName(gen int) string { return "snapshot." + strconv.Itoa(gen) + ".resp" }
func logName(gen int) string      { return "log." + strconv.Itoa(gen) + ".aof" }

// Config configures a Log.
type Config struct {
	// Dir is the data directory; Open creates it and locks it (a second
	// process gets an error).
	Dir string
	// On is appendonly: whether commands are logged (the data directory
	// is loaded either way).
	On bool
	// Fsync is "always", "everysec" or "no".
	Fsync string
	// KS is the keyspace loaded and snapshotted; Table runs the commands
	// of the files; Track is the tracker the server's handlers use.
	KS    *keyspace.Keyspace
	Table *command.Table
	Track *command.Tracker
	// Clock reads the time for expiry while loading and snapshotting.
	Clock interface{ Now() time.Time }
	// Logger receives loading, truncation and rewrite messages.
	Logger *log.Logger
	// Dirty counts the changes since the last snapshot (the server adds
	// to it as commands commit; loading resets it, a rewrite subtracts
	// what it saved); LastSave is the Unix time of the last snapshot.
	Dirty, LastSave *atomic.Int64
}

// Open loads the snapshot and the log of cfg.Dir into cfg.KS and opens
// the log for appending.
func Open(cfg Config) (*Log, error) {
	dir, on, mode := cfg.Dir, cfg.On, cfg.Fsync
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	a := &Log{cfg: cfg, dir: dir, mode: mode, stop: make(chan struct{}), lock: lock}
	a.on.Store(on)
	a.always.Store(mode == "always")
	a.lastRWError.Store("")
	if err := a.load(); err != nil {
		lock.Close()
		return nil, err
	}
	a.wg.Add(1)
	go a.syncLoop()
	return a, nil
}

// Enabled reports whether commands are logged (appendonly).
func (a *Log) Enabled() bool { return a.on.Load() }

// FsyncMode returns the appendfsync policy.
func (a *Log) FsyncMode() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mode
}

// SetFsync changes the appendfsync policy (CONFIG SET appendfsync).
func (a *Log) SetFsync(mode string) {
	a.mu.Lock()
	a.mode = mode
	a.always.Store(mode == "always")
	a.mu.Unlock()
}

// SetEnabled turns the log on or off (CONFIG SET appendonly). Turning it
// on starts a rewrite so the log describes the whole keyspace again.
func (a *Log) SetEnabled(on bool) error {
	was := a.on.Swap(on)
	if on && !was {
		if _, err := a.StartRewrite(); err != nil && !errors.Is(err, ErrRewriteRunning) {
			return err
		}
	}
	return nil
}

// Prepare runs right after a command locked its shards: while a rewrite is
// running, a command whose shards are partly in the new snapshot gets the
// others written to it first, so every shard it touches is on the same
// side of the cut.
func (a *Log) Prepare(shards []int) {
	rw := a.rw.Load()
	if rw == nil || len(shards) < 2 {
		return
	}
	done, notDone := 0, 0
	for _, i := range shards {
		if a.snapDone[i] {
			done++
		} else {
			notDone++
		}
	}
	if done > 0 && notDone > 0 {
		for _, i := range shards {
			if !a.snapDone[i] {
				rw.snapshotShardLocked(i)
			}
		}
	}
}

// Append logs records of a command whose shards are locked and returns
// the offset a reply acknowledging it must wait for.
func (a *Log) Append(rec []byte, shards []int) int64 {
	toNew := false
	rw := a.rw.Load()
	if rw != nil {
		toNew = len(shards) == 0
		for _, i := range shards {
			if a.snapDone[i] {
				toNew = true
				break
			}
		}
	}
	a.mu.Lock()
	a.buf = append(a.buf, rec...)
	a.off += int64(len(rec))
	off := a.off
	if toNew {
		if cur := a.rw.Load(); cur == rw { // not switched meanwhile
			rw.newBuf = append(rw.newBuf, rec...)
		}
	}
	a.mu.Unlock()
	return off
}

// WaitDurable returns once the log holds everything up to off: written to
// the file, and fsynced with appendfsync always.
func (a *Log) WaitDurable(off int64) {
	always := a.always.Load()
	if a.covered(off, always) {
		return
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if a.covered(off, always) {
		return
	}
	a.flushLocked(always)
}

func (a *Log) covered(off int64, always bool) bool {
	if always {
		return a.synced.Load() >= off
	}
	return a.written.Load() >= off
}

// flushLocked writes the buffer to the file and optionally fsyncs it; the
// caller holds writeMu.
func (a *Log) flushLocked(sync bool) {
	a.mu.Lock()
	data := a.buf
	a.buf = a.spare[:0]
	a.spare = nil
	end := a.off
	f := a.f
	a.mu.Unlock()
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			a.cfg.Logger.Printf("append-only log: write: %v", err)
		}
	}
	a.written.Store(end)
	if sync {
		if err := f.Sync(); err != nil {
			a.cfg.Logger.Printf("append-only log: fsync: %v", err)
		}
		for {
			cur := a.synced.Load()
			if cur >= end || a.synced.CompareAndSwap(cur, end) {
				break
			}
		}
	}
	a.mu.Lock()
	a.sizeCur += int64(len(data))
	if cap(data) <= 4<<20 {
		a.spare = data[:0]
	}
	a.mu.Unlock()
}

// syncLoop fsyncs once a second with appendfsync everysec.
func (a *Log) syncLoop() {
	defer a.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		every := a.mode == "everysec"
		pending := a.off > a.synced.Load()
		a.mu.Unlock()
		if every && pending {
			a.syncEverysec()
		}
	}
}

// syncEverysec writes the buffer, then fsyncs without holding writeMu, so
// connections keep writing to the file (without waiting) during the fsync,
// as Redis's background fsync thread allows.
func (a *Log) syncEverysec() {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.writeMu.Lock()
	a.flushLocked(false)
	a.mu.Lock()
	f := a.f
	a.mu.Unlock()
	end := a.written.Load()
	a.writeMu.Unlock()
	if err := f.Sync(); err != nil {
		a.cfg.Logger.Printf("append-only log: fsync: %v", err)
		return
	}
	for {
		cur := a.synced.Load()
		if cur >= end || a.synced.CompareAndSwap(cur, end) {
			return
		}
	}
}

// Info returns the lines of INFO's Persistence section.
func (a *Log) Info() []string {
	on := a.on.Load()
	a.mu.Lock()
	size, base := a.sizeCur, a.sizeBase
	a.mu.Unlock()
	rw := 0
	if a.rewriting.Load() {
		rw = 1
	}
	status := "ok"
	if e, _ := a.lastRWError.Load().(string); e != "" {
		status = "err"
	}
	return []string{
		"rdb_bgsave_in_progress:" + strconv.Itoa(rw),
		"rdb_last_bgsave_status:" + status,
		"aof_enabled:" + strconv.Itoa(int(b2i(on))),
		"aof_rewrite_in_progress:" + strconv.Itoa(rw),
		"aof_rewrites:" + strconv.FormatInt(a.rewrites.Load(), 10),
		"aof_last_bgrewrite_status:" + status,
		"aof_current_size:" + strconv.FormatInt(size+base, 10),
		"aof_base_size:" + strconv.FormatInt(base, 10),
	}
}

// Close waits for a running rewrite, writes and fsyncs what is buffered and
// closes the file.
func (a *Log) Close() error {
	for a.rewriting.Load() {
		time.Sleep(time.Millisecond)
	}
	close(a.stop)
	a.wg.Wait()
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.flushLocked(true)
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.f.Close()
	a.lock.Close()
	return err
}

// writeManifest atomically replaces the manifest with generation gen.
func (a *Log) writeManifest(gen int, withBase bool) error {
	body := "gantry-kv 1\n"
	if withBase {
		body += "base " + snapshotName(gen) + "\n"
	}
	body += "log " + logName(gen) + "\n"
	if err := durable.WriteFile(filepath.Join(a.dir, manifestName), []byte(body), 0o644); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// SetRewriteDelay makes rewrites pause d after each shard, so tests can
// interleave writes with a rewrite.
func (a *Log) SetRewriteDelay(d time.Duration) { a.shardDelay.Store(int64(d)) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
