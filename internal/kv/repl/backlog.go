package repl

// backlog is the replication backlog: a ring holding the last len(buf)
// bytes of the replication stream, addressed by absolute stream offsets.
// The caller serialises access (State.mu).
type backlog struct {
	buf   []byte
	start int64 // offset of the oldest byte held
	end   int64 // offset after the newest byte: master_repl_offset
}

func newBacklog(size int) backlog {
	if size < 16*1024 {
		size = 16 * 1024
	}
	return backlog{buf: make([]byte, size)}
}

// reset empties the backlog and makes off the next offset (after a full
// sync from a primary at off).
func (b *backlog) reset(off int64) {
	b.start, b.end = off, off
}

// write appends p, dropping the oldest bytes when the ring is full.
func (b *backlog) write(p []byte) {
	n := int64(len(b.buf))
	if int64(len(p)) > n {
		// only the tail fits
		b.end += int64(len(p)) - n
		p = p[int64(len(p))-n:]
	}
	for len(p) > 0 {
		pos := b.end % n
		c := copy(b.buf[pos:], p)
		p = p[c:]
		b.end += int64(c)
	}
	if b.end-b.start > n {
		b.start = b.end - n
	}
}

// readFrom appends the bytes from off to the end to dst; false when off is
// not in [start, end] (too old, or in the future).
func (b *backlog) readFrom(off int64, dst []byte, max int) ([]byte, bool) {
	if off < b.start || off > b.end {
		return dst, false
	}
	n := int64(len(b.buf))
	todo := b.end - off
	if max > 0 && todo > int64(max) {
		todo = int64(max)
	}
	for todo > 0 {
		pos := off % n
		chunk := min(todo, n-pos)
		dst = append(dst, b.buf[pos:pos+chunk]...)
		off += chunk
		todo -= chunk
	}
	return dst, true
}

// resize makes the ring size bytes (at least 16 KiB), keeping the newest
// bytes that fit: a replica behind them resyncs in full, as after Redis's
// resizeReplicationBacklog.
func (b *backlog) resize(size int) {
	if size < 16*1024 {
		size = 16 * 1024
	}
	if size == len(b.buf) {
		return
	}
	keep := max(b.end-int64(size), b.start)
	data, _ := b.readFrom(keep, nil, 0)
	nb := backlog{buf: make([]byte, size), start: keep, end: keep}
	nb.write(data)
	*b = nb
}

// holds reports whether a replica at off can continue from the backlog.
func (b *backlog) holds(off int64) bool { return off >= b.start && off <= b.end }
