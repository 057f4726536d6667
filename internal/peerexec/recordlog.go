package peerexec

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/gantry-project/gantry/internal/durable"
)

// The re-attach record log keeps, in one append-only file per peer, what
// a restarted peer needs to re-attach to the tasks it ran: a start record
// (the allocation and the driver's handle, JSON) when a task starts, an
// end record when it ends for good. It replaces a record file per task
// (a temporary file written and renamed per start, removed per end),
// which was the largest CPU cost of a peer's placements.
//
// Durability is the per-task files': a record is written (write(2): in
// the OS's page cache, no fsync) before the task is reported running, so
// it survives the death of the peer's process (kill -9, a crash), not a
// machine crash (which ends the tasks too). Appends that arrive while
// another write is in flight share the next write (group commit).
//
// File layout: recordLogMagic, then records, each
//
//	length uint32 LE (of the body) | CRC-32C uint32 LE (of the body) | body
//	body: kind byte | ID length byte | ID | payload
//
// (a start record's payload is its JSON taskRecord; an end record has
// none). A torn tail (a write cut by the process's death, or a last
// record that fails its checksum) is truncated with a log line; a record
// that fails its checksum with intact records after it is corruption:
// the file is moved aside and reported (see recordLog.open).
const (
	recordLogFile   = "peer-tasks.log"
	recordLogMagic  = "gantry peer task records 1\n"
	recordHeaderLen = 8

	recStart byte = 1
	recEnd   byte = 2

	// maxRecordBody bounds one record: kind, ID length, an ID of at
	// most 255 bytes, a task record of at most maxTaskRecord.
	maxRecordBody = 2 + 255 + maxTaskRecord
	// defaultRecordLogLimit bounds the file: about 100,000 running tasks'
	// records with jobs of a few KiB, far beyond what one peer runs.
	defaultRecordLogLimit = 256 << 20
	// defaultCompactMin: a smaller log is never compacted (its dead
	// records cost less than rewriting it).
	defaultCompactMin = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errLogClosed      = errors.New("task record log closed")
	errRecordShort    = errors.New("record cut short")
	errRecordChecksum = errors.New("record checksum mismatch")
)

// appendRecord appends one record's encoding to b.
func appendRecord(b []byte, kind byte, id string, payload []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(2+len(id)+len(payload)))
	b = binary.LittleEndian.AppendUint32(b, 0) // the checksum, below
	b = append(b, kind, byte(len(id)))
	b = append(b, id...)
	b = append(b, payload...)
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+recordHeaderLen:], castagnoli))
	return b
}

