package kv

import (
	"errors"
	"math"
	"os"
	"time"
)

var (
	bLPOP  = []byte("LPOP")
	bRPOP  = []byte("RPOP")
	bLMOVE = []byte("LMOVE")
	bLEFT  = []byte("LEFT")
	bRIGHT = []byte("RIGHT")
)

func sideArg(left bool) []byte {
	if left {
		return bLEFT
	}
	return bRIGHT
}

// parseTimeout parses a blocking timeout in seconds (0 blocks forever).
func (c *Client) parseTimeout(b []byte) (time.Duration, bool) {
	f, ok := parseFloat(b)
	if !ok || math.IsInf(f, 0) || f > 1e12 {
		c.w.Error("ERR timeout is not a float or out of range")
		return 0, false
	}
	if f < 0 {
		c.w.Error("ERR timeout is negative")
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// cmdBPop implements BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP. It
// tries the non-blocking form; when every list is empty it registers on the
// keys' shards, releases the locks and waits for a push, the timeout, the
// client disconnecting or the server closing. Woken clients race for the
// element; the loser waits again. Inside EXEC it never blocks.
func cmdBPop(c *Client) {
	var try func() bool
	var timeoutArg []byte
	switch c.cmd.Name {
	case "blpop", "brpop":
		left := c.cmd.Name == "blpop"
		keys := c.args[1 : len(c.args)-1]
		timeoutArg = c.args[len(c.args)-1]
		try = func() bool {
			for _, k := range keys {
				l, ok := c.lookupList(k)
				if !ok {
					return true
				}
				if l == nil {
					continue
				}
				v := popList(l, left)
				c.w.Array(2)
				c.w.Bulk(k)
				c.w.Bulk(v)
				c.dirty++
				if left {
					c.log(bLPOP, k)
				} else {
					c.log(bRPOP, k)
				}
				c.dropIfEmpty(k, l.len())
				return true
			}
			return false
		}
	case "blmove", "brpoplpush":
		src, dst := c.args[1], c.args[2]
		fromLeft, toLeft := false, true
		timeoutArg = c.args[3]
		if c.cmd.Name == "blmove" {
			var ok1, ok2 bool
			fromLeft, ok1 = parseSide(c.args[3])
			toLeft, ok2 = parseSide(c.args[4])
			if !ok1 || !ok2 {
				c.w.Error(errSyntax)
				return
			}
			timeoutArg = c.args[5]
		}
		try = func() bool {
			if !c.moveLocked(src, dst, fromLeft, toLeft, false) {
				return false
			}
			if c.dirty > 0 {
				c.log(bLMOVE, src, dst, sideArg(fromLeft), sideArg(toLeft))
			}
			return true
		}
	case "blmpop":
		timeoutArg = c.args[1]
		keys, left, count, ok := c.parseMPop(2)
		if !ok {
			return
		}
		try = func() bool { return c.mpopLocked(keys, left, count) }
	}
	timeout, ok := c.parseTimeout(timeoutArg)
	if !ok {
		return
	}
	nullReply := func() {
		if c.cmd.Name == "blmove" || c.cmd.Name == "brpoplpush" {
			c.w.Null()
		} else {
			c.w.NullArray()
		}
	}
	if c.inExec { // EXEC holds the locks; a blocking command never blocks there
		if !try() {
			nullReply()
		}
		c.commitLocked()
		return
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	wake := make(chan struct{}, 1)
	for {
		c.now = c.srv.nowMs()
		c.lockKeys()
		if c.movingLocked() {
			c.unlock()
			c.w.Error(errMoving)
			return
		}
		if msg := c.rerouteLocked(); msg != "" {
			// the key left (MIGRATE woke us) or its slot moved: redirect,
			// as Redis does with clients blocked on a moved slot
			c.unlock()
			c.w.Error(msg)
			return
		}
		if try() {
			c.commitLocked()
			c.unlock()
			return
		}
		if c.inLoop { // an event loop must not block: move to a goroutine
			c.unlock()
			c.detach = true
			return
		}
		c.register(wake)
		c.unlock()
		res := c.waitBlocked(wake, deadline)
		c.unregister(wake)
		switch res {
		case waitTimeout:
			nullReply()
			return
		case waitGone:
			c.closing = true
			return
		}
	}
}

func (c *Client) register(ch chan struct{}) {
	for _, k := range c.keys {
		sh := &c.srv.ks.shards[shardOf(k)]
		if sh.blocked == nil {
			sh.blocked = make(map[string][]chan struct{})
		}
		sh.blocked[string(k)] = append(sh.blocked[string(k)], ch)
	}
}

func (c *Client) unregister(ch chan struct{}) {
	for _, k := range c.keys {
		sh := &c.srv.ks.shards[shardOf(k)]
		sh.mu.Lock()
		chans := sh.blocked[string(k)]
		for i, x := range chans {
			if x == ch {
				chans = append(chans[:i], chans[i+1:]...)
				break
			}
		}
		if len(chans) == 0 {
			delete(sh.blocked, string(k))
		} else {
			sh.blocked[string(k)] = chans
		}
		sh.mu.Unlock()
	}
}

type waitResult int

const (
	waitWoken waitResult = iota
	waitTimeout
	waitGone
)

type readResult struct {
	data []byte
	err  error
}

// waitBlocked sends the replies so far and waits. A reader goroutine
// watches the socket meanwhile so a disconnect ends the wait; bytes it
// reads (pipelined commands) are kept for after the blocking command.
func (c *Client) waitBlocked(wake chan struct{}, deadline <-chan time.Time) waitResult {
	if err := c.flush(); err != nil {
		return waitGone
	}
	readCh := make(chan readResult, 1)
	startRead := func() {
		go func() {
			buf := make([]byte, 4096)
			n, err := c.nc.Read(buf)
			readCh <- readResult{buf[:n], err}
		}()
	}
	// stopRead interrupts the reader and collects what it read; it reports
	// whether the connection is still usable.
	stopRead := func() bool {
		c.nc.SetReadDeadline(time.Unix(1, 0))
		r := <-readCh
		c.nc.SetReadDeadline(time.Time{})
		c.pending = append(c.pending, r.data...)
		return r.err == nil || errors.Is(r.err, os.ErrDeadlineExceeded)
	}
	startRead()
	for {
		select {
		case <-wake:
			if !stopRead() {
				return waitGone
			}
			return waitWoken
		case <-deadline:
			if !stopRead() {
				return waitGone
			}
			return waitTimeout
		case <-c.srv.done:
			stopRead()
			return waitGone
		case r := <-readCh:
			c.pending = append(c.pending, r.data...)
			if r.err != nil {
				return waitGone
			}
			startRead()
		}
	}
}
