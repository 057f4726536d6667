package kv

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/kv/aof"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// memoryKeys: MEMORY USAGE has its key at position 2.
func memoryKeys(args [][]byte, dst [][]byte) [][]byte {
	if len(args) >= 3 && command.EqualFold(args[1], "usage") {
		return append(dst, args[2])
	}
	return dst
}

// MEMORY USAGE key [SAMPLES n] | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP
func cmdMemory(c *Client) {
	s := c.srv
	switch strings.ToLower(string(c.Args[1])) {
	case "usage":
		if len(c.Args) != 3 && len(c.Args) != 5 {
			c.W.Error(command.ErrSyntax)
			return
		}
		if len(c.Args) == 5 {
			if !command.EqualFold(c.Args[3], "samples") {
				c.W.Error(command.ErrSyntax)
				return
			}
			if _, ok := c.ArgInt(4); !ok {
				return
			}
		}
		// gantry counts every element (the estimate of docs/kv.md,
		// "Memory"): SAMPLES changes nothing
		e := c.KS.PeekLocked(c.Args[2], c.Now)
		if e == nil {
			c.W.Null()
			return
		}
		c.W.Int(keyspace.KeyMemory(c.Args[2], e))
	case "stats":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		used := s.datasetMemory()
		keys := 0
		for _, ks := range s.dbKS {
			keys += c.keysLen(ks)
		}
		perKey := int64(0)
		if keys > 0 {
			perKey = used / int64(keys)
		}
		fields := []struct {
			name string
			v    int64
		}{
			{"peak.allocated", int64(ms.HeapSys)}, {"total.allocated", int64(ms.HeapAlloc)},
			{"startup.allocated", s.baseMem}, {"replication.backlog", int64(s.repl.BacklogSize())},
			{"clients.slaves", 0}, {"clients.normal", 0}, {"cluster.links", 0}, {"aof.buffer", 0},
			{"lua.caches", s.script.scriptsMem.Load()}, {"functions.caches", s.script.fnMem.Load()}, {"overhead.total", int64(ms.HeapAlloc) - used},
			{"keys.count", int64(keys)}, {"keys.bytes-per-key", perKey}, {"dataset.bytes", used},
		}
		c.W.Map(len(fields) + 1)
		for _, f := range fields {
			c.W.BulkString(f.name)
			c.W.Int(f.v)
		}
		c.W.BulkString("db.0")
		c.W.Map(2)
		c.W.BulkString("overhead.hashtable.main")
		c.W.Int(int64(keys) * 48)
		c.W.BulkString("overhead.hashtable.expires")
		c.W.Int(int64(s.ks.ExpiresLen()) * 48)
	case "doctor":
		if c.keysLen(s.ks) == 0 {
			c.W.Verbatim("Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n")
			return
		}
		c.W.Verbatim("Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n")
	case "malloc-stats":
		c.W.Verbatim(jmapReport())
	case "purge":
		// Redis's jemalloc purge: the freed pages go back to the system
		// (a collection, then the scavenger on the whole heap)
		c.srv.lazy.Release()
		c.W.OK()
	case "help":
		writeHelp(c, "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DOCTOR", "MALLOC-STATS", "PURGE", "STATS", "USAGE <key> [SAMPLES <count>]", "HELP")
	default:
		c.W.Error("ERR unknown subcommand '" + command.Trunc(c.Args[1], 128) + "'. Try MEMORY HELP.")
	}
}

// jmapReport is the Go runtime's view of the heap, for DEBUG JMAP and
// MEMORY MALLOC-STATS.
func jmapReport() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("heap_alloc:%d\nheap_sys:%d\nheap_idle:%d\nheap_inuse:%d\nheap_released:%d\nheap_objects:%d\nstack_inuse:%d\nsys:%d\nnum_gc:%d\ngc_cpu_fraction:%.6f\ngoroutines:%d\n",
		ms.HeapAlloc, ms.HeapSys, ms.HeapIdle, ms.HeapInuse, ms.HeapReleased, ms.HeapObjects,
		ms.StackInuse, ms.Sys, ms.NumGC, ms.GCCPUFraction, runtime.NumGoroutine())
}

const debugRefused = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."

