package kv

import (
	"github.com/gantry-project/gantry/internal/resp"
)

var (
	bMULTI = []byte("MULTI")
	bEXEC  = []byte("EXEC")
)

func cmdMulti(c *Client) {
	if c.multi {
		c.w.Error("ERR MULTI calls can not be nested")
		return
	}
	c.multi = true
	c.multiErr = false
	c.queued = c.queued[:0]
	c.w.OK()
}

func (c *Client) discardMulti() {
	c.multi = false
	c.multiErr = false
	c.queued = nil
}

func cmdDiscard(c *Client) {
	if !c.multi {
		c.w.Error("ERR DISCARD without MULTI")
		return
	}
	c.discardMulti()
	c.unwatchAll()
	c.w.OK()
}

// cmdExec runs the queued commands atomically: it locks the shards of all
// their keys (every shard when one of them spans the keyspace), checks the
// WATCHed keys, runs each command and logs them as one MULTI ... EXEC
// block, so a torn log never replays half a transaction.
func cmdExec(c *Client) {
	if !c.multi {
		c.w.Error("ERR EXEC without MULTI")
		return
	}
	queued := c.queued
	failed := c.multiErr
	c.discardMulti()
	if failed {
		c.unwatchAll()
		c.w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	s := c.srv
	all := false
	var keys [][]byte
	cmds := make([]*Command, len(queued))
	for i, args := range queued {
		cmd := s.cmds[string(lowerInto(nil, args[0]))]
		cmds[i] = cmd
		if cmd.flags&flagAllShards != 0 {
			all = true
		}
		keys = cmd.getKeys(args, keys)
	}
	for _, w := range c.watched {
		keys = append(keys, []byte(w.key))
	}
	if all {
		c.lockAll()
		c.allLocked = true
	} else {
		c.keys = keys
		c.lockKeys()
	}
	if s.repl != nil && s.repl.pausedNow() && !c.master {
		for _, cmd := range cmds {
			if cmd.flags&flagWrite != 0 { // wait for the pause to end, then run again
				c.allLocked = false
				c.unlock()
				c.multi, c.queued = true, queued
				c.pausedRetry = true
				return
			}
		}
	}
	now := s.nowMs()
	aborted := c.casDirty.Load()
	for _, w := range c.watched { // a watched key that expired counts as changed
		if w.exp != 0 && w.exp <= now {
			aborted = true
		}
	}
	if aborted {
		c.allLocked = false
		c.unlock()
		c.unwatchAll()
		c.w.NullArray()
		return
	}
	c.now = now
	if msg := c.execAdmitLocked(cmds, queued); msg != "" {
		c.allLocked = false
		c.unlock()
		c.unwatchAll()
		c.w.Error(msg)
		return
	}
	c.inExec = true
	c.txrec = c.txrec[:0]
	c.w.Array(len(queued))
	saved := c.args
	for i, args := range queued {
		c.args = args
		s.call(c, cmds[i], false)
	}
	c.args = saved
	c.inExec = false
	if len(c.txrec) > 0 {
		rec := resp.AppendCommand(nil, bMULTI)
		rec = append(rec, c.txrec...)
		rec = resp.AppendCommand(rec, bEXEC)
		if s.aof != nil && s.aof.enabled() {
			c.aofWait = s.aof.append(rec, c.locked)
		}
		if s.repl != nil && !c.master && s.repl.active.Load() {
			c.replOff = s.repl.feed(rec, c.locked)
		}
	}
	c.allLocked = false
	c.unlock()
	c.unwatchAll()
}

// cmdWatch registers the client on its keys' shards (locked by the
// dispatcher); any change committed to them sets casDirty.
func cmdWatch(c *Client) {
	if c.multi {
		c.w.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	now := c.now
	for _, k := range c.args[1:] {
		dup := false
		for _, w := range c.watched {
			if w.key == string(k) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		sh := &c.srv.ks.shards[shardOf(k)] // locked by the dispatcher
		var exp int64
		if e := c.srv.ks.lookupLocked(k, now); e != nil {
			exp = e.exp
		}
		if sh.watchers == nil {
			sh.watchers = make(map[string][]*Client)
		}
		sh.watchers[string(k)] = append(sh.watchers[string(k)], c)
		c.watched = append(c.watched, watchedKey{key: string(k), exp: exp})
	}
	c.w.OK()
}

func cmdUnwatch(c *Client) {
	c.unwatchAll()
	c.w.OK()
}

// unwatchAll forgets the client's WATCHes.
func (c *Client) unwatchAll() {
	for _, w := range c.watched {
		sh := &c.srv.ks.shards[shardOf([]byte(w.key))]
		sh.mu.Lock()
		ws := sh.watchers[w.key]
		for i, x := range ws {
			if x == c {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(sh.watchers, w.key)
		} else {
			sh.watchers[w.key] = ws
		}
		sh.mu.Unlock()
	}
	c.watched = c.watched[:0]
	c.casDirty.Store(false)
}
