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
//
// A write or fsync that fails is never reported as done: WaitDurable
// returns the error (the server answers -MISCONF instead of the replies),
// the bytes stay in the buffer to be written again, a partial write is cut
// from the file (so the file always ends after a whole record), and the log
// is "failing" (Writable is false, the server refuses writes) until a later
// write and fsync of everything held back succeed: on the next write
// attempt, every second, or after a rewrite.
type Log struct {
	cfg Config
	dir string
	fs  FS

	writeMu sync.Mutex // held while writing the file (and fsyncing it with always), and to switch files
	syncMu  sync.Mutex // held by the everysec fsync, and to switch files

	mu       sync.Mutex // guards the fields below
	buf      []byte     // appended, not yet written
	spare    []byte
	off      int64 // logical offset of the end of buf
	bufDB    int   // the database the records of the file and buf are in (each file starts in 0)
	f        File
	gen      int
	mode     string
	sizeCur  int64 // bytes in the current log file, all of them whole records (but see writeFailed)
	sizeBase int64

	// failures, guarded by mu; failing is writeErr != nil || fsyncErr != nil
	writeErr error // the last write (or fsync of appendfsync always) failed
	fsyncErr error // the last background fsync (everysec) failed
	lastErr  error // the latest failure, for INFO
	failures int64 // failed writes and fsyncs since the start

	failing   atomic.Bool
	failSeq   atomic.Int64 // counts failed flushes
	failedEnd int64        // end offset of the last failed flush; guarded by writeMu
	lastRetry atomic.Int64 // Unix ns of the last retry from Writable

	on     atomic.Bool // appendonly yes
	always atomic.Bool // appendfsync always

	written atomic.Int64 // offset written to the file (survives a process crash)
	synced  atomic.Int64 // offset fsynced (survives a machine crash)
	// fsyncing is set while the everysec fsync runs: a write then may
	// wait in the kernel for it (Redis postpones its write for that
	// reason), so it goes through the runtime, which lets other
	// goroutines run meanwhile, instead of writeRaw
	fsyncing atomic.Bool

	rw atomic.Pointer[rewriteState]
	// snapDone[i] is true while a rewrite runs once shard i has been
	// written to the new snapshot: its later writes go to the new log too.
	// Guarded by the keyspace's lock of shard i.
	// Shards are global (command.GlobalShard: database*NumShards+shard).
	snapDone    []bool
	shardDelay  atomic.Int64 // see SetRewriteDelay
	rewriting   atomic.Bool
	lastRWError atomic.Value // string
	rewrites    atomic.Int64
	rwFailures  atomic.Int64 // consecutive failed rewrites

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
	// DBs, when set, are the numbered databases (KS and Track are then
	// database 0's); the log selects them with SELECT records as Redis's
	// does.
	DBs []command.DB
	// Clock reads the time for expiry while loading and snapshotting.
	Clock interface{ Now() time.Time }
	// Logger receives loading, truncation and rewrite messages.
	Logger *log.Logger
	// Dirty counts the changes since the last snapshot (the server adds
	// to it as commands commit; loading resets it, a rewrite subtracts
	// what it saved); LastSave is the Unix time of the last snapshot.
	Dirty, LastSave *atomic.Int64
	// FS opens the files the log writes; nil is OS. Tests inject a full
	// disk or a failing fsync with a FaultFS.
	FS FS
	// Preamble, when set, returns records a snapshot starts with: state
	// other than keys (the function libraries).
	Preamble func() []byte
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
	if len(cfg.DBs) == 0 {
		cfg.DBs = []command.DB{{KS: cfg.KS, Track: cfg.Track}}
	}
	a := &Log{cfg: cfg, dir: dir, fs: cfg.FS, mode: mode, stop: make(chan struct{}), lock: lock}
	a.snapDone = make([]bool, len(cfg.DBs)*keyspace.NumShards)
	if a.fs == nil {
		a.fs = OS
	}
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

// Append logs records of a command of database 0 whose shards are
// locked and returns the offset a reply acknowledging it must wait for.
func (a *Log) Append(rec []byte, shards []int) int64 { return a.AppendDB(0, rec, shards) }

// AppendDB is Append for a command of database db; shards are global
// (command.GlobalShard). A SELECT record goes first when the log was in
// another database.
func (a *Log) AppendDB(db int, rec []byte, shards []int) int64 {
	return a.AppendSpan(db, db, rec, shards)
}

// AppendSpan is AppendDB for records that start in database db and end
// in endDB: a transaction whose commands SELECT, as Redis logs it.
func (a *Log) AppendSpan(db, endDB int, rec []byte, shards []int) int64 {
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
	if db != a.bufDB {
		n := len(a.buf)
		a.buf = command.AppendSelect(a.buf, db)
		a.off += int64(len(a.buf) - n)
		a.bufDB = db
	}
	a.buf = append(a.buf, rec...)
	a.off += int64(len(rec))
	a.bufDB = endDB
	off := a.off
	if toNew {
		if cur := a.rw.Load(); cur == rw { // not switched meanwhile
			if db != rw.newDB {
				rw.newBuf = command.AppendSelect(rw.newBuf, db)
				rw.newDB = db
			}
			rw.newBuf = append(rw.newBuf, rec...)
			rw.newDB = endDB
		}
	}
	a.mu.Unlock()
	return off
}

// WaitDurable returns nil once the log holds everything up to off:
// written to the file, and fsynced with appendfsync always. When the write
// (or that fsync) fails it returns the error instead: the writes after
// DurableOffset must not be acknowledged. Their bytes stay buffered and
// are written again by the next attempt.
func (a *Log) WaitDurable(off int64) error {
	always := a.always.Load()
	if a.covered(off, always) {
		return nil
	}
	seq := a.failSeq.Load()
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if a.covered(off, always) {
		return nil
	}
	if a.failSeq.Load() != seq && a.failedEnd >= off {
		// the flush we waited for failed and covered off: take its
		// answer rather than every waiter trying the full disk in turn
		return a.Failure()
	}
	return a.flushLocked(always)
}

func (a *Log) covered(off int64, always bool) bool {
	if always {
		return a.synced.Load() >= off
	}
	return a.written.Load() >= off
}

// DurableOffset returns the offset up to which replies may be sent (see
// WaitDurable) under the current appendfsync policy.
func (a *Log) DurableOffset() int64 {
	if a.always.Load() {
		return a.synced.Load()
	}
	return a.written.Load()
}

// flushLocked writes the buffer to the file and optionally fsyncs it; the
// caller holds writeMu. On failure nothing of the buffer counts as
// written (see writeFailed).
func (a *Log) flushLocked(sync bool) error {
	a.mu.Lock()
	data := a.buf
	a.buf = a.spare[:0]
	a.spare = nil
	end := a.off
	f := a.f
	good := a.sizeCur
	a.mu.Unlock()
	if len(data) > 0 {
		n, raw, err := 0, false, error(nil)
		if !a.fsyncing.Load() {
			n, raw, err = writeRaw(f, data)
		}
		if !raw {
			n, err = f.Write(data)
		}
		if err != nil {
			return a.writeFailed(f, data, n, good, end, err)
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			// a failed fsync may have dropped the dirty pages: cut what
			// this flush wrote and write it again on the next attempt
			// rather than trust the page cache
			return a.writeFailed(f, data, len(data), good, end, err)
		}
	}
	a.written.Store(end) // only flushes move it, under writeMu
	if sync {
		advance(&a.synced, end)
	}
	a.mu.Lock()
	a.sizeCur = good + int64(len(data))
	if cap(data) <= 4<<20 {
		a.spare = data[:0]
	}
	if a.writeErr != nil || sync && a.fsyncErr != nil {
		a.cfg.Logger.Printf("append-only log: writing succeeds again, accepting writes (the failure was: %v)", a.lastErr)
		a.writeErr = nil
		if sync {
			a.fsyncErr = nil
		}
		a.failing.Store(a.fsyncErr != nil)
	}
	a.mu.Unlock()
	return nil
}

// writeFailed handles a flush of data that failed after n bytes reached
// the file (n = len(data) for a failed fsync): it cuts the file back to
// good, the end of its last whole record, so that the next write does not
// follow half a command (the loader would drop everything after it), and
// puts data back in front of the buffer. When the cut fails too, the n
// bytes stay in the file and only the rest goes back: the file then ends
// inside a record, which the next successful write completes. The caller
// holds writeMu.
func (a *Log) writeFailed(f File, data []byte, n int, good, end int64, err error) error {
	kept := data
	if n > 0 {
		if terr := f.Truncate(good); terr != nil {
			a.cfg.Logger.Printf("append-only log: cannot cut a failed write back to %d bytes: %v", good, terr)
			good += int64(n)
			kept = data[n:]
		}
	}
	advance(&a.written, end-int64(len(kept)))
	err = fmt.Errorf("append-only log: %w", err)
	a.mu.Lock()
	a.sizeCur = good
	held := data[:copy(data, kept)] // kept is a tail of data: move it down
	held = append(held, a.buf...)   // what was appended meanwhile
	if cap(a.buf) <= 4<<20 {
		a.spare = a.buf[:0]
	}
	a.buf = held
	if a.writeErr == nil && a.fsyncErr == nil {
		a.cfg.Logger.Printf("%v: refusing writes until the log is writable again (%d bytes held back)", err, len(held))
	}
	a.writeErr, a.lastErr = err, err
	a.failures++
	a.failing.Store(true)
	a.failedEnd = end
	a.failSeq.Add(1)
	a.mu.Unlock()
	return err
}

// advance raises v to off unless it is already there.
func advance(v *atomic.Int64, off int64) {
	for {
		cur := v.Load()
		if cur >= off || v.CompareAndSwap(cur, off) {
			return
		}
	}
}

// retryInterval is how often Writable tries the disk again while the log
// is failing (the background loop also tries every second).
const retryInterval = 100 * time.Millisecond

// Writable reports whether the server may run a write: the log is off,
// or its writes and fsyncs succeed. While they fail it tries again (write
// and fsync everything held back) at most every retryInterval, without
// waiting for a flush in progress, so writes resume as soon as the disk
// has space.
func (a *Log) Writable() bool {
	if !a.failing.Load() { // the write path: inlined, one atomic load
		return true
	}
	return a.retryWritable()
}

func (a *Log) retryWritable() bool {
	if !a.on.Load() {
		return true
	}
	now := time.Now().UnixNano()
	last := a.lastRetry.Load()
	if now-last >= int64(retryInterval) && a.lastRetry.CompareAndSwap(last, now) && a.writeMu.TryLock() {
		_ = a.flushLocked(true) // a failure is recorded for Failure
		a.writeMu.Unlock()
	}
	return !a.failing.Load()
}

// Failure returns why the log refuses writes (a failed write or fsync),
// nil when it accepts them.
func (a *Log) Failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.writeErr != nil {
		return a.writeErr
	}
	return a.fsyncErr
}