// DEBUG subcommand ...: the dispatcher has refused it unless
// enable-debug-command is yes (or local and the client connects over
// loopback), as Redis 7 (protectedRefused); a script's DEBUG (DEBUG
// SET-DISABLE-DENY-SCRIPTS) is not refused: as in Redis, the caller's
// check was that of its EVAL.
func cmdDebug(c *Client) {
	s := c.srv
	sub := strings.ToLower(string(c.Args[1]))
	argc, ok := debugArity[sub]
	if ok && !argc(len(c.Args)) {
		debugSubcommandError(c)
		return
	}
	// these lock shards of their own, which a script may hold: it would
	// wait for itself
	if c.InScript && debugSelfLocking[sub] {
		c.W.Error("ERR This Redis command is not allowed from script")
		return
	}
	switch sub {
	case "help":
		writeHelp(c, "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"CHANGE-REPL-ID", "DIGEST", "DIGEST-VALUE <key> [<key> ...]", "HTSTATS <dbid>", "HTSTATS-KEY <key>", "JMAP", "LISTPACK <key>",
			"OBJECT <key>", "POPULATE <count> [<prefix>] [<size>]", "QUICKLIST-PACKED-THRESHOLD <size>",
			"LOADAOF", "PROTOCOL <type>", "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
			"REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>", "REPLYBUFFER RESIZING <0|1>", "SET-ACTIVE-EXPIRE <0|1>",
			"SET-DISABLE-DENY-SCRIPTS <0|1>", "SLEEP <seconds>", "HELP")
	case "sleep":
		secs, err := strconv.ParseFloat(string(c.Args[2]), 64)
		if err != nil || secs < 0 || secs > 3600 {
			c.W.Error("ERR value is not a valid float")
			return
		}
		// like Redis, the whole event loop sleeps: that is its purpose
		d := time.Duration(secs * float64(time.Second))
		if sl, ok := s.clock.(clockSleeper); ok {
			sl.Sleep(d)
		} else {
			time.Sleep(d)
		}
		c.W.OK()
	case "set-active-expire":
		n, ok := c.ArgInt(2)
		if !ok {
			return
		}
		s.adm.activeExpireOff.Store(n == 0)
		c.W.OK()
	case "set-disable-deny-scripts":
		// Redis reads it with atoi: anything not a number is 0
		s.script.denyOff.Store(cAtoiInt(c.Args[2]) != 0)
		c.W.OK()
	case "quicklist-packed-threshold":
		n, err := parseMemory(string(c.Args[2]))
		if err != nil || n < 0 || n > 1<<32-1<<20 {
			c.W.Error("ERR argument must be a memory value bigger than 1 and smaller than 4gb")
			return
		}
		if n == 0 { // Redis's default, as its quicklistisSetPackedThreshold
			n = 1 << 30
		}
		s.adm.quicklistPackedN.Store(n) // gantry's lists have no packed nodes: nothing else changes
		c.W.OK()
	case "change-repl-id":
		s.repl.ChangeReplID()
		c.W.OK()
	case "jmap":
		s.logger.Printf("DEBUG JMAP:\n%s", jmapReport())
		c.W.OK()
	case "reload":
		debugReload(c)
	case "loadaof":
		debugLoadAOF(c)
	case "protocol":
		debugProtocol(c)
	case "object":
		debugObject(c)
	case "listpack", "quicklist-info", "stringmatch-len":
		c.W.Simple("OK")
	case "digest":
		c.W.BulkString(s.digest(c.AllLocked))
	case "digest-value":
		c.W.Array(len(c.Args) - 2)
		for _, k := range c.Args[2:] {
			c.W.BulkString(s.digestKey(c.KS, k, c.AllLocked))
		}
	case "populate":
		debugPopulate(c)
	case "htstats":
		debugHTStats(c)
	case "htstats-key":
		debugHTStatsKey(c)
	case "replybuffer":
		debugReplyBuffer(c)
	default:
		debugSubcommandError(c)
	}
}

