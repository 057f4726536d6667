package kv

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// cmdBPop serves the blocking commands (command.BlockingPop pops or
// reads): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
// BZMPOP, XREAD and XREADGROUP. It tries the non-blocking form; when there
// is nothing to take it registers on the keys, releases the locks and
// waits for a change of one of them, the timeout, the client disconnecting
// or the server closing. Clients blocked on a key are served in the order
// they blocked: a change wakes the first, who passes the turn on after
// trying. Inside EXEC, and for XREAD without BLOCK, it never blocks.
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
	if bp.NoWait {
		c.lockKeys()
		c.Now = c.srv.nowMs()
		if c.Track.MovingLocked(c.Keys) {
			c.unlock()
			c.W.Error(errMoving)
			return
		}
		if !bp.Try() {
			bp.ReplyTimeout()
		}
		c.commitLocked()
		c.unlock()
		return
	}
	var deadline <-chan time.Time
	if bp.Timeout > 0 {
		t := time.NewTimer(bp.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	wake := command.NewWaiter()
	registered := false
	// shown means this run set the client's b flag (CLIENT LIST), which it
	// clears when it returns: from its registration on its keys to its
	// reply, as Redis's CLIENT_BLOCKED
	shown := false
	// the pass that woke the client, if any, waits for each try (see
	// command.Pass); what a try changes wakes clients into that pass, or
	// into the client's own when no pass woke it, which dispatch waits for
	// before the reply
	defer func() {
		c.touchPass = nil
		if shown {
			c.shared.flags.And(^flagBlocked)
		}
		if wake != nil {
			wake.Settle()
		}
	}()
	// resumed: the event loop registered the client on its keys and
	// counted it blocked before it left the loop, so that clients are
	// served in the order their commands ran, not the order their
	// goroutines started: it waits at once (a wake that came meanwhile is
	// in the channel)
	resumed := c.blockWake != nil
	if resumed {
		wake, c.blockWake, c.blockCancel = c.blockWake, nil, nil
		registered = true
		shown = true // set by the event loop's run
	}
	// leave takes the client out of its keys' lines (their shards locked)
	// and wakes whoever is first now: a client that was woken must not
	// keep the turn when it goes
	//
	// It runs while the client is not on the blocked count, so a signal
	// still pending came from its own change (commitLocked wakes the first
	// in line, which may be itself) and took it off a count it was not
	// on: that is put back.
	leave := func() {
		if registered {
			for _, k := range c.Keys {
				c.Track.UnblockLocked(k, wake)
				c.Track.PassLocked(k, nil, c.touchPass)
			}
			select {
			case <-wake.C:
				c.srv.blocked.Add(1)
			default:
			}
		}
	}
	for {
		if resumed {
			resumed = false
			goto wait
		}
		if registered { // woken
			if h := c.srv.retrying.Load(); h != nil {
				(*h)(c)
			}
		}
		c.lockKeys()
		// the clock is read with the keys held: a wake comes from a
		// command that still holds them (EXEC running DEBUG SLEEP, a
		// script), and a key that expired meanwhile is gone for the try,
		// as for Redis, which serves blocked clients after the command;
		// the commands after it in its batch run after it too
		c.advanceNow(c.srv.nowMs())
		// no one wakes us while we hold our keys: the pass is settled
		c.touchPass = wake.Pass()
		if registered {
			// A signal that came after the one that woke us took us off
			// the count while we were not on it: put that back.
			select {
			case <-wake.C:
				c.srv.blocked.Add(1)
			default:
			}
		}
		if c.Track.MovingLocked(c.Keys) {
			leave()
			c.unlock()
			c.W.Error(errMoving)
			return
		}
		if msg := c.rerouteLocked(); msg != "" {
			// the key left (MIGRATE woke us) or its slot moved: redirect,
			// as Redis does with clients blocked on a moved slot
			leave()
			c.unlock()
			c.W.Error(msg)
			return
		}
		if bp.Try() {
			c.commitLocked()
			leave()
			c.unlock()
			return
		}
		// a try that waits may still have changed something (XREADGROUP
		// creating its consumer)
		c.commitLocked()
		if c.inLoop { // an event loop must not block: move to a goroutine
			// Register and count the client now, keys locked, as below:
			// the goroutine waits at once (resumed above).
			c.register(wake)
			c.showBlocked() // the goroutine's run clears it
			select {
			case <-wake.C:
				c.srv.blocked.Add(1)
			default:
			}
			c.srv.blocked.Add(1)
			c.unlock()
			bp.Detach()
			c.blockWake = wake
			c.blockCancel = c.cancelBlock(wake)
			c.detach = true
			wake = nil // the goroutine's run settles what wakes it
			return
		}
		if registered {
			// nothing for us: the next in line may want something else
			// (another consumer group of a stream)
			for _, k := range c.Keys {
				c.Track.PassLocked(k, wake, c.touchPass)
			}
		} else {
			c.register(wake)
			registered = true
			c.showBlocked()
			shown = true
		}
		// A signal now came from our own change (commitLocked above: we
		// hold our keys), which took us off the count while we were not
		// on it: drop it and put that back. Then count ourselves before
		// the keys are unlocked, so no wake (which takes one off, in the
		// waking command) can come first.
		select {
		case <-wake.C:
			c.srv.blocked.Add(1)
		default:
		}
		c.srv.blocked.Add(1)
		c.unlock()
		c.touchPass = nil
		wake.Settle() // tried: the command that woke us may reply
	wait:
		res := c.waitBlocked(wake, deadline)
		if res == waitWoken {
			continue // the wake took us off the count
		}
		c.lockKeys()
		c.touchPass = wake.Pass()
		select {
		case <-wake.C: // a wake that raced the end took us off the count
		default:
			c.srv.blocked.Add(-1)
		}
		leave()
		c.unlock()
		switch res {
		case waitTimeout:
			bp.ReplyTimeout()
			return
		case waitUnblockError:
			c.W.Error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
			return
		}
		c.closing = true
		return
	}
}

// cancelBlock returns what takes the client out of the lines of its
// keys, registered in the event loop with wake, when the run of the
// command on its goroutine does not reach the wait: the keys and database
// are those of now, the command having run since.
func (c *Client) cancelBlock(wake *command.Waiter) func() {
	ks, track := c.KS, c.Track
	keys := make([][]byte, len(c.Keys))
	shards := make([]int, 0, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = bytes.Clone(k)
		shards = append(shards, keyspace.ShardOf(k))
	}
	slices.Sort(shards)
	shards = slices.Compact(shards)
	return func() {
		for _, i := range shards {
			ks.LockShard(i)
		}
		p := wake.Pass()
		for _, k := range keys {
			track.UnblockLocked(k, wake)
			track.PassLocked(k, nil, p)
		}
		select {
		case <-wake.C: // the waker took it off the count
		default:
			c.srv.blocked.Add(-1)
		}
		c.shared.flags.And(^flagBlocked)
		for j := len(shards) - 1; j >= 0; j-- {
			ks.UnlockShard(shards[j])
		}
		wake.Settle()
	}
}

// showBlocked shows the client blocked in CLIENT LIST: flag b, and its
// blocking command as its last (Redis names a client's command as it
// starts).
func (c *Client) showBlocked() {
	c.shared.flags.Or(flagBlocked)
	if c.Cmd != nil && c.shared.lastCmd.Load() != c.Cmd {
		c.shared.lastCmd.Store(c.Cmd)
	}
	if c.shared.lastSub.Load() != nil {
		c.shared.lastSub.Store(nil)
	}
}

// register puts the client in the line of each of c.Keys, to be woken
// when one changes; the shards are locked.
func (c *Client) register(w *command.Waiter) {
	for _, k := range c.Keys {
		c.Track.BlockLocked(k, w)
	}
}

type waitResult int

const (
	waitWoken waitResult = iota
	waitTimeout
	waitGone
	waitUnblockError // CLIENT UNBLOCK id ERROR
)

// unblockClient is CLIENT UNBLOCK: it ends the wait of client id's
// blocking command as a timeout (how waitTimeout) or with an error; 1 if
// the client was blocked.
func (s *Server) unblockClient(id int64, how waitResult) int64 {
	x := s.clientByID(id)
	if x == nil {
		return 0
	}
	ch := x.shared.unblock.Load()
	if ch == nil {
		return 0
	}
	select {
	case *ch <- how:
		return 1
	default: // unblocked already
		return 0
	}
}

type readResult struct {
	data []byte
	err  error
}

// waitBlocked sends the replies so far and waits. A reader goroutine
// watches the socket meanwhile so a disconnect ends the wait; bytes it
// reads (pipelined commands) are kept for after the blocking command.
func (c *Client) waitBlocked(wake *command.Waiter, deadline <-chan time.Time) waitResult {
	if len(c.W.B) > 0 {
		// a command that woke us does not wait on our socket, which may
		// not take the replies: the signal stays, we try after the flush
		wake.Settle()
	}
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
	unblock := make(chan waitResult, 1)
	c.shared.unblock.Store(&unblock)
	defer c.shared.unblock.Store(nil)
	startRead()
	for {
		select {
		case how := <-unblock:
			if !stopRead() {
				return waitGone
			}
			return how
		case <-wake.C:
			if !stopRead() {
				// Put the signal back so the caller sees that the wake
				// took us off the count; if another came meanwhile, it
				// took us off a second time: count that back.
				select {
				case wake.C <- struct{}{}:
				default:
					c.srv.blocked.Add(1)
				}
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
