package kv

import (
	"runtime"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
	"github.com/gantry-project/gantry/internal/resp"
)

// maxmemory (docs/kv.md, "Memory limit and eviction"). Before a command
// runs, a server over its limit evicts keys as its policy says
// (keyspace.EvictOne) until it is under it again; when nothing can be
// evicted (noeviction, or no key with an expiry under a volatile policy)
// the commands flagged denyoom are refused with Redis's -OOM error and
// the others run. Memory is the keyspace's estimate (keyspace.UsedMemory),
// kept as values change. A replica does not evict: its primary's DELs do
// (Redis's replica-ignore-maxmemory).

const errOOM = "OOM command not allowed when used memory > 'maxmemory'."

// evictBudget is the most keys a command evicts before it runs; past it
// the command runs and the cron goes on evicting, as Redis's eviction time
// limit hands the rest to a timer.
const evictBudget = 256

type evictResult int

const (
	evictOK      evictResult = iota // under the limit
	evictRunning                    // still over it, but keys are being evicted
	evictFail                       // over it with nothing to evict
)

// freeMemory evicts keys until memory is under maxmemory or budget keys
// are gone.
func (s *Server) freeMemory(budget int) evictResult {
	limit := s.maxmemory.Load()
	if limit == 0 || s.usedMemory() <= limit || s.repl.IsReplica() {
		return evictOK
	}
	now := s.nowMs()
	for i := 0; i < budget; i++ {
		if !s.evictOne(now) {
			return evictFail
		}
		if s.usedMemory() <= limit {
			return evictOK
		}
	}
	return evictRunning
}

// admitMemory is the dispatcher's check of a command against maxmemory;
// false means it replied the -OOM error.
func (s *Server) admitMemory(c *Client, cmd *command.Command) bool {
	if s.freeMemory(evictBudget) != evictFail {
		return true
	}
	isExec := cmd.Name == "exec" && c.multi
	// inside MULTI every command but EXEC, DISCARD, QUIT and RESET is
	// refused: a queue would grow memory without bound (Redis's rule)
	queues := c.multi && !isExec && cmd.Name != "discard" && cmd.Name != "quit" && cmd.Name != "reset"
	if !cmd.Has(command.DenyOOM) && (!isExec || !c.queuedDenyOOM) && !queues {
		return true
	}
	s.oomRejected.Add(1)
	if isExec { // as Redis: the transaction is discarded
		c.discardMulti()
		c.unwatchAll()
		c.W.Error("EXECABORT Transaction discarded because of: " + errOOM)
		return false
	}
	if c.multi {
		c.multiErr = true
	}
	c.W.Error(errOOM)
	return false
}

// evicted is the keyspace's hook for every key it evicts, with the key's
// shard locked: like an expired key's, its deletion goes to the log and
// the replicas as a DEL (so a restart or a replica does not bring it
// back), and WATCHes of it fail.
func (s *Server) evicted(db int, key []byte) {
	s.evictedKeys.Add(1)
	shards := []int{command.GlobalShard(db, keyspace.ShardOf(key))}
	aofOn := s.aof != nil && s.aof.Enabled()
	if replOn := s.repl.Active(); aofOn || replOn {
		rec := resp.AppendCommand(nil, bDEL, key)
		if aofOn {
			s.aof.AppendDB(db, rec, shards)
		}
		if replOn {
			s.repl.FeedDB(db, rec, shards)
		}
	}
	s.dbs[db].Track.TouchLocked(key)
	if s.ct.n.Load() > 0 {
		s.invalidate(key, nil)
	}
}

// evictInBackground goes on evicting for the cron after commands stopped
// at their budget (or after CONFIG SET lowered maxmemory).
func (s *Server) evictInBackground() {
	for i := 0; i < 16 && s.freeMemory(evictBudget) == evictRunning; i++ {
	}
}

// processBaseMemory measures the memory the process uses before it holds
// data (the server's tables, the script engine, the Go runtime's own
// structures and the goroutines' stacks): what Redis's used_memory counts
// at start-up besides an empty dataset. It reads the Go runtime's
// statistics once, when the server is created, after a collection so
// that the start-up garbage is not counted.
func processBaseMemory() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse + ms.MSpanInuse + ms.MCacheInuse + ms.BuckHashSys + ms.OtherSys)
}
