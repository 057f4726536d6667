package aof

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// ErrRewriteRunning is StartRewrite's error while a rewrite runs.
var ErrRewriteRunning = errors.New("a rewrite is already in progress")

// rewriteState is a running rewrite: the new snapshot being written shard
// by shard, and the log records of commands on shards already in it, which
// start the new log.
type rewriteState struct {
	a   *Log
	gen int

	fileMu sync.Mutex // guards snap and err
	snap   *bufio.Writer
	snapF  File
	tmp    string // snapF's path
	err    error

	newBuf []byte // guarded by a.mu
	newDB  int    // the database of newBuf's last record; guarded by a.mu
	snapDB int    // the database of the snapshot's last record; guarded by fileMu
}

// StartRewrite begins a rewrite in the background; the channel receives its
// result.
func (a *Log) StartRewrite() (<-chan error, error) {
	if !a.rewriting.CompareAndSwap(false, true) {
		return nil, ErrRewriteRunning
	}
	a.mu.Lock()
	gen := a.gen + 1
	a.mu.Unlock()
	tmp := filepath.Join(a.dir, snapshotName(gen)+".tmp")
	f, err := a.fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		a.rewriting.Store(false)
		a.rewriteDone(err)
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	rw := &rewriteState{a: a, gen: gen, snapF: f, tmp: tmp, snap: bufio.NewWriterSize(f, 256*1024)}
	for g := range a.snapDone { // no shard is in the new snapshot yet
		ks, i := a.shard(g)
		ks.LockShard(i)
		a.snapDone[g] = false
		ks.UnlockShard(i)
	}
	a.rw.Store(rw)
	done := make(chan error, 1)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := rw.run()
		if err != nil {
			a.cfg.Logger.Printf("rewrite %d failed (generation %d stays current): %v", gen, gen-1, err)
		}
		a.rewriteDone(err)
		a.rewriting.Store(false)
		done <- err
	}()
	return done, nil
}

// rewriteDone records the outcome of a rewrite for INFO.
func (a *Log) rewriteDone(err error) {
	if err != nil {
		a.lastRWError.Store(err.Error())
		a.rwFailures.Add(1)
		return
	}
	a.lastRWError.Store("")
	a.rwFailures.Store(0)
	a.rewrites.Add(1)
}

