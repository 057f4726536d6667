package command

import (
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Tracker keeps the per-key state of clients that the keyspace does not
// know: WATCHes (a flag each watching client owns, set when a watched key
// changes), clients blocked on keys (a channel each, woken when a key
// changes), and the keys MIGRATE is sending (writes to them get
// TRYAGAIN). Its shard i is guarded by the keyspace's lock of shard i, so
// the dispatcher checks it under the locks it holds for the command
// anyway; methods named ...Locked expect that lock held. It also carries
// the server's Settings, which every handler reaches through Ctx.Track.
type Tracker struct {
	shards [keyspace.NumShards]trackShard
	// Settings are the run-time parameters of the value types.
	Settings Settings
	// Blocked counts the clients waiting in a blocking command (INFO's
	// blocked_clients), shared by every database's tracker: a wake
	// takes one off (wake), the client counts itself while it waits.
	Blocked *atomic.Int64
	// keys counts the keys with watchers or blocked clients, moving the
	// keys MIGRATE sends: at 0, the checks every command makes skip the
	// key's shard. Each changes with the key's shard locked, so a command
	// holding that lock sees the change made before it.
	keys, moving atomic.Int64
}

type trackShard struct {
	watchers map[string][]*atomic.Bool
	blocked  map[string][]chan struct{}
	moving   map[string]struct{}
}

// WatchLocked sets flag when key changes, until UnwatchLocked.
func (t *Tracker) WatchLocked(key []byte, flag *atomic.Bool) {
	sh := &t.shards[keyspace.ShardOf(key)]
	if sh.watchers == nil {
		sh.watchers = make(map[string][]*atomic.Bool)
	}
	ws, ok := sh.watchers[string(key)]
	if !ok {
		t.keys.Add(1)
	}
	sh.watchers[string(key)] = append(ws, flag)
}

// UnwatchLocked undoes one WatchLocked.
func (t *Tracker) UnwatchLocked(key []byte, flag *atomic.Bool) {
	sh := &t.shards[keyspace.ShardOf(key)]
	ws := sh.watchers[string(key)]
	for i, x := range ws {
		if x == flag {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		if _, ok := sh.watchers[string(key)]; ok {
			t.keys.Add(-1)
			delete(sh.watchers, string(key))
		}
	} else {
		sh.watchers[string(key)] = ws
	}
}

// BlockLocked puts ch at the end of the line of clients blocked on key,
// unless it is in it already, until UnblockLocked. A change of the key
// wakes the first in line (a send on ch that never blocks); a woken client
// passes the turn on with PassLocked once it has tried, so clients are
// served in the order they blocked, as in Redis.
func (t *Tracker) BlockLocked(key []byte, ch chan struct{}) {
	sh := &t.shards[keyspace.ShardOf(key)]
	if sh.blocked == nil {
		sh.blocked = make(map[string][]chan struct{})
	}
	chans, ok := sh.blocked[string(key)]
	for _, x := range chans {
		if x == ch {
			return
		}
	}
	if !ok {
		t.keys.Add(1)
	}
	sh.blocked[string(key)] = append(chans, ch)
}

// PassLocked wakes the client after ch in the line of key (the first one
// when ch is not in it): the turn goes on after ch tried, or left.
func (t *Tracker) PassLocked(key []byte, ch chan struct{}) {
	chans := t.shards[keyspace.ShardOf(key)].blocked[string(key)]
	next := 0
	for i, x := range chans {
		if x == ch {
			next = i + 1
			break
		}
	}
	if next < len(chans) {
		t.wake(chans[next])
	}
}

// UnblockLocked undoes one BlockLocked.
func (t *Tracker) UnblockLocked(key []byte, ch chan struct{}) {
	sh := &t.shards[keyspace.ShardOf(key)]
	chans := sh.blocked[string(key)]
	for i, x := range chans {
		if x == ch {
			chans = append(chans[:i], chans[i+1:]...)
			break
		}
	}
	if len(chans) == 0 {
		if _, ok := sh.blocked[string(key)]; ok {
			t.keys.Add(-1)
			delete(sh.blocked, string(key))
		}
	} else {
		sh.blocked[string(key)] = chans
	}
}

// TouchLocked tells the watchers and the first client blocked on key that
// it changed. It runs for every key of every changing command, so it costs
// two length checks when nobody watches or waits in the key's shard.
func (t *Tracker) TouchLocked(key []byte) {
	if t.keys.Load() == 0 {
		return
	}
	sh := &t.shards[keyspace.ShardOf(key)]
	if len(sh.watchers) > 0 || len(sh.blocked) > 0 {
		t.touch(sh, key)
	}
}

func (t *Tracker) touch(sh *trackShard, key []byte) {
	for _, w := range sh.watchers[string(key)] {
		w.Store(true)
	}
	if chans := sh.blocked[string(key)]; len(chans) > 0 {
		t.wake(chans[0])
	}
}

// wake signals a blocked client's channel unless a signal is pending
// already. A signal takes the client off the Blocked count at once, in the
// changing command, as Redis's served client leaves blocked_clients
// before the next command: a client that then finds nothing for it
// counts itself again (Client.cmdBPop).
func (t *Tracker) wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
		if t.Blocked != nil {
			t.Blocked.Add(-1)
		}
	default:
	}
}

// TouchAllLocked fails the WATCHes of the keys that exist (FLUSHALL, with
// every shard locked): as in Redis, a flush does not touch a watched key
// that was not there.
func (t *Tracker) TouchAllLocked(exists func(key string) bool) {
	for i := range t.shards {
		for key, ws := range t.shards[i].watchers {
			if !exists(key) {
				continue
			}
			for _, w := range ws {
				w.Store(true)
			}
		}
	}
}

// WakeBlockedLocked wakes every client blocked on a key of shard i.
func (t *Tracker) WakeBlockedLocked(i int) {
	for _, chans := range t.shards[i].blocked {
		for _, ch := range chans {
			t.wake(ch)
		}
	}
}

// BlockedLocked returns how many clients are blocked on key.
func (t *Tracker) BlockedLocked(key []byte) int {
	return len(t.shards[keyspace.ShardOf(key)].blocked[string(key)])
}

// SetMovingLocked marks or unmarks key as being sent by MIGRATE.
func (t *Tracker) SetMovingLocked(key []byte, on bool) {
	sh := &t.shards[keyspace.ShardOf(key)]
	if on {
		if sh.moving == nil {
			sh.moving = make(map[string]struct{})
		}
		if _, ok := sh.moving[string(key)]; !ok {
			t.moving.Add(1)
			sh.moving[string(key)] = struct{}{}
		}
		return
	}
	if _, ok := sh.moving[string(key)]; ok {
		t.moving.Add(-1)
		delete(sh.moving, string(key))
	}
}

// MovingLocked reports whether MIGRATE is sending one of keys.
func (t *Tracker) MovingLocked(keys [][]byte) bool {
	if t.moving.Load() == 0 {
		return false
	}
	for _, k := range keys {
		sh := &t.shards[keyspace.ShardOf(k)]
		if len(sh.moving) == 0 {
			continue
		}
		if _, ok := sh.moving[string(k)]; ok {
			return true
		}
	}
	return false
}
