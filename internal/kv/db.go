package kv

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Numbered databases (SELECT, MOVE, SWAPDB, COPY ... DB): a standalone
// server has Config.Databases of them (16 by default, as Redis), a cluster
// node one. Each is a keyspace and its tracker (WATCHes, blocked
// clients); database 0's are s.ks and s.track, so the cluster layer and
// the hot path see one database as before. A client's Ctx points at its
// database's keyspace and tracker, switched by SELECT: a command of
// database 0 costs what it did before there were several.

// maxDatabases bounds the databases setting: each database is a keyspace
// of 256 shards (about 170 KB empty).
const maxDatabases = 1024

// initDBs creates the databases; database 0 is s.ks and s.track.
func (s *Server) initDBs(n int) {
	s.dbs = make([]command.DB, n)
	s.track.Blocked = &s.blocked
	s.dbs[0] = command.DB{KS: s.ks, Track: &s.track}
	for i := 1; i < n; i++ {
		t := &command.Tracker{Blocked: &s.blocked}
		t.ShareSettings(&s.track)
		s.dbs[i] = command.DB{KS: keyspace.New(), Track: t}
		s.dbs[i].KS.ShareScanSnapshots(s.ks)
	}
	s.dbKS = make([]*keyspace.Keyspace, n)
	for i, d := range s.dbs {
		s.dbKS[i] = d.KS
	}
}

// setDBHooks tells the server of keys that expire or are evicted in each
// database (after loading: a load notifies no one).
func (s *Server) setDBHooks() {
	for i, ks := range s.dbKS {
		db := i
		ks.SetExpireHook(func(key []byte) { s.keyExpired(db, key) })
		ks.SetExpiryPause(s.expiryPaused)
		ks.SetEvictHook(func(key []byte) { s.evictedNotify(db, key) })
	}
}

// eachKS runs fn on every database's keyspace (settings they all share).
func (s *Server) eachKS(fn func(ks *keyspace.Keyspace)) {
	for _, ks := range s.dbKS {
		fn(ks)
	}
}

// usedMemory is used_memory, the figure maxmemory limits: the memory
// used without data (Config.BaseMemory) and the estimate of every
// database's keys.
func (s *Server) usedMemory() int64 { return s.baseMem + s.datasetMemory() }

// datasetMemory is the estimated memory of every database's keys.
func (s *Server) datasetMemory() int64 {
	var n int64
	for _, ks := range s.dbKS {
		n += ks.UsedMemory()
	}
	return n
}

// scanSnapshotsBytes is the memory of the scan snapshots, which the
// databases share (keyspace/scansnap.go), outside used_memory.
func (s *Server) scanSnapshotsBytes() int64 { return s.ks.ScanSnapshots().Bytes() }

// evictOne evicts a key of the database using the most memory (Redis's
// pool spans its databases; this spreads eviction over them in
// proportion); false when no database has a key to evict.
func (s *Server) evictOne(now int64) bool {
	if len(s.dbKS) == 1 {
		return s.ks.EvictOne(now)
	}
	tried := make([]bool, len(s.dbKS))
	for range s.dbKS {
		best := -1
		for i, ks := range s.dbKS {
			if !tried[i] && (best < 0 || ks.UsedMemory() > s.dbKS[best].UsedMemory()) {
				best = i
			}
		}
		tried[best] = true
		if s.dbKS[best].EvictOne(now) {
			return true
		}
	}
	return false
}

// keyspaceInfo is INFO's keyspace section: a line per non-empty database.
// held: the caller holds every shard of every database (INFO inside EXEC
// or a script, command.ExecAll).
func (s *Server) keyspaceInfo(held bool) []string {
	var out []string
	for i, ks := range s.dbKS {
		keys := 0
		if held {
			keys = ks.LenLocked()
		} else {
			keys = ks.Len()
		}
		if keys > 0 {
			out = append(out, fmt.Sprintf("db%d:keys=%d,expires=%d,avg_ttl=0", i, keys, ks.ExpiresLen()))
		}
	}
	return out
}

// keysLen is ks.Len for c, without locking when c holds every shard of
// every database (EXEC or a script running a command.ExecAll command).
func (c *Client) keysLen(ks *keyspace.Keyspace) int {
	if c.AllLocked {
		return ks.LenLocked()
	}
	return ks.Len()
}

// selectDB makes database n the client's; false when out of range.
func (c *Client) selectDB(n int64) bool {
	if n < 0 || n >= int64(len(c.DBs)) {
		return false
	}
	c.shared.db.Store(int32(n))
	return c.SelectDB(int(n))
}

// globalLocked returns the shards the current command holds as global
// shards (command.GlobalShard), for the log's and the stream's cut: the
// shards themselves in database 0, the hot path.
func (c *Client) globalLocked() []int {
	if len(c.Cross) > 0 {
		return c.Cross
	}
	if c.DB == 0 {
		return c.Locked
	}
	c.gLocked = c.gLocked[:0]
	for _, i := range c.Locked {
		c.gLocked = append(c.gLocked, command.GlobalShard(c.DB, i))
	}
	return c.gLocked
}

// allGlobalShards lists every shard of every database, ascending.
func (s *Server) allGlobalShards() []int {
	g := make([]int, len(s.dbs)*keyspace.NumShards)
	for i := range g {
		g[i] = i
	}
	return g
}

// lockEverything locks every shard of every database in ascending order
// (a transaction that selects databases or watches keys of another one);
// unlockEverything undoes it.
func (c *Client) lockEverything() {
	c.Locked = c.Locked[:0]
	c.LockCross(c.srv.allGlobalShards())
	c.prepareGlobal(c.Cross)
}

// prepareGlobal is prepare for global shards.
func (c *Client) prepareGlobal(g []int) {
	if len(g) < 2 {
		return
	}
	if a := c.srv.aof; a != nil {
		a.Prepare(g)
	}
	if r := c.srv.repl; r != nil {
		r.Prepare(g)
	}
}

func cmdSelect(c *Client) {
	n, ok := c.ArgInt(1)
	if !ok {
		return
	}
	if n != 0 && c.srv.cfg.Cluster != nil {
		c.W.Error("ERR SELECT is not allowed in cluster mode")
		return
	}
	if !c.selectDB(n) {
		c.W.Error(command.ErrDBRange)
		return
	}
	if c.master {
		c.srv.replDB.Store(int64(c.DB))
	}
	c.W.OK()
}

// scriptOtherDB reports whether a command of a script reaches another
// database than the script client's: a SELECT of another (existing)
// database, or a command reaching another (MOVE, SWAPDB, COPY ... DB,
// FLUSHALL with several databases). The script must then hold every
// database (holdAllDBs).
func (s *Server) scriptOtherDB(fake *Client, cmd *command.Command, args [][]byte) bool {
	if len(s.dbs) < 2 {
		return false
	}
	if cmd.Name == "select" {
		n, ok := command.ParseInt(args[1])
		return ok && n != int64(fake.DB) && n >= 0 && n < int64(len(s.dbs))
	}
	if cmd.Has(command.CrossDB) {
		savedArgs, savedCmd := fake.Args, fake.Cmd
		fake.Args, fake.Cmd = args, cmd
		_, cross := fake.CrossShards(nil)
		fake.Args, fake.Cmd = savedArgs, savedCmd
		return cross
	}
	return false
}
