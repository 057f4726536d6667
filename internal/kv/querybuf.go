package kv

// Query buffer accounting and resizing, as Redis's
// clientsCronResizeQueryBuffer: other clients' CLIENT LIST reads a
// client's query buffer (qbuf, qbuf-free) from atomics its own goroutine
// publishes once per read, and the event loop's cron shrinks buffers that
// stayed idle or are far larger than what the client sent lately.

const (
	// queryWasteMin: a buffer is resized only when it wastes more than
	// this (Redis: 4 KB of sdsavail).
	queryWasteMin = 4 << 10
	// queryResizeMin: a buffer bigger than this that is more than twice
	// the client's recent peak is trimmed even when the client is not
	// idle (Redis's PROTO_RESIZE_THRESHOLD).
	queryResizeMin = 32 << 10
)

// noteQuery publishes the bytes of input held and the size of the read
// buffer for other clients' CLIENT LIST. It stores only what changed, so
// a client whose buffer is drained and kept costs two loads per read.
func (c *Client) noteQuery() {
	if q := int64(c.rend - c.rstart); c.shared.qbuf.Load() != q {
		c.shared.qbuf.Store(q)
	}
	if n := int64(len(c.rbuf)); c.shared.qbufSize.Load() != n {
		c.shared.qbufSize.Store(n)
	}
	c.noteMem()
}

// notePeak records the most input held since the last cron (Redis's
// querybuf_peak), after a read.
func (c *Client) notePeak() {
	if h := c.rend - c.rstart; h > c.qpeak {
		c.qpeak = h
	}
}

// resizeQuery is the cron's look at the read buffer of a client idle for
// idleMs: an idle client's buffer goes back (to the pool when empty, to
// the input it holds otherwise); one more than twice the recent peak and
// over queryResizeMin is trimmed to that peak (at least a read's worth,
// readBufSize, and never below the command being received). The peak
// starts again from what is held. Only the goroutine that owns the client
// calls it (its event loop).
func (c *Client) resizeQuery(idleMs int64) {
	held := c.rend - c.rstart
	size := len(c.rbuf)
	if size-held > queryWasteMin {
		switch {
		case idleMs > idleRelease.Milliseconds():
			if held == 0 && !c.partial.Active() {
				c.releaseBuffers()
			} else { // part of a command: keep just its bytes
				c.moveQuery(held)
			}
		case size > queryResizeMin && size/2 > c.qpeak:
			c.moveQuery(max(held, c.qpeak, c.partial.Size(), readBufSize))
		}
	}
	c.qpeak = max(c.rend-c.rstart, c.partial.Size())
	c.noteQuery()
}

// moveQuery moves the held input to a buffer of size bytes (a pooled one
// for readBufSize).
func (c *Client) moveQuery(size int) {
	if size >= len(c.rbuf) {
		return
	}
	var nb []byte
	if size == readBufSize {
		nb = getReadBuf()
	} else {
		nb = make([]byte, size)
	}
	if len(c.rbuf) > keptBufSize {
		c.srv.released.Add(int64(len(c.rbuf)))
	}
	c.rend = copy(nb, c.rbuf[c.rstart:c.rend])
	c.rstart = 0
	if len(c.rbuf) == readBufSize {
		readBufs.Put((*[readBufSize]byte)(c.rbuf))
	}
	c.rbuf = nb
}