// debugArity is the number of arguments (with DEBUG and the subcommand)
// each subcommand takes, as Redis checks it: any other answers the error
// of an unknown subcommand. RELOAD, LOADAOF and DIGEST-VALUE take any.
var debugArity = map[string]func(n int) bool{
	"help":                       argcIs(2),
	"sleep":                      argcIs(3),
	"set-active-expire":          argcIs(3),
	"set-disable-deny-scripts":   argcIs(3),
	"quicklist-packed-threshold": argcIs(3),
	"change-repl-id":             argcIs(2),
	"jmap":                       argcIs(2),
	"protocol":                   argcIs(3),
	"object":                     argcIs(3),
	"listpack":                   argcIs(3),
	"digest":                     argcIs(2),
	"htstats":                    argcIs(3),
	"htstats-key":                argcIs(3),
	"replybuffer":                argcIs(4),
	"populate":                   func(n int) bool { return n >= 3 && n <= 5 },
}

func argcIs(want int) func(int) bool { return func(n int) bool { return n == want } }

// debugSelfLocking are the subcommands that lock shards themselves.
var debugSelfLocking = map[string]bool{
	"reload": true, "loadaof": true, "object": true, "digest": true, "digest-value": true, "populate": true,
	"htstats": true, "htstats-key": true,
}

const errReloadLoad = "ERR Error trying to load the RDB dump, check server logs."

// debugReload is DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]. Redis saves its
// RDB (unless NOSAVE), empties the keys and the function libraries
// (unless NOFLUSH) and loads the RDB back; a library or key of the file
// that is held already fails the load unless MERGE. A saving RELOAD
// writes the snapshot and loads it back as Redis: values take the form
// the loading gives them (a big hash that now fits the small limits comes
// back small) and keys whose expiry passed are gone. Without MERGE and
// with NOFLUSH it fails on any library or key held; with NOFLUSH and
// MERGE the snapshot just written holds every key and library held, each
// of which the load replaces, so it empties first as without NOFLUSH
// (replaying the snapshot onto the keys would add a list's elements
// twice). NOSAVE loads the data directory's snapshot and log as they
// are, as DEBUG LOADAOF, emptying first unless NOFLUSH.
func debugReload(c *Client) {
	s := c.srv
	merge, flush, save := false, true, true
	for _, opt := range c.Args[2:] {
		switch strings.ToLower(string(opt)) {
		case "merge":
			merge = true
		case "noflush":
			flush = false
		case "nosave":
			save = false
		default:
			c.W.Error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
			return
		}
	}
	// every library and key of the snapshot is held when it was just
	// written, or it may be; Redis crashes on a duplicate key
	if !flush && !merge && s.holdsData(c.AllLocked) {
		s.logger.Printf("DEBUG RELOAD NOFLUSH without MERGE: libraries or keys are held already")
		c.W.Error(errReloadLoad)
		return
	}
	if s.aof == nil {
		if !save { // no data directory: no file to load
			c.W.Error(errReloadLoad)
			return
		}
		c.W.OK() // nothing to write or load: the keyspace stays as it is
		return
	}
	if !save {
		if _, err := c.reloadData(flush); err != nil {
			s.logger.Printf("DEBUG RELOAD NOSAVE: %v", err)
			c.W.Error(errReloadLoad)
			return
		}
		s.logger.Printf("DB reloaded by DEBUG RELOAD")
		c.W.OK()
		return
	}
	if c.AllLocked {
		// inside EXEC: the rewrite takes every shard, which EXEC holds.
		// Redis saves and loads back at once; here the save and the load
		// run once EXEC has released its shards, before its reply (they
		// give back the keys EXEC left), and RELOAD answers OK. A failure
		// is logged
		if msg := s.onlyRewrite(); msg != "" {
			c.W.Error("ERR Error trying to save the DB: " + msg)
			return
		}
		c.afterExec(func() {
			if msg := newClient(s, nil).saveReload(); msg != "" {
				s.logger.Printf("DEBUG RELOAD inside MULTI, after EXEC: %s", msg)
			}
		})
		c.W.OK()
		return
	}
	if msg := c.saveReload(); msg != "" {
		c.W.Error(msg)
		return
	}
	c.W.OK()
}

// saveReload writes a snapshot and loads it back (a saving DEBUG RELOAD);
// it returns the error to reply, "" for OK. c holds no shard.
func (c *Client) saveReload() string {
	s := c.srv
	for try := 1; ; try++ {
		done, err := s.aof.StartRewrite()
		if err == nil {
			err = <-done
		}
		if err != nil {
			return "ERR Error trying to save the DB: " + err.Error()
		}
		switch loaded, err := c.reloadSaved(); {
		case loaded:
			s.logger.Printf("DB saved and reloaded by DEBUG RELOAD")
			return ""
		case err != nil:
			s.logger.Printf("DEBUG RELOAD: %v", err)
			return errReloadLoad
		case try == reloadTries:
			// written to all the time: the snapshot is written, the
			// keyspace kept as it is
			s.logger.Printf("DEBUG RELOAD: changes after each of %d snapshots: the keys are kept as they are", try)
			return ""
		}
	}
}

