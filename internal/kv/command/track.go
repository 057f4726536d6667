package command

import (
	"sync"
	"sync/atomic"
	"time"

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
	blocked  map[string][]*Waiter
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

// BlockLocked puts w at the end of the line of clients blocked on key,
// unless it is in it already, until UnblockLocked. A change of the key
// wakes the first in line (a send on w.C that never blocks); a woken
// client passes the turn on with PassLocked once it has tried, so clients
// are served in the order they blocked, as in Redis.
func (t *Tracker) BlockLocked(key []byte, w *Waiter) {
	sh := &t.shards[keyspace.ShardOf(key)]
	if sh.blocked == nil {
		sh.blocked = make(map[string][]*Waiter)
	}
	ws, ok := sh.blocked[string(key)]
	for _, x := range ws {
		if x == w {
			return
		}
	}
	if !ok {
		t.keys.Add(1)
	}
	sh.blocked[string(key)] = append(ws, w)
}

// PassLocked wakes the client after w in the line of key (the first one
// when w is not in it): the turn goes on after w tried, or left. The
// woken client joins p (see Pass), nil for none.
func (t *Tracker) PassLocked(key []byte, w *Waiter, p *Pass) {
	ws := t.shards[keyspace.ShardOf(key)].blocked[string(key)]
	next := 0
	for i, x := range ws {
		if x == w {
			next = i + 1
			break
		}
	}
	if next < len(ws) {
		t.wake(ws[next], p)
	}
}

// UnblockLocked undoes one BlockLocked.
func (t *Tracker) UnblockLocked(key []byte, w *Waiter) {
	sh := &t.shards[keyspace.ShardOf(key)]
	ws := sh.blocked[string(key)]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		if _, ok := sh.blocked[string(key)]; ok {
			t.keys.Add(-1)
			delete(sh.blocked, string(key))
		}
	} else {
		sh.blocked[string(key)] = ws
	}
}

// TouchLocked tells the watchers and the first client blocked on key that
// it changed. It runs for every key of every changing command, so it costs
// two length checks when nobody watches or waits in the key's shard.
func (t *Tracker) TouchLocked(key []byte) { t.TouchForLocked(key, nil) }

// TouchForLocked is TouchLocked for a command that serves the clients it
// wakes before its reply: they join p (see Pass).
func (t *Tracker) TouchForLocked(key []byte, p *Pass) {
	if t.keys.Load() != 0 { // inlined: nobody watches or waits anywhere
		t.touchKey(key, p)
	}
}

func (t *Tracker) touchKey(key []byte, p *Pass) {
	sh := &t.shards[keyspace.ShardOf(key)]
	if len(sh.watchers) > 0 || len(sh.blocked) > 0 {
		t.touch(sh, key, p)
	}
}

func (t *Tracker) touch(sh *trackShard, key []byte, p *Pass) {
	for _, w := range sh.watchers[string(key)] {
		w.Store(true)
	}
	if ws := sh.blocked[string(key)]; len(ws) > 0 {
		t.wake(ws[0], p)
	}
}

// wake signals a blocked client unless a signal is pending already, and
// has it join p. A signal takes the client off the Blocked count at once,
// in the changing command, as Redis's served client leaves
// blocked_clients before the next command: a client that then finds
// nothing for it counts itself again (Client.cmdBPop).
func (t *Tracker) wake(w *Waiter, p *Pass) {
	select {
	case w.C <- struct{}{}:
		if t.Blocked != nil {
			t.Blocked.Add(-1)
		}
	default:
	}
	if p != nil {
		p.join(w)
	}
}

// A Waiter is a client blocked on keys: C receives its wake-ups (buffered,
// one pending at most), and the Pass of the command that woke it, if any,
// waits until it has tried (Settle).
type Waiter struct {
	C    chan struct{}
	pass atomic.Pointer[Pass]
}

// NewWaiter returns a Waiter with its channel.
func NewWaiter() *Waiter { return &Waiter{C: make(chan struct{}, 1)} }

// Pass returns the pass w was woken in, nil if none: what w changes in
// its try wakes clients into the same pass (a chain of BLMOVEs).
func (w *Waiter) Pass() *Pass { return w.pass.Load() }

// Settle tells the pass w was woken in that w has tried, or left.
func (w *Waiter) Settle() {
	if p := w.pass.Swap(nil); p != nil {
		p.done()
	}
}

// A Pass is what a command owes the clients its changes woke: Redis
// serves them (handleClientsBlockedOnKeys) after the command and before
// its reply and any other client's next command. Here a woken client pops
// on its own goroutine, once the command has released its keys; the
// command waits (Wait) until every client it woke, and every client they
// woke in turn, has tried before it replies. The zero Pass is ready.
type Pass struct {
	n  atomic.Int64 // woken clients that have not tried yet
	mu sync.Mutex
	ch chan struct{} // a signal when n drops to 0 (made by Wait)
}

func (p *Pass) join(w *Waiter) {
	// counted before it is visible: a Settle right after cannot take n
	// below the clients still to come
	p.n.Add(1)
	if !w.pass.CompareAndSwap(nil, p) {
		p.n.Add(-1) // in another pass (or this one) already
	}
}

func (p *Pass) done() {
	if p.n.Add(-1) > 0 {
		return
	}
	p.mu.Lock()
	if p.ch != nil {
		select {
		case p.ch <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

// Pending reports whether clients woken in p have not tried yet.
func (p *Pass) Pending() bool { return p.n.Load() > 0 }

// Wait waits until every client woken in p has tried, at most max: a woken
// client runs on its own goroutine, which the scheduler may start late,
// and the bound keeps a command from waiting on one that never comes.
// It reports false when it gave up.
func (p *Pass) Wait(max time.Duration) bool {
	if p.n.Load() <= 0 {
		return true
	}
	p.mu.Lock()
	if p.ch == nil {
		p.ch = make(chan struct{}, 1)
	}
	ch := p.ch
	p.mu.Unlock()
	var t *time.Timer
	for p.n.Load() > 0 {
		if t == nil {
			t = time.NewTimer(max)
			defer t.Stop()
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
	return true
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
	for _, ws := range t.shards[i].blocked {
		for _, w := range ws {
			t.wake(w, nil)
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