// decodeRecord decodes the record at the start of b: its kind, ID,
// payload (within b) and encoded size. errRecordShort: b ends inside
// the record; errRecordChecksum: the body does not match its checksum;
// any other error: a record no writer makes.
func decodeRecord(b []byte) (kind byte, id string, payload []byte, size int, err error) {
	if len(b) < recordHeaderLen {
		return 0, "", nil, 0, errRecordShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n < 2 || n > maxRecordBody {
		return 0, "", nil, 0, fmt.Errorf("record length %d outside 2-%d", n, maxRecordBody)
	}
	if uint64(len(b)-recordHeaderLen) < uint64(n) {
		return 0, "", nil, 0, errRecordShort
	}
	body := b[recordHeaderLen : recordHeaderLen+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, "", nil, 0, errRecordChecksum
	}
	kind, idLen := body[0], int(body[1])
	if 2+idLen > len(body) {
		return 0, "", nil, 0, fmt.Errorf("record ID of %d bytes in a body of %d", idLen, len(body))
	}
	id, payload = string(body[2:2+idLen]), body[2+idLen:]
	if !validAllocID(id) {
		return 0, "", nil, 0, fmt.Errorf("record ID %q: not an allocation ID", id)
	}
	switch {
	case kind == recStart && len(payload) == 0:
		return 0, "", nil, 0, fmt.Errorf("start record of %s without its task record", id)
	case kind == recEnd && len(payload) != 0:
		return 0, "", nil, 0, fmt.Errorf("end record of %s with %d bytes of payload", id, len(payload))
	case kind != recStart && kind != recEnd:
		return 0, "", nil, 0, fmt.Errorf("record of unknown kind %d", kind)
	}
	return kind, id, payload, recordHeaderLen + int(n), nil
}

// span is where a live start record is in the file.
type span struct {
	off int64
	n   int64
}

// scanResult is what a log file holds.
type scanResult struct {
	live      map[string]span // each task's last start record, without an end after it
	liveBytes int64
	// end is where the good records end: size, or the start of a torn
	// tail; 0 when the header itself is torn (the file is rewritten).
	end  int64
	torn string // why the tail was cut ("" none)
}

// errCorruptLog is a log that cannot be read past a bad record.
type errCorruptLog struct {
	off    int64
	size   int64
	reason string
}

func (e *errCorruptLog) Error() string {
	return fmt.Sprintf("corrupt record at offset %d of %d bytes (%s), intact data after it", e.off, e.size, e.reason)
}

// scanRecordLog reads a log of size bytes: the live records, where the
// good records end, or *errCorruptLog (or a read error).
func scanRecordLog(r io.ReaderAt, size int64) (*scanResult, error) {
	res := &scanResult{live: map[string]span{}}
	if size == 0 {
		return res, nil // new: the header is written at open
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)
	magic := make([]byte, len(recordLogMagic))
	if size < int64(len(magic)) {
		magic = magic[:size]
	}
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix([]byte(recordLogMagic), magic) {
		return nil, &errCorruptLog{off: 0, size: size, reason: "not a task record log (bad header)"}
	}
	if len(magic) < len(recordLogMagic) {
		res.torn = "header cut short"
		return res, nil
	}
	off := int64(len(recordLogMagic))
	buf := make([]byte, 0, 4096)
	tail := func(why string) (*scanResult, error) {
		res.end, res.torn = off, why
		return res, nil
	}
	for off < size {
		rem := size - off
		if rem < recordHeaderLen {
			return tail("record header cut short")
		}
		buf = buf[:recordHeaderLen]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		n := int64(binary.LittleEndian.Uint32(buf))
		if n < 2 || n > maxRecordBody {
			// zeros: a machine crash left the file longer than its data
			zero, err := zerosFrom(r, off, size)
			if err != nil {
				return nil, err
			}
			if zero {
				return tail("zeros to the end")
			}
			return nil, &errCorruptLog{off: off, size: size, reason: fmt.Sprintf("record length %d", n)}
		}
		if recordHeaderLen+n > rem {
			return tail("record cut short")
		}
		buf = slices.Grow(buf, int(n))[:recordHeaderLen+n]
		if _, err := io.ReadFull(br, buf[recordHeaderLen:]); err != nil {
			return nil, err
		}
		kind, id, _, sz, err := decodeRecord(buf)
		if err != nil {
			next := off + recordHeaderLen + n
			if errors.Is(err, errRecordChecksum) {
				zero, zerr := zerosFrom(r, next, size)
				if zerr != nil {
					return nil, zerr
				}
				if zero {
					return tail("last record fails its checksum")
				}
			}
			return nil, &errCorruptLog{off: off, size: size, reason: err.Error()}
		}
		if old, ok := res.live[id]; ok {
			res.liveBytes -= old.n
			delete(res.live, id)
		}
		if kind == recStart {
			res.live[id] = span{off: off, n: int64(sz)}
			res.liveBytes += int64(sz)
		}
		off += int64(sz)
	}
	res.end = off
	return res, nil
}

// zerosFrom reports whether every byte of r from off to size is zero
// (true when there is none).
func zerosFrom(r io.ReaderAt, off, size int64) (bool, error) {
	buf := make([]byte, 32<<10)
	for off < size {
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}

// recordLog is a peer's re-attach record log (above). It opens its file
// at the first use (load or append).
type recordLog struct {
	path       string
	limit      int64 // the file's size bound
	compactMin int64
	logf       func(format string, args ...any)
	// beforeWrite, when set, runs before each batch is written (tests).
	beforeWrite func()

	mu          sync.Mutex
	cond        sync.Cond // L is &mu: a batch written, or writing over
	f           *os.File  // nil until opened, and after close
	closed      bool
	broken      error // a failed write that could not be undone
	report      error // the corruption open found, for load to return
	size        int64
	live        map[string]span
	liveBytes   int64
	cur         *logBatch // the batch appends join
	writing     bool      // a batch is being written (by the appender that took it)
	writes      int       // batches written (tests)
	compactions int       // (tests)
	// retryCompactAt: after a failed compaction, none is tried again
	// before the file reaches this size.
	retryCompactAt int64
}

// logBatch is the records of one write.
type logBatch struct {
	buf     []byte
	entries []logEntry
	done    bool
}

type logEntry struct {
	kind    byte
	id      string
	off, n  int // in buf
	err     error
	dropped bool // refused before the write (the log is full)
}

func newRecordLog(path string, logf func(string, ...any)) *recordLog {
	l := &recordLog{path: path, limit: defaultRecordLogLimit, compactMin: defaultCompactMin, logf: logf, cur: &logBatch{}}
	l.cond.L = &l.mu
	return l
}

// openLocked opens the file at the first use: scans it, cuts a torn
// tail, moves a corrupt file aside (keeping why in l.report) and starts
// an empty one.
func (l *recordLog) openLocked() error {
	if l.closed {
		return errLogClosed
	}
	if l.f != nil {
		return nil
	}
	if l.broken != nil {
		return l.broken
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("task record log: %w", err)
	}
	_ = os.Remove(l.path + ".tmp") // a compaction the process did not finish
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("task record log: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()
		return fmt.Errorf("task record log %s: %w", l.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	res, err := scanRecordLog(f, fi.Size())
	var corrupt *errCorruptLog
	switch {
	case errors.As(err, &corrupt):
		// Which of its tasks ended is unknown past the bad record, and
		// re-attaching an ended one would run it twice: none is
		// re-attached; their owners place them again.
		_ = f.Close()
		aside := l.path + ".corrupt"
		if rerr := os.Rename(l.path, aside); rerr != nil {
			return fmt.Errorf("task record log %s: %w; moving it aside: %w", l.path, err, rerr)
		}
		l.report = fmt.Errorf("task record log %s: %w: moved to %s; none of its tasks is re-attached (their owners place them again)", l.path, err, aside)
		if f, err = os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return fmt.Errorf("task record log: %w", err)
		}
		res = &scanResult{live: map[string]span{}}
	case err != nil:
		return fail(err)
	case res.torn != "":
		if err := f.Truncate(res.end); err != nil {
			return fail(fmt.Errorf("cutting a torn tail: %w", err))
		}
		l.logf("exec: task record log %s: %s at offset %d: cut %d bytes (a write the process did not finish)", l.path, res.torn, res.end, fi.Size()-res.end)
	}
	if res.end == 0 {
		if _, err := f.WriteAt([]byte(recordLogMagic), 0); err != nil {
			return fail(err)
		}
		res.end = int64(len(recordLogMagic))
	}
	l.f, l.size, l.live, l.liveBytes = f, res.end, res.live, res.liveBytes
	return nil
}

// loadedRecord is a live start record read back.
type loadedRecord struct {
	id      string
	payload []byte
}

// takeReport returns, once, the corruption open found (the file moved
// aside; none of its records is loaded).
func (l *recordLog) takeReport() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.report
	l.report = nil
	return r
}

// load opens the log and returns its live records in the order they
// were written.
func (l *recordLog) load() ([]loadedRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.writing {
		l.cond.Wait()
	}
	if err := l.openLocked(); err != nil {
		return nil, err
	}
	spans := l.liveSpansLocked()
	out := make([]loadedRecord, 0, len(spans))
	for _, s := range spans {
		b := make([]byte, s.n)
		if _, err := l.f.ReadAt(b, s.off); err != nil {
			return out, fmt.Errorf("task record log %s: %w", l.path, err)
		}
		_, id, payload, _, err := decodeRecord(b)
		if err != nil {
			return out, fmt.Errorf("task record log %s: record at offset %d changed since it was read: %w", l.path, s.off, err)
		}
		if id != s.id {
			return out, fmt.Errorf("task record log %s: record at offset %d changed since it was read: %s, not %s", l.path, s.off, id, s.id)
		}
		out = append(out, loadedRecord{id: id, payload: payload})
	}
	return out, nil
}

// has reports whether id has a live start record.
func (l *recordLog) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.live[id]
	return ok
}

// start appends a task's start record (payload: its JSON taskRecord),
// replacing the one it had; it returns once the record is written.
func (l *recordLog) start(id string, payload []byte) error {
	return l.append(recStart, id, payload)
}

// end appends a task's end record (nothing when it has no start record).
func (l *recordLog) end(id string) error { return l.append(recEnd, id, nil) }

func (l *recordLog) append(kind byte, id string, payload []byte) error {
	if !validAllocID(id) {
		return fmt.Errorf("task record log: allocation ID %q: not a plain name", id)
	}
	if len(payload) > maxTaskRecord {
		return fmt.Errorf("task record of %s: %d bytes, more than %d", id, len(payload), maxTaskRecord)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.openLocked(); err != nil {
		return err
	}
	if l.report != nil { // opened here, not by load: nobody else says it
		l.logf("exec: %v", l.report)
		l.report = nil
	}
	if kind == recEnd {
		// a task's end follows its start, from the same goroutine: the
		// start is in l.live once written
		if _, ok := l.live[id]; !ok {
			return nil
		}
	}
	b := l.cur
	i, off := len(b.entries), len(b.buf)
	b.buf = appendRecord(b.buf, kind, id, payload)
	b.entries = append(b.entries, logEntry{kind: kind, id: id, off: off, n: len(b.buf) - off})
	// Group commit: the appender that finds no write in flight writes
	// the batch it joined, with every record others added meanwhile.
	for !b.done {
		if !l.writing {
			l.flushLocked()
			continue
		}
		l.cond.Wait()
	}
	return b.entries[i].err
}

// flushLocked writes the current batch (under mu, which it releases
// during the write).
func (l *recordLog) flushLocked() {
	b := l.cur
	l.cur = &logBatch{}
	l.writing = true
	defer func() {
		l.writing = false
		b.done = true
		l.cond.Broadcast()
	}()
	failAll := func(err error) {
		for i := range b.entries {
			b.entries[i].err = err
		}
	}
	switch {
	case l.broken != nil:
		failAll(l.broken)
		return
	case l.f == nil:
		failAll(errLogClosed)
		return
	}
	if l.size+int64(len(b.buf)) > l.limit {
		l.makeRoomLocked(b)
	}
	size, f := l.size, l.f
	l.mu.Unlock()
	if l.beforeWrite != nil {
		l.beforeWrite()
	}
	_, err := f.WriteAt(b.buf, size)
	l.mu.Lock()
	if err != nil {
		err = fmt.Errorf("task record log %s: %w", l.path, err)
		// a partial write would make the next records follow garbage
		if terr := f.Truncate(size); terr != nil {
			l.broken = fmt.Errorf("%w; undoing it: %w", err, terr)
		}
		for i := range b.entries {
			if !b.entries[i].dropped {
				b.entries[i].err = err
			}
		}
		return
	}
	l.writes++
	l.size += int64(len(b.buf))
	for _, e := range b.entries {
		if e.dropped {
			continue
		}
		if old, ok := l.live[e.id]; ok {
			l.liveBytes -= old.n
			delete(l.live, e.id)
		}
		if e.kind == recStart {
			l.live[e.id] = span{off: size + int64(e.off), n: int64(e.n)}
			l.liveBytes += int64(e.n)
		}
	}
	// the batch's appenders go on; later batches wait for a compaction
	b.done = true
	l.cond.Broadcast()
	header := int64(len(recordLogMagic))
	if l.size >= l.compactMin && l.size >= l.retryCompactAt && l.size-header-l.liveBytes > l.liveBytes {
		l.compactLocked()
	}
}

// makeRoomLocked handles a batch that would take the file past its
// limit: compaction first; if that is not enough, the batch's start
// records are refused (end records are kept: they let the next
// compaction free room).
func (l *recordLog) makeRoomLocked(b *logBatch) {
	if l.size-int64(len(recordLogMagic)) > l.liveBytes {
		l.compactLocked()
	}
	if l.size+int64(len(b.buf)) <= l.limit {
		return
	}
	full := fmt.Errorf("task record log %s full: %d bytes, %d of them live records, limit %d", l.path, l.size, l.liveBytes, l.limit)
	buf := b.buf[:0:0]
	for i := range b.entries {
		e := &b.entries[i]
		if e.kind == recStart {
			e.dropped, e.err = true, full
			continue
		}
		off := len(buf)
		buf = append(buf, b.buf[e.off:e.off+e.n]...)
		e.off = off
	}
	b.buf = buf
}

// idSpan is a live record's place in the file and the task it is for.
type idSpan struct {
	id string
	span
}

// liveSpansLocked lists the live records in file order.
func (l *recordLog) liveSpansLocked() []idSpan {
	spans := make([]idSpan, 0, len(l.live))
	for id, s := range l.live {
		spans = append(spans, idSpan{id, s})
	}
	slices.SortFunc(spans, func(a, b idSpan) int { return cmp.Compare(a.off, b.off) })
	return spans
}

// compactLocked rewrites the file with its live records only (under mu
// with writing set, so no other write and no change of l.live; mu is
// released during the I/O): written to a temporary file, fsynced,
// renamed over the log, the directory fsynced, so a crash leaves the
// old file or the new one, whole. A failure keeps the old file.
func (l *recordLog) compactLocked() {
	spans := l.liveSpansLocked()
	old := l.f
	l.mu.Unlock()
	tmp := l.path + ".tmp"
	nf, size, newOffs, err := func() (*os.File, int64, []int64, error) {
		nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, 0, nil, err
		}
		w := bufio.NewWriterSize(nf, 256<<10)
		_, _ = w.WriteString(recordLogMagic)
		off := int64(len(recordLogMagic))
		offs := make([]int64, len(spans))
		var buf []byte
		for i, s := range spans {
			buf = slices.Grow(buf[:0], int(s.n))[:s.n]
			if _, err := old.ReadAt(buf, s.off); err != nil {
				return nf, 0, nil, err
			}
			if _, err := w.Write(buf); err != nil {
				return nf, 0, nil, err
			}
			offs[i] = off
			off += s.n
		}
		if err := w.Flush(); err != nil {
			return nf, 0, nil, err
		}
		if err := nf.Sync(); err != nil {
			return nf, 0, nil, err
		}
		return nf, off, offs, os.Rename(tmp, l.path)
	}()
	if err != nil {
		if nf != nil {
			_ = nf.Close()
		}
		_ = os.Remove(tmp)
		l.mu.Lock()
		l.retryCompactAt = l.size + l.compactMin
		l.logf("exec: task record log %s: compaction failed, the old file kept: %v", l.path, err)
		return
	}
	// renamed: the log is the new file now, synced directory or not
	if err := durable.SyncDir(filepath.Dir(l.path)); err != nil {
		l.logf("exec: task record log %s: after compaction: %v", l.path, err)
	}
	_ = old.Close()
	l.mu.Lock()
	l.f, l.size, l.retryCompactAt = nf, size, 0
	l.compactions++
	for i, s := range spans {
		l.live[s.id] = span{off: newOffs[i], n: s.n}
	}
}

// close waits for a write in flight and closes the file; later appends
// fail.
func (l *recordLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.writing {
		l.cond.Wait()
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
