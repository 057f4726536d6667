package kv

import (
	"errors"
	"os"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// cmdBPop serves BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP
// (command.BlockingPop pops). It tries the non-blocking form; when every
// list is empty it registers on the keys, releases the locks and waits for
// a push, the timeout, the client disconnecting or the server closing.
// Woken clients race for the element; the loser waits again. Inside EXEC
// it never blocks.
func cmdBPop(c *Client) {
	bp, ok := command.ParseBlockingPop(&c.Ctx)
	if !ok {
		return
	}
	if c.InExec { // EXEC holds the locks; a blocking command never blocks there
		if !bp.Try() {
			bp.ReplyTimeout()
		}
		c.commitLocked()
		return
	}
	var deadline <-chan time.Time
	if bp.Timeout > 0 {
		t := time.NewTimer(bp.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	wake := make(chan struct{}, 1)
	for {
		c.Now = c.srv.nowMs()
		c.lockKeys()
		if c.Track.MovingLocked(c.Keys) {
			c.unlock()
			c.W.Error(errMoving)
			return
		}
		if msg := c.rerouteLocked(); msg != "" {
			// the key left (MIGRATE woke us) or its slot moved: redirect,
			// as Redis does with clients blocked on a moved slot
			c.unlock()
			c.W.Error(msg)
			return
		}
		if bp.Try() {
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
			bp.ReplyTimeout()
			return
		case waitGone:
			c.closing = true
			return
		}
	}
}

// register asks to be woken when one of c.Keys changes; the shards are
// locked.
func (c *Client) register(ch chan struct{}) {
	for _, k := range c.Keys {
		c.Track.BlockLocked(k, ch)
	}
}

func (c *Client) unregister(ch chan struct{}) {
	for _, k := range c.Keys {
		i := keyspace.ShardOf(k)
		c.KS.LockShard(i)
		c.Track.UnblockLocked(k, ch)
		c.KS.UnlockShard(i)
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