// Reason returns the part of a log error a client is told: the system's
// description of the error number ("no space left on device"), or the
// whole error when there is none.
func Reason(err error) string {
	if en := errnoOf(err); en != 0 {
		return en.Error()
	}
	return err.Error()
}

// syncLoop fsyncs once a second with appendfsync everysec, and while the
// log is failing tries to write and fsync what it holds back.
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
		_ = a.Fsync() // a failure is recorded for Writable and INFO
	}
}

// Fsync is the background loop's work, once: while the log is failing,
// write and fsync everything held back; with appendfsync everysec, write
// the buffer and fsync. It returns the failure, if any.
func (a *Log) Fsync() error {
	if a.failing.Load() {
		a.writeMu.Lock()
		err := a.flushLocked(true)
		a.writeMu.Unlock()
		return err
	}
	a.mu.Lock()
	every := a.mode == "everysec"
	pending := a.off > a.synced.Load()
	a.mu.Unlock()
	if every && pending {
		return a.syncEverysec()
	}
	return nil
}

// syncEverysec writes the buffer, then fsyncs without holding writeMu, so
// connections keep writing to the file (without waiting) during the fsync,
// as Redis's background fsync thread allows. A failed fsync makes the log
// refuse writes until an fsync succeeds (what was written before it was
// acknowledged already: everysec promises the page cache only).
func (a *Log) syncEverysec() error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.writeMu.Lock()
	werr := a.flushLocked(false)
	a.mu.Lock()
	f := a.f
	a.mu.Unlock()
	end := a.written.Load()
	a.fsyncing.Store(true)
	a.writeMu.Unlock()
	err := f.Sync()
	a.fsyncing.Store(false)
	if err != nil {
		err = fmt.Errorf("append-only log: fsync: %w", err)
		a.mu.Lock()
		if a.writeErr == nil && a.fsyncErr == nil {
			a.cfg.Logger.Printf("%v: refusing writes until an fsync succeeds", err)
		}
		a.fsyncErr, a.lastErr = err, err
		a.failures++
		a.failing.Store(true)
		a.mu.Unlock()
		return err
	}
	advance(&a.synced, end)
	a.mu.Lock()
	if a.fsyncErr != nil {
		a.fsyncErr = nil
		a.failing.Store(a.writeErr != nil)
		if a.writeErr == nil {
			a.cfg.Logger.Printf("append-only log: fsync works again: accepting writes")
		}
	}
	a.mu.Unlock()
	return werr
}