// run writes every shard into the snapshot, then switches to the new
// generation.
func (rw *rewriteState) run() error {
	a := rw.a
	dirtyAtStart := a.cfg.Dirty.Load()
	tmp := rw.tmp
	fail := func(err error) error {
		a.mu.Lock()
		a.rw.Store(nil)
		a.mu.Unlock()
		_ = rw.snapF.Close() // removed anyway
		os.Remove(tmp)
		return err
	}
	if a.cfg.Preamble != nil {
		if pre := a.cfg.Preamble(); len(pre) > 0 {
			rw.fileMu.Lock()
			if rw.err == nil {
				_, rw.err = rw.snap.Write(pre)
			}
			rw.fileMu.Unlock()
		}
	}
	for g := range a.snapDone {
		ks, i := a.shard(g)
		ks.LockShard(i)
		keys := ks.ShardLenLocked(i)
		if !a.snapDone[g] {
			rw.snapshotShardLocked(g)
		}
		ks.UnlockShard(i)
		// (tests) a pause after each shard with keys: the empty shards of
		// unused databases go by at once
		if d := time.Duration(a.shardDelay.Load()); d > 0 && keys > 0 {
			time.Sleep(d)
		}
	}
	rw.fileMu.Lock()
	err := rw.err
	if err == nil {
		err = rw.snap.Flush()
	}
	rw.fileMu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("snapshot: %w", err))
	}
	if err := rw.snapF.Sync(); err != nil {
		return fail(err)
	}
	if err := rw.snapF.Close(); err != nil {
		return fail(err)
	}
	snapPath := filepath.Join(a.dir, snapshotName(rw.gen))
	if err := os.Rename(tmp, snapPath); err != nil {
		return fail(err)
	}
	var snapSize int64
	if st, err := os.Stat(snapPath); err == nil {
		snapSize = st.Size()
	}
	logPath := filepath.Join(a.dir, logName(rw.gen))
	nf, err := a.fs.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.Remove(snapPath)
		return fail(err)
	}
	// Write most of the new log outside the locks, then switch with the
	// writers stopped only for the last piece.
	for range 8 {
		a.mu.Lock()
		chunk := rw.newBuf
		rw.newBuf = nil
		a.mu.Unlock()
		if len(chunk) < 64*1024 {
			a.mu.Lock()
			rw.newBuf = append(chunk, rw.newBuf...)
			a.mu.Unlock()
			break
		}
		if _, err := nf.Write(chunk); err != nil {
			_ = nf.Close() // removed anyway
			os.Remove(logPath)
			os.Remove(snapPath)
			return fail(fmt.Errorf("new log: %w", err))
		}
	}
	a.syncMu.Lock()
	a.writeMu.Lock()
	a.mu.Lock()
	_, err = nf.Write(rw.newBuf)
	if err == nil {
		err = nf.Sync()
	}
	if err != nil {
		err = fmt.Errorf("new log: %w", err)
	} else if err = a.writeManifest(rw.gen, true); err != nil {
		// the rename may have happened before the failure (of the
		// directory's fsync): then the new generation is the current one
		if m, ok, _ := readManifest(a.dir); ok && m.gen == rw.gen {
			a.cfg.Logger.Printf("rewrite %d: %v; the manifest names the new generation: keeping it", rw.gen, err)
			err = nil
		}
	}
	if err != nil {
		a.rw.Store(nil)
		a.mu.Unlock()
		a.writeMu.Unlock()
		a.syncMu.Unlock()
		_ = nf.Close() // removed anyway
		os.Remove(logPath)
		os.Remove(snapPath)
		return err
	}
	old, oldGen := a.f, a.gen
	a.f, a.gen = nf, rw.gen
	// What is still buffered is in the snapshot or already in the new log,
	// also what a failed write held back: the new generation, written
	// and fsynced, holds every change, so the log accepts writes again.
	a.buf = a.buf[:0]
	a.bufDB = rw.newDB
	a.written.Store(a.off)
	a.synced.Store(a.off)
	a.sizeCur = int64(len(rw.newBuf))
	a.sizeBase = snapSize
	if a.writeErr != nil || a.fsyncErr != nil {
		a.cfg.Logger.Printf("rewrite %d wrote everything the failing log held back: accepting writes", rw.gen)
		a.writeErr, a.fsyncErr = nil, nil
		a.failing.Store(false)
	}
	a.rw.Store(nil)
	a.mu.Unlock()
	a.writeMu.Unlock()
	a.syncMu.Unlock()
	if err := old.Close(); err != nil {
		a.cfg.Logger.Printf("rewrite %d: closing the old log: %v", rw.gen, err)
	}
	os.Remove(filepath.Join(a.dir, snapshotName(oldGen)))
	os.Remove(filepath.Join(a.dir, logName(oldGen)))
	a.cfg.Dirty.Add(-dirtyAtStart)
	a.cfg.LastSave.Store(a.cfg.Clock.Now().Unix())
	a.cfg.Logger.Printf("rewrite %d done: snapshot %d bytes", rw.gen, a.sizeBase)
	return nil
}

// snapshotShardLocked writes a shard's keys to the snapshot and marks it
// done; the caller holds the lock of global shard g. Its keys follow a
// SELECT when the snapshot was in another database (a command that
// crosses databases may have a shard written out of order, Prepare).
func (rw *rewriteState) snapshotShardLocked(g int) {
	now := rw.a.cfg.Clock.Now().UnixMilli()
	rw.fileMu.Lock()
	defer rw.fileMu.Unlock()
	var buf []byte
	ks, i := rw.a.shard(g)
	db := g / keyspace.NumShards
	ks.ForEachInShardLocked(i, func(k string, e *keyspace.Entry) {
		if e.ExpiredAt(now) {
			return
		}
		buf = buf[:0]
		if db != rw.snapDB {
			buf = command.AppendSelect(buf, db)
			rw.snapDB = db
		}
		buf = command.AppendEntry(buf, k, e)
		if rw.err == nil {
			_, rw.err = rw.snap.Write(buf)
		}
	})
	rw.a.snapDone[g] = true
}

// shard returns the keyspace and shard of global shard g.
func (a *Log) shard(g int) (*keyspace.Keyspace, int) {
	return a.cfg.DBs[g/keyspace.NumShards].KS, g % keyspace.NumShards
}
