package kv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
)

var errRewriteRunning = errors.New("a rewrite is already in progress")

// rewriteState is a running rewrite: the new snapshot being written shard
// by shard, and the log records of commands on shards already in it, which
// start the new log.
type rewriteState struct {
	a   *aofLog
	gen int

	fileMu sync.Mutex // guards snap and err
	snap   *bufio.Writer
	snapF  *os.File
	err    error

	newBuf []byte // guarded by a.mu
}

// startRewrite begins a rewrite in the background; the channel receives its
// result.
func (a *aofLog) startRewrite() (<-chan error, error) {
	if !a.rewriting.CompareAndSwap(false, true) {
		return nil, errRewriteRunning
	}
	a.mu.Lock()
	gen := a.gen + 1
	a.mu.Unlock()
	tmp := filepath.Join(a.dir, snapshotName(gen)+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		a.rewriting.Store(false)
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	rw := &rewriteState{a: a, gen: gen, snapF: f, snap: bufio.NewWriterSize(f, 256*1024)}
	ks := a.s.ks
	for i := range ks.shards { // no shard is in the new snapshot yet
		ks.shards[i].mu.Lock()
		ks.shards[i].snapDone = false
		ks.shards[i].mu.Unlock()
	}
	a.rw.Store(rw)
	done := make(chan error, 1)
	a.s.goTracked(func() {
		err := rw.run()
		if err != nil {
			a.s.logger.Printf("rewrite %d failed: %v", gen, err)
			a.lastRWError.Store(err.Error())
		} else {
			a.lastRWError.Store("")
			a.rewrites.Add(1)
		}
		a.rewriting.Store(false)
		done <- err
	})
	return done, nil
}

// run writes every shard into the snapshot, then switches to the new
// generation.
func (rw *rewriteState) run() error {
	a := rw.a
	ks := a.s.ks
	dirtyAtStart := a.s.dirty.Load()
	tmp := rw.snapF.Name()
	fail := func(err error) error {
		a.mu.Lock()
		a.rw.Store(nil)
		a.mu.Unlock()
		rw.snapF.Close()
		os.Remove(tmp)
		return err
	}
	for i := range ks.shards {
		ks.shards[i].mu.Lock()
		if !ks.shards[i].snapDone {
			rw.snapshotShardLocked(i)
		}
		ks.shards[i].mu.Unlock()
		if d := a.s.rewriteShardDelay; d > 0 {
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
		return fail(err)
	}
	st, _ := rw.snapF.Stat()
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
	logPath := filepath.Join(a.dir, logName(rw.gen))
	nf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
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
			nf.Close()
			return fail(err)
		}
	}
	a.syncMu.Lock()
	a.writeMu.Lock()
	a.mu.Lock()
	_, err = nf.Write(rw.newBuf)
	if err == nil {
		err = nf.Sync()
	}
	if err == nil {
		err = a.writeManifest(rw.gen, true)
	}
	if err != nil {
		a.rw.Store(nil)
		a.mu.Unlock()
		a.writeMu.Unlock()
		a.syncMu.Unlock()
		nf.Close()
		os.Remove(logPath)
		os.Remove(snapPath)
		return err
	}
	old, oldGen := a.f, a.gen
	a.f, a.gen = nf, rw.gen
	// What is still buffered is in the snapshot or already in the new log.
	a.buf = a.buf[:0]
	a.written.Store(a.off)
	a.synced.Store(a.off)
	a.sizeCur = int64(len(rw.newBuf))
	if st != nil {
		a.sizeBase = st.Size()
	}
	a.rw.Store(nil)
	a.mu.Unlock()
	a.writeMu.Unlock()
	a.syncMu.Unlock()
	old.Close()
	os.Remove(filepath.Join(a.dir, snapshotName(oldGen)))
	os.Remove(filepath.Join(a.dir, logName(oldGen)))
	a.s.dirty.Add(-dirtyAtStart)
	a.s.lastSave.Store(a.s.clock.Now().Unix())
	a.s.logger.Printf("rewrite %d done: snapshot %d bytes", rw.gen, a.sizeBase)
	return nil
}

// snapshotShardLocked writes a shard's keys to the snapshot and marks it
// done; the caller holds the shard's lock.
func (rw *rewriteState) snapshotShardLocked(i int) {
	ks := rw.a.s.ks
	sh := &ks.shards[i]
	now := rw.a.s.nowMs()
	rw.fileMu.Lock()
	defer rw.fileMu.Unlock()
	var buf []byte
	for _, m := range sh.slots {
		for k, e := range m {
			if e.exp != 0 && e.exp <= now {
				continue
			}
			buf = appendEntry(buf[:0], k, e)
			if rw.err == nil {
				_, rw.err = rw.snap.Write(buf)
			}
		}
	}
	sh.snapDone = true
}

var (
	bRPUSH = []byte("RPUSH")
	bSADD  = []byte("SADD")
)

// appendEntry appends the commands that recreate a key: SET (with PXAT),
// or RPUSH/SADD/HSET/ZADD in batches of 128 elements, then PEXPIREAT.
func appendEntry(b []byte, key string, e *entry) []byte {
	k := []byte(key)
	var expArg []byte
	if e.exp != 0 {
		expArg = strconv.AppendInt(nil, e.exp, 10)
	}
	const batch = 128
	args := make([][]byte, 0, 2+2*batch)
	flush := func() {
		if len(args) > 2 {
			b = resp.AppendCommand(b, args...)
		}
		args = args[:2]
	}
	switch v := e.object().(type) {
	case nil:
		if expArg != nil {
			return resp.AppendCommand(b, bSET, k, e.bytes(), bPXAT, expArg)
		}
		return resp.AppendCommand(b, bSET, k, e.bytes())
	case *list:
		args = append(args, bRPUSH, k)
		for i := 0; i < v.len(); i++ {
			args = append(args, v.at(i))
			if len(args) == 2+batch {
				flush()
			}
		}
	case *set:
		args = append(args, bSADD, k)
		v.each(func(m []byte) {
			args = append(args, m)
			if len(args) == 2+batch {
				flush()
			}
		})
	case *hash:
		args = append(args, bHSET, k)
		v.each(func(f, x []byte) {
			args = append(args, f, x)
			if len(args) >= 2+batch {
				flush()
			}
		})
	case *zset:
		args = append(args, bZADD, k)
		for x := v.header.level[0].forward; x != nil; x = x.level[0].forward {
			args = append(args, fmtScore(x.score), []byte(x.member))
			if len(args) >= 2+batch {
				flush()
			}
		}
	}
	flush()
	if expArg != nil {
		b = resp.AppendCommand(b, bPEXAT, k, expArg)
	}
	return b
}