// onlyRewrite is the error of a rewrite that cannot start because another
// one runs ("" when none runs), for a command that starts its rewrite
// after EXEC released its shards and replies at once (BGSAVE inside
// MULTI). It reads the log's INFO line: a rewrite that begins between the
// check and the start makes it fail, which is logged.
func (s *Server) onlyRewrite() string {
	if s.aof == nil {
		return ""
	}
	for _, l := range s.aof.Info() {
		if l == "aof_rewrite_in_progress:1" {
			return aof.ErrRewriteRunning.Error()
		}
	}
	return ""
}

// reloadTries is how many snapshots a saving DEBUG RELOAD writes to find
// one that nothing changed since, with appendonly no.
const reloadTries = 3

// reloadSaved loads back the snapshot a rewrite just wrote, with every
// shard of every database held, first emptying the keys and libraries
// (Redis's flush after its save). Redis's RELOAD runs alone; here other
// clients may write between the end of the rewrite and the locking: with
// appendonly yes their writes are in the new log, which the load replays
// after the snapshot, and with it off the load happens only when nothing
// changed since the rewrite began (the dirty counter, which the rewrite
// lowered by what the snapshot holds, is 0); loaded false otherwise.
func (c *Client) reloadSaved() (loaded bool, err error) {
	s := c.srv
	c.lockEverything()
	defer c.unlock()
	if !s.aof.Enabled() && s.dirty.Load() != 0 {
		return false, nil
	}
	c.Now = s.nowMs()
	if _, err := s.aof.Reload(func() {
		command.FlushAllLocked(&c.Ctx)
		s.flushFunctions()
	}); err != nil {
		if errors.Is(err, aof.ErrRewriteRunning) { // another one began meanwhile
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// holdsData tells whether a function library or a key is held; held: the
// caller holds every shard of every database.
func (s *Server) holdsData(held bool) bool {
	if s.script.libCount.Load() > 0 {
		return true
	}
	for _, ks := range s.dbKS {
		if held && ks.LenLocked() > 0 || !held && ks.Len() > 0 {
			return true
		}
	}
	return false
}

// flushFunctions drops every function library, not logged: for a load
// that replaces them (Redis empties them with the keys).
func (s *Server) flushFunctions() {
	se := &s.script
	se.mu.Lock()
	se.eng.FunctionFlush()
	se.functionsChanged()
	se.mu.Unlock()
}

// debugSubcommandError replies Redis's error for an unknown DEBUG
// subcommand or a wrong number of arguments to one.
func debugSubcommandError(c *Client) {
	c.W.Error(command.SubSyntaxError("debug", c.Args[1]))
}

// reloadData loads the data directory's snapshot and log again with every
// shard of every database held, first dropping every key and function
// library when flush (DEBUG LOADAOF, DEBUG RELOAD NOSAVE); it returns the
// commands of the log applied. Inside EXEC (c.AllLocked: it holds every
// shard of every database for DEBUG) it runs with EXEC's locks.
func (c *Client) reloadData(flush bool) (int, error) {
	s := c.srv
	if !c.AllLocked {
		c.lockEverything()
		defer c.unlock()
	}
	c.Now = s.nowMs()
	return s.aof.Reload(func() {
		if flush {
			command.FlushAllLocked(&c.Ctx)
			s.flushFunctions()
		}
	})
}

// debugLoadAOF is DEBUG LOADAOF: as Redis, it writes out the log, drops
// every key and function library and loads the data directory's snapshot
// and log again, which shows whether they hold what the server held.
// Nothing of it is logged or replicated. Every shard of every database is held meanwhile.
func debugLoadAOF(c *Client) {
	s := c.srv
	if s.aof == nil {
		c.W.Error("ERR no append only file: this server has no data directory")
		return
	}
	n, err := c.reloadData(true)
	switch {
	case errors.Is(err, aof.ErrRewriteRunning):
		c.W.Error("ERR Background append only file rewriting in progress")
	case err != nil:
		c.W.Error("ERR Error loading the append only file: " + err.Error())
	default:
		s.logger.Printf("Append Only File loaded by DEBUG LOADAOF: %d commands", n)
		c.W.OK()
	}
}

// debugProtocol is DEBUG PROTOCOL <type>: a reply of each type of the
// protocol, as Redis's, for clients to test their parsers: string,
// integer, double, bignum, null, array, set, map, attrib (an attribute
// before a reply, RESP3), push (RESP3 only, then a reply), verbatim, true
// and false.
func debugProtocol(c *Client) {
	w := &c.W
	resp3 := w.RESP3()
	switch strings.ToLower(string(c.Args[2])) {
	case "string":
		w.BulkString("Hello World")
	case "integer":
		w.Int(12345)
	case "double":
		w.Double(3.141)
	case "bignum":
		const big = "1234567999999999999999999999999999999"
		if resp3 {
			w.Raw([]byte("(" + big + "\r\n"))
		} else {
			w.BulkString(big)
		}
	case "null":
		w.Null()
	case "array", "set":
		if c.Args[2][0]|0x20 == 'a' {
			w.Array(3)
		} else {
			w.Set(3)
		}
		for j := int64(0); j < 3; j++ {
			w.Int(j)
		}
	case "map":
		w.Map(3)
		for j := int64(0); j < 3; j++ {
			w.Int(j)
			w.Bool(j == 1)
		}
	case "attrib":
		if resp3 {
			w.Raw([]byte("|1\r\n"))
			w.BulkString("key-popularity")
			w.Array(2)
			w.BulkString("key:123")
			w.Int(90)
		}
		// an attribute is not a reply: one follows
		w.BulkString("Some real reply following the attribute")
	case "push":
		if !resp3 {
			w.Error("ERR RESP2 is not supported by this command")
			return
		}
		w.Raw([]byte(">2\r\n"))
		w.BulkString("server-cpu-usage")
		w.Int(42)
		// a push is not a reply: one follows, for clients that drop pushes
		w.BulkString("Some real reply following the push reply")
	case "verbatim":
		w.Verbatim("This is a verbatim\nstring")
	case "true":
		w.Bool(true)
	case "false":
		w.Bool(false)
	default:
		w.Error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
	}
}

// withKey runs fn with the shard of key locked, on key's entry even when
// its expiry has passed (Redis's DEBUG OBJECT reads the table with
// dictFind, so a key active expiry has not taken yet is still shown).
// Inside EXEC (c.AllLocked) the shard is held already.
func (c *Client) withKey(key []byte, fn func(e *keyspace.Entry)) {
	if c.AllLocked {
		fn(c.KS.RawLocked(key))
		return
	}
	keys := c.Keys
	c.Keys = append(c.Keys[:0], key)
	c.Now = c.srv.nowMs()
	c.lockKeys()
	fn(c.KS.RawLocked(key))
	c.unlock()
	c.Keys = keys[:0]
}

func debugObject(c *Client) {
	c.withKey(c.Args[2], func(e *keyspace.Entry) {
		if e == nil {
			c.W.Error("ERR no such key")
			return
		}
		enc := command.Encoding(e)
		ser := len(keyspace.Dump(e))
		extra := ""
		if enc == "quicklist" && e.Kind() == keyspace.Lists.Kind() {
			l := keyspace.Lists.Of(e)
			extra = fmt.Sprintf(" ql_nodes:%d ql_avg_node:%.2f ql_listpack_max:%d ql_compressed:0 ql_uncompressed_size:%d",
				l.Nodes(), float64(l.Len())/float64(max(l.Nodes(), 1)), -2, ser)
		}
		c.W.Simple(fmt.Sprintf("Value at:%p refcount:1 encoding:%s serializedlength:%d lru:%d lru_seconds_idle:%d%s",
			e, enc, ser, (c.Now/1000)&(1<<24-1), e.IdleTime(c.Now), extra))
	})
}

// digestOf is the SHA-1 of a key, its expiry and its value: equal data
// gives equal digests, whatever the order of the keys and, for sets and
// hashes, of their elements (their digests are XORed, as Redis does).
func digestOf(key []byte, e *keyspace.Entry) [20]byte {
	h := sha1.New()
	h.Write(key)
	fmt.Fprintf(h, "\x00%d\x00", e.Expiry())
	unordered := func(each func(fn func(parts ...[]byte))) {
		var acc [20]byte
		each(func(parts ...[]byte) {
			eh := sha1.New()
			for _, p := range parts {
				fmt.Fprintf(eh, "%d:", len(p))
				eh.Write(p)
			}
			for i, x := range eh.Sum(nil) {
				acc[i] ^= x
			}
		})
		h.Write(acc[:])
	}
	switch e.Kind() {
	case keyspace.Sets.Kind():
		h.Write([]byte("set"))
		unordered(func(fn func(parts ...[]byte)) { keyspace.Sets.Of(e).Each(func(m []byte) { fn(m) }) })
	case keyspace.Hashes.Kind():
		h.Write([]byte("hash"))
		unordered(func(fn func(parts ...[]byte)) { keyspace.Hashes.Of(e).Each(func(f, v []byte) { fn(f, v) }) })
	default: // strings, lists, sorted sets and streams serialize in order
		h.Write(keyspace.Dump(e))
	}
	var out [20]byte
	copy(out[:], h.Sum(nil))
	return out
}

// digest is DEBUG DIGEST: the XOR of every key's digest, 40 zeros for an
// empty keyspace, as Redis. held: the caller holds every shard of every
// database (EXEC).
func (s *Server) digest(held bool) string {
	var acc [20]byte
	any := false
	for db, ks := range s.dbKS {
		for i := 0; i < keyspace.NumShards; i++ {
			if !held {
				ks.LockShard(i)
			}
			ks.ForEachInShardLocked(i, func(key string, e *keyspace.Entry) {
				any = true
				k := []byte(key)
				if db != 0 { // the same key in two databases does not cancel out
					k = append([]byte(strconv.Itoa(db)+":"), k...)
				}
				d := digestOf(k, e)
				for j := range acc {
					acc[j] ^= d[j]
				}
			})
			if !held {
				ks.UnlockShard(i)
			}
		}
	}
	if !any {
		return strings.Repeat("0", 40)
	}
	return hex.EncodeToString(acc[:])
}

func (s *Server) digestKey(ks *keyspace.Keyspace, key []byte, held bool) string {
	out := strings.Repeat("0", 40)
	sh := keyspace.ShardOf(key)
	if !held {
		ks.LockShard(sh)
		defer ks.UnlockShard(sh)
	}
	if e := ks.PeekLocked(key, s.nowMs()); e != nil {
		d := digestOf(key, e)
		out = hex.EncodeToString(d[:])
	}
	return out
}

// debugPopulate is DEBUG POPULATE count [prefix] [size]: SET prefix:N to
// value:N (padded or cut to size) where the key does not exist, each as a
// logged and replicated SET.
func debugPopulate(c *Client) {
	n, ok := command.ParseInt(c.Args[2])
	if !ok || n < 0 {
		c.W.Error("ERR count is not an integer or out of range")
		return
	}
	prefix := "key"
	if len(c.Args) >= 4 {
		prefix = string(c.Args[3])
	}
	size := int64(-1)
	if len(c.Args) == 5 {
		v, ok := command.ParseInt(c.Args[4])
		if !ok || v < 0 || v > 1<<20 {
			c.W.Error("ERR size is out of range")
			return
		}
		size = v
	}
	set := c.srv.cmds.Lookup([]byte("set"))
	saved := c.Args
	mark := len(c.W.B)
	for i := int64(0); i < n; i++ {
		key := []byte(prefix + ":" + strconv.FormatInt(i, 10))
		val := []byte("value:" + strconv.FormatInt(i, 10))
		if size >= 0 {
			v := make([]byte, size)
			copy(v, val)
			val = v
		}
		c.Args = [][]byte{[]byte("set"), key, val, []byte("nx")}
		c.srv.call(c, set, !c.AllLocked) // inside EXEC it holds every shard
		c.W.B = c.W.B[:mark]
	}
	c.Args = saved
	c.W.OK()
}

// cpuTimes returns the user and system CPU seconds of the process.
func cpuTimes() (user, sys float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime)
}

func cpuChildren() (user, sys float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime)
}