// Info returns the lines of INFO's Persistence section.
func (a *Log) Info() []string {
	on := a.on.Load()
	a.mu.Lock()
	size, base, held := a.sizeCur, a.sizeBase, len(a.buf)
	failure := a.writeErr
	if failure == nil {
		failure = a.fsyncErr
	}
	failures := a.failures
	a.mu.Unlock()
	rw := 0
	if a.rewriting.Load() {
		rw = 1
	}
	rwStatus := "ok"
	if e, _ := a.lastRWError.Load().(string); e != "" {
		rwStatus = "err"
	}
	writeStatus, errno, reason := "ok", 0, ""
	if failure != nil {
		writeStatus, errno, reason = "err", int(errnoOf(failure)), Reason(failure)
	}
	return []string{
		"rdb_bgsave_in_progress:" + strconv.Itoa(rw),
		"rdb_last_bgsave_status:" + rwStatus,
		"aof_enabled:" + strconv.Itoa(int(b2i(on))),
		"aof_rewrite_in_progress:" + strconv.Itoa(rw),
		"aof_rewrites:" + strconv.FormatInt(a.rewrites.Load(), 10),
		"aof_rewrites_consecutive_failures:" + strconv.FormatInt(a.rwFailures.Load(), 10),
		"aof_last_bgrewrite_status:" + rwStatus,
		"aof_last_write_status:" + writeStatus,
		"aof_last_write_errno:" + strconv.Itoa(errno),
		"aof_last_write_error:" + reason,
		"aof_write_errors:" + strconv.FormatInt(failures, 10),
		"aof_current_size:" + strconv.FormatInt(size+base, 10),
		"aof_base_size:" + strconv.FormatInt(base, 10),
		"aof_buffer_length:" + strconv.Itoa(held),
	}
}

// Close waits for a running rewrite, writes and fsyncs what is buffered and
// closes the file. It fails when that last write does: the buffered
// writes (none of them acknowledged) are lost.
func (a *Log) Close() error {
	for a.rewriting.Load() {
		time.Sleep(time.Millisecond)
	}
	close(a.stop)
	a.wg.Wait()
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	ferr := a.flushLocked(true)
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.f.Close()
	a.lock.Close()
	if ferr != nil {
		return fmt.Errorf("closing with %d bytes not logged: %w", len(a.buf), ferr)
	}
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

// Snapshotting reports whether a rewrite is cutting the keyspace (a
// command taking more shards after changing some must not straddle its
// cut).
func (a *Log) Snapshotting() bool { return a.rw.Load() != nil }
