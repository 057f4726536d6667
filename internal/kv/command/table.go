// Package command is the command layer of the data store: the table of
// commands (name, arity, flags, key positions, handler) and the handlers of
// the commands on keys and values. A handler runs in a Ctx: its
// arguments, a reply writer and the keyspace with the shards of its keys
// locked. It knows nothing of connections, logs or replication: the
// server (internal/kv) looks commands up, locks, runs them and then logs
// and replicates what they changed; the append-only log (internal/kv/aof)
// replays them with Table.Apply.
//
// A new command registers a Spec in a Table; a command of a new value
// type reads its keys with LookupAs and the keyspace.Type it registered.
package command

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Handler runs a command in c.
type Handler func(c *Ctx)

// Flag is a property of a command the dispatcher acts on.
type Flag uint32

// The flags of commands. The lower-case names in a Spec's Flags set them;
// those marked (internal) are not reported by COMMAND.
const (
	Write        Flag = 1 << iota // changes the keyspace ("write")
	ReadOnly                      // "readonly"
	NoAuth                        // allowed before AUTH ("no-auth")
	NoQueue                       // runs at once inside MULTI: EXEC, DISCARD, WATCH ... (internal "noqueue")
	SelfLock                      // the handler locks and commits itself: blocking commands, MIGRATE (internal "selflock")
	AllShards                     // reads or writes the whole keyspace: KEYS, FLUSHALL ... (internal "allshards")
	LockAll                       // the dispatcher locks every shard for it: FLUSHALL (internal "lockall")
	NoMulti                       // refused inside MULTI ("no-multi")
	Asking                        // routed as after ASKING: RESTORE-ASKING ("asking")
	DenyOOM                       // refused while memory is over maxmemory and nothing can be evicted ("denyoom")
	AllowBusy                     // runs while a script is busy ("allow-busy")
	MayReplicate                  // logged when it changes state other than keys: FUNCTION ("may-replicate")
	CrossDB                       // may reach another database: MOVE, COPY ... DB, SWAPDB, FLUSHALL (internal "crossdb", see Ctx.CrossShards)
	Stale                         // runs on a replica whose link is down with replica-serve-stale-data no ("stale")
	Protected                     // refused by its enable-*-command setting before auth: DEBUG, MODULE (internal "protected", as Redis's CMD_PROTECTED)
	ExecAll                       // locks shards itself (INFO, DEBUG, MEMORY, BGSAVE ...): EXEC and scripts hold every shard of every database for it, and it uses the Locked variants when AllLocked (internal "execall")
)

// Command describes one command: its name, arity (negative: at least -Arity
// arguments including the name), flags, the positions of its keys
// (First..Last by Step, Last negative counts from the end) and its handler.
type Command struct {
	Name  string
	Arity int
	// Flags are the flags COMMAND reports; Mask the ones the dispatcher
	// checks.
	Flags []string
	Mask  Flag
	First int
	Last  int
	Step  int
	Group string
	// KeysFn extracts the keys of commands whose keys are not at fixed
	// positions (a numkeys argument).
	KeysFn  func(args [][]byte, dst [][]byte) [][]byte
	Handler Handler
	// Stats are the command's call statistics (INFO commandstats).
	Stats CallStats
	// Subs are the subcommands of a container command (CLIENT, CONFIG
	// ...) by lower-case name, nil for any other command. The server sets
	// them before serving, from the ACL catalog (Redis's command table);
	// the dispatcher checks a call against them (CheckSub).
	Subs map[string]*Sub
}

// Sub is a subcommand of a container command: its full name
// ("client|kill") and its arity, counting the container's name.
type Sub struct {
	Name  string
	Arity int
}

// Sub returns the subcommand args[1] names of the container cmd, nil if
// it has none of that name (or args has no subcommand).
func (cmd *Command) Sub(args [][]byte) *Sub {
	if len(args) < 2 {
		return nil
	}
	var buf [32]byte // subcommand names are short: no allocation
	return cmd.Subs[string(LowerInto(buf[:0], args[1]))]
}

// CheckSub returns the error Redis replies, before running the container
// command cmd, when args (of two or more) name a subcommand it does not
// have or give a subcommand a wrong number of arguments; "" when the call
// may run. sub is the subcommand, nil when unknown.
func (cmd *Command) CheckSub(args [][]byte) (sub *Sub, msg string) {
	sub = cmd.Sub(args)
	if sub == nil {
		return nil, UnknownSubError(cmd.Name, args[1])
	}
	if sub.Arity > 0 && len(args) != sub.Arity || len(args) < -sub.Arity {
		return sub, "ERR wrong number of arguments for '" + sub.Name + "' command"
	}
	return sub, ""
}

// UnknownSubError is Redis's error for an unknown subcommand of the
// container command name.
func UnknownSubError(name string, sub []byte) string {
	return "ERR unknown subcommand '" + SubArg(sub) + "'. Try " + strings.ToUpper(name) + " HELP."
}

// SubSyntaxError is Redis's error of a container's handler for a
// subcommand it cannot run with the arguments given (the command table's
// arity let them through: SLOWLOG GET 1 2).
func SubSyntaxError(name string, sub []byte) string {
	return "ERR unknown subcommand or wrong number of arguments for '" + SubArg(sub) +
		"'. Try " + strings.ToUpper(name) + " HELP."
}

// SubArg is a subcommand's name as Redis's errors show it, formatted with
// "%.128s": up to its first NUL byte, and its first 128 bytes (the
// writer makes newlines spaces).
func SubArg(sub []byte) string {
	if i := bytes.IndexByte(sub, 0); i >= 0 {
		sub = sub[:i]
	}
	return Trunc(sub, 128)
}

// Has reports whether the command has one of the flags f.
func (cmd *Command) Has(f Flag) bool { return cmd.Mask&f != 0 }

// ArityOK reports whether n arguments (with the name) fit the arity.
func (cmd *Command) ArityOK(n int) bool {
	if cmd.Arity >= 0 {
		return cmd.Arity == 0 || n == cmd.Arity
	}
	return n >= -cmd.Arity
}

// GetKeys appends the keys of args to dst.
func (cmd *Command) GetKeys(args [][]byte, dst [][]byte) [][]byte {
	if cmd.KeysFn != nil {
		return cmd.KeysFn(args, dst)
	}
	if cmd.First == 0 {
		return dst
	}
	if cmd.Last == cmd.First && cmd.First < len(args) { // one key: most commands
		return append(dst, args[cmd.First])
	}
	last := cmd.Last
	if last < 0 {
		last += len(args)
	}
	for i := cmd.First; i <= last && i < len(args); i += cmd.Step {
		dst = append(dst, args[i])
	}
	return dst
}

// NumKeysAt returns a KeysFn for commands with "numkeys key..." at position
// pos (LMPOP, SINTERCARD, BLMPOP).
func NumKeysAt(pos int) func(args [][]byte, dst [][]byte) [][]byte {
	return func(args [][]byte, dst [][]byte) [][]byte {
		if pos >= len(args) {
			return dst
		}
		n, ok := ParseInt(args[pos])
		if !ok || n <= 0 || n > int64(len(args)-pos-1) {
			return dst
		}
		return append(dst, args[pos+1:pos+1+int(n)]...)
	}
}

// Spec is how a command is registered, in the order of Redis's COMMAND
// INFO: name, arity, flags (space separated), first, last and step key
// positions, group, handler, and a key extractor for commands whose keys
// are not at fixed positions.
type Spec struct {
	Name              string
	Arity             int
	Flags             string
	First, Last, Step int
	Group             string
	Handler           Handler
	KeysFn            func(args [][]byte, dst [][]byte) [][]byte
}

// Table is the registry of commands, looked up by name for every command a
// client sends.
type Table struct {
	cmds map[string]*Command
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{cmds: make(map[string]*Command)} }

// Register adds commands. A name registered twice is a programming error
// and panics, like http.ServeMux's duplicate patterns.
func (t *Table) Register(specs ...Spec) {
	for _, sp := range specs {
		name := strings.ToLower(sp.Name)
		if _, dup := t.cmds[name]; dup {
			panic("command: " + name + " registered twice")
		}
		if sp.Handler == nil {
			panic("command: " + name + " has no handler")
		}
		cmd := &Command{
			Name: name, Arity: sp.Arity, First: sp.First, Last: sp.Last, Step: sp.Step,
			Group: sp.Group, Handler: sp.Handler, KeysFn: sp.KeysFn,
		}
		for _, f := range strings.Fields(sp.Flags) {
			switch f {
			case "write":
				cmd.Mask |= Write
			case "readonly":
				cmd.Mask |= ReadOnly
			case "no-auth":
				cmd.Mask |= NoAuth
			case "noqueue":
				cmd.Mask |= NoQueue
				continue
			case "selflock":
				cmd.Mask |= SelfLock
				continue
			case "allshards":
				cmd.Mask |= AllShards
				continue
			case "crossdb":
				cmd.Mask |= CrossDB
				continue
			case "execall":
				cmd.Mask |= ExecAll
				continue
			case "lockall": // it spans the keyspace: EXEC locks every shard too
				cmd.Mask |= LockAll | AllShards
				continue
			case "no-multi":
				cmd.Mask |= NoMulti
			case "asking":
				cmd.Mask |= Asking
			case "denyoom":
				cmd.Mask |= DenyOOM
			case "allow-busy":
				cmd.Mask |= AllowBusy
			case "may-replicate":
				cmd.Mask |= MayReplicate
			case "stale":
				cmd.Mask |= Stale
			case "protected":
				cmd.Mask |= Protected
				continue
			}
			cmd.Flags = append(cmd.Flags, f)
		}
		t.cmds[name] = cmd
	}
}

// Lookup returns the command named name (in any case), nil if none.
func (t *Table) Lookup(name []byte) *Command {
	var buf [32]byte // command names are short: no allocation
	return t.cmds[string(LowerInto(buf[:0], name))]
}

// Len returns the number of commands.
func (t *Table) Len() int { return len(t.cmds) }

// Sorted returns the commands by name.
func (t *Table) Sorted() []*Command {
	out := make([]*Command, 0, len(t.cmds))
	for _, cmd := range t.cmds {
		out = append(out, cmd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Apply runs a write command read back from a log or a snapshot at time
// now: it locks the shards of its keys (every shard for LockAll), runs the
// handler and unlocks, without logging it again. It refuses what a log
// never holds (unknown commands, commands that are not plain writes, a
// wrong arity) and returns the error a handler replied. With
// c.AllLocked the caller holds every shard of every database: it locks
// nothing.
func (t *Table) Apply(c *Ctx, args [][]byte, now int64) error {
	cmd := t.Lookup(args[0])
	if cmd == nil || cmd.Has(SelfLock) || !cmd.Has(Write|MayReplicate) || !cmd.ArityOK(len(args)) {
		return fmt.Errorf("invalid command %q with %d arguments", Trunc(args[0], 64), len(args))
	}
	if cmd.Subs != nil && len(args) > 1 {
		if _, msg := cmd.CheckSub(args); msg != "" {
			return fmt.Errorf("invalid command %q %q with %d arguments", Trunc(args[0], 64), Trunc(args[1], 64), len(args))
		}
	}
	c.Args, c.Cmd, c.Now = args, cmd, now
	c.Replaying = true
	c.Keys = cmd.GetKeys(args, c.Keys[:0])
	if c.AllLocked {
		cmd.Handler(c)
		return c.applied(cmd)
	}
	if cmd.Has(CrossDB) {
		if g, ok := c.CrossShards(c.Cross[:0]); ok {
			c.LockCross(g)
			cmd.Handler(c)
			c.UnlockCross()
			return c.applied(cmd)
		}
	}
	if cmd.Has(LockAll) {
		c.LockAll()
	} else {
		c.LockKeys()
	}
	cmd.Handler(c)
	c.Unlock()
	return c.applied(cmd)
}

// applied ends an Apply: the command's error reply, if any.
func (c *Ctx) applied(cmd *Command) error {
	c.ResetRecord()
	var err error
	if b := c.W.B; len(b) > 0 && b[0] == '-' {
		err = fmt.Errorf("%s: %s", cmd.Name, strings.TrimSpace(string(b[1:])))
	}
	c.W.B = c.W.B[:0]
	return err
}

// LockKeys locks the shards of c.Keys in ascending order and records them
// in c.Locked. It reports whether it waited for a shard another held.
func (c *Ctx) LockKeys() (waited bool) {
	c.Locked = c.Locked[:0]
	switch len(c.Keys) {
	case 0:
		return false
	case 1:
		i := int(c.SlotOf(c.Keys[0])) % keyspace.NumShards
		c.Locked = append(c.Locked, i)
		if c.KS.TryLockShard(i) { // lockShard, inlined: the common case
			return false
		}
		c.KS.LockShard(i)
		return true
	}
	for _, k := range c.Keys {
		c.Locked = append(c.Locked, keyspace.ShardOf(k))
	}
	slices.Sort(c.Locked)
	c.Locked = slices.Compact(c.Locked)
	for _, i := range c.Locked {
		if lockShard(c.KS, i) {
			waited = true
		}
	}
	return waited
}

// lockShard locks shard i of ks and reports whether it had to wait for
// another holder: the command may read the clock again. Uncontended,
// TryLock is one compare-and-swap, as Lock's fast path.
func lockShard(ks *keyspace.Keyspace, i int) (waited bool) {
	if ks.TryLockShard(i) {
		return false
	}
	ks.LockShard(i)
	return true
}

// LockAll locks every shard (FLUSHALL, KEYS inside EXEC). It reports
// whether it waited for a shard another held.
func (c *Ctx) LockAll() (waited bool) {
	c.Locked = c.Locked[:0]
	for i := 0; i < keyspace.NumShards; i++ {
		c.Locked = append(c.Locked, i)
		if lockShard(c.KS, i) {
			waited = true
		}
	}
	return waited
}

// Unlock unlocks the shards in c.Locked.
func (c *Ctx) Unlock() {
	for j := len(c.Locked) - 1; j >= 0; j-- {
		c.KS.UnlockShard(c.Locked[j])
	}
	c.Locked = c.Locked[:0]
}

// DataCommands returns the commands on keys and values: strings, keys,
// lists (without the blocking pops, which wait on the connection), sets,
// hashes and sorted sets. The server registers them with its own
// (connection, transactions, replication, cluster).
func DataCommands() []Spec {
	const (
		w   = "write denyoom"
		wf  = "write denyoom fast"
		d   = "write"
		df  = "write fast"
		r   = "readonly"
		rf  = "readonly fast"
		str = "string"
		gen = "generic"
		lst = "list"
		st  = "set"
		hs  = "hash"
		zs  = "sorted-set"
		srv = "server"
	)
	return append([]Spec{
		// strings
		{"get", 2, rf, 1, 1, 1, str, cmdGet, nil},
		{"set", -3, w, 1, 1, 1, str, cmdSet, nil},
		{"setnx", 3, wf, 1, 1, 1, str, cmdSetNX, nil},
		{"setex", 4, w, 1, 1, 1, str, cmdSetEX, nil},
		{"psetex", 4, w, 1, 1, 1, str, cmdSetEX, nil},
		{"mget", -2, rf, 1, -1, 1, str, cmdMGet, nil},
		{"mset", -3, w, 1, -1, 2, str, cmdMSet, nil},
		{"msetnx", -3, w, 1, -1, 2, str, cmdMSet, nil},
		{"getset", 3, wf, 1, 1, 1, str, cmdGetSet, nil},
		{"getdel", 2, df, 1, 1, 1, str, cmdGetDel, nil},
		{"getex", -2, df, 1, 1, 1, str, cmdGetEx, nil},
		{"append", 3, wf, 1, 1, 1, str, cmdAppend, nil},
		{"strlen", 2, rf, 1, 1, 1, str, cmdStrlen, nil},
		{"getrange", 4, r, 1, 1, 1, str, cmdGetRange, nil},
		{"substr", 4, r, 1, 1, 1, str, cmdGetRange, nil},
		{"setrange", 4, w, 1, 1, 1, str, cmdSetRange, nil},
		{"incr", 2, wf, 1, 1, 1, str, cmdIncr, nil},
		{"decr", 2, wf, 1, 1, 1, str, cmdIncr, nil},
		{"incrby", 3, wf, 1, 1, 1, str, cmdIncr, nil},
		{"decrby", 3, wf, 1, 1, 1, str, cmdIncr, nil},
		{"incrbyfloat", 3, wf, 1, 1, 1, str, cmdIncrByFloat, nil},
		// keys
		{"del", -2, d, 1, -1, 1, gen, cmdDel, nil},
		{"unlink", -2, df, 1, -1, 1, gen, cmdUnlink, nil},
		{"exists", -2, rf, 1, -1, 1, gen, cmdExists, nil},
		{"touch", -2, rf, 1, -1, 1, gen, cmdExists, nil},
		{"expire", -3, df, 1, 1, 1, gen, cmdExpire, nil},
		{"pexpire", -3, df, 1, 1, 1, gen, cmdExpire, nil},
		{"expireat", -3, df, 1, 1, 1, gen, cmdExpire, nil},
		{"pexpireat", -3, df, 1, 1, 1, gen, cmdExpire, nil},
		{"ttl", 2, rf, 1, 1, 1, gen, cmdTTL, nil},
		{"pttl", 2, rf, 1, 1, 1, gen, cmdTTL, nil},
		{"expiretime", 2, rf, 1, 1, 1, gen, cmdTTL, nil},
		{"pexpiretime", 2, rf, 1, 1, 1, gen, cmdTTL, nil},
		{"persist", 2, df, 1, 1, 1, gen, cmdPersist, nil},
		{"type", 2, rf, 1, 1, 1, gen, cmdType, nil},
		{"keys", 2, r + " allshards", 0, 0, 0, gen, cmdKeys, nil},
		{"scan", -2, r + " allshards", 0, 0, 0, gen, cmdScan, nil},
		{"rename", 3, d, 1, 2, 1, gen, cmdRename, nil},
		{"renamenx", 3, df, 1, 2, 1, gen, cmdRename, nil},
		{"randomkey", 1, r + " allshards", 0, 0, 0, gen, cmdRandomKey, nil},
		{"dbsize", 1, rf + " allshards", 0, 0, 0, srv, cmdDBSize, nil},
		{"flushall", -1, d + " allshards lockall crossdb", 0, 0, 0, srv, cmdFlushAll, nil},
		{"flushdb", -1, d + " allshards lockall", 0, 0, 0, srv, cmdFlushDB, nil},
		{"copy", -3, w + " crossdb", 1, 2, 1, gen, cmdCopy, nil},
		{"move", 3, df + " crossdb", 1, 1, 1, gen, cmdMove, nil},
		{"swapdb", 3, df + " crossdb", 0, 0, 0, srv, cmdSwapDB, nil},
		{"object", -2, r, 2, 2, 1, gen, cmdObject, nil},
		{"dump", 2, r, 1, 1, 1, gen, cmdDump, nil},
		{"restore", -4, w, 1, 1, 1, gen, cmdRestore, nil},
		{"restore-asking", -4, w + " asking", 1, 1, 1, gen, cmdRestore, nil},
		// lists
		{"lpush", -3, wf, 1, 1, 1, lst, cmdPush, nil},
		{"rpush", -3, wf, 1, 1, 1, lst, cmdPush, nil},
		{"lpushx", -3, wf, 1, 1, 1, lst, cmdPush, nil},
		{"rpushx", -3, wf, 1, 1, 1, lst, cmdPush, nil},
		{"lpop", -2, df, 1, 1, 1, lst, cmdPop, nil},
		{"rpop", -2, df, 1, 1, 1, lst, cmdPop, nil},
		{"llen", 2, rf, 1, 1, 1, lst, cmdLLen, nil},
		{"lrange", 4, r, 1, 1, 1, lst, cmdLRange, nil},
		{"lindex", 3, r, 1, 1, 1, lst, cmdLIndex, nil},
		{"lset", 4, w, 1, 1, 1, lst, cmdLSet, nil},
		{"lrem", 4, d, 1, 1, 1, lst, cmdLRem, nil},
		{"ltrim", 4, d, 1, 1, 1, lst, cmdLTrim, nil},
		{"linsert", 5, w, 1, 1, 1, lst, cmdLInsert, nil},
		{"lpos", -3, r, 1, 1, 1, lst, cmdLPos, nil},
		{"lmove", 5, w, 1, 2, 1, lst, cmdLMove, nil},
		{"rpoplpush", 3, w, 1, 2, 1, lst, cmdLMove, nil},
		{"lmpop", -4, d, 0, 0, 0, lst, cmdLMPop, NumKeysAt(1)},
		// sets
		{"sadd", -3, wf, 1, 1, 1, st, cmdSAdd, nil},
		{"srem", -3, df, 1, 1, 1, st, cmdSRem, nil},
		{"smembers", 2, r, 1, 1, 1, st, cmdSMembers, nil},
		{"sismember", 3, rf, 1, 1, 1, st, cmdSIsMember, nil},
		{"smismember", -3, rf, 1, 1, 1, st, cmdSIsMember, nil},
		{"scard", 2, rf, 1, 1, 1, st, cmdSCard, nil},
		{"spop", -2, df, 1, 1, 1, st, cmdSPop, nil},
		{"srandmember", -2, r, 1, 1, 1, st, cmdSRandMember, nil},
		{"smove", 4, df, 1, 2, 1, st, cmdSMove, nil},
		{"sinter", -2, r, 1, -1, 1, st, cmdSetOp, nil},
		{"sunion", -2, r, 1, -1, 1, st, cmdSetOp, nil},
		{"sdiff", -2, r, 1, -1, 1, st, cmdSetOp, nil},
		{"sinterstore", -3, w, 1, -1, 1, st, cmdSetOp, nil},
		{"sunionstore", -3, w, 1, -1, 1, st, cmdSetOp, nil},
		{"sdiffstore", -3, w, 1, -1, 1, st, cmdSetOp, nil},
		{"sintercard", -3, r, 0, 0, 0, st, cmdSInterCard, NumKeysAt(1)},
		{"sscan", -3, r, 1, 1, 1, st, cmdSScan, nil},
		// hashes
		{"hset", -4, wf, 1, 1, 1, hs, cmdHSet, nil},
		{"hmset", -4, wf, 1, 1, 1, hs, cmdHSet, nil},
		{"hsetnx", 4, wf, 1, 1, 1, hs, cmdHSetNX, nil},
		{"hget", 3, rf, 1, 1, 1, hs, cmdHGet, nil},
		{"hmget", -3, rf, 1, 1, 1, hs, cmdHMGet, nil},
		{"hgetall", 2, r, 1, 1, 1, hs, cmdHGetAll, nil},
		{"hkeys", 2, r, 1, 1, 1, hs, cmdHGetAll, nil},
		{"hvals", 2, r, 1, 1, 1, hs, cmdHGetAll, nil},
		{"hdel", -3, df, 1, 1, 1, hs, cmdHDel, nil},
		{"hexists", 3, rf, 1, 1, 1, hs, cmdHExists, nil},
		{"hlen", 2, rf, 1, 1, 1, hs, cmdHLen, nil},
		{"hstrlen", 3, rf, 1, 1, 1, hs, cmdHStrlen, nil},
		{"hincrby", 4, wf, 1, 1, 1, hs, cmdHIncrBy, nil},
		{"hincrbyfloat", 4, wf, 1, 1, 1, hs, cmdHIncrByFloat, nil},
		{"hrandfield", -2, r, 1, 1, 1, hs, cmdHRandField, nil},
		{"hscan", -3, r, 1, 1, 1, hs, cmdHScan, nil},
		// sorted sets
		{"zadd", -4, wf, 1, 1, 1, zs, cmdZAdd, nil},
		{"zrem", -3, df, 1, 1, 1, zs, cmdZRem, nil},
		{"zscore", 3, rf, 1, 1, 1, zs, cmdZScore, nil},
		{"zmscore", -3, rf, 1, 1, 1, zs, cmdZScore, nil},
		{"zincrby", 4, wf, 1, 1, 1, zs, cmdZIncrBy, nil},
		{"zcard", 2, rf, 1, 1, 1, zs, cmdZCard, nil},
		{"zcount", 4, rf, 1, 1, 1, zs, cmdZCount, nil},
		{"zrank", -3, rf, 1, 1, 1, zs, cmdZRank, nil},
		{"zrevrank", -3, rf, 1, 1, 1, zs, cmdZRank, nil},
		{"zrange", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zrangebyscore", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zrevrangebyscore", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zrevrange", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zrangebylex", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zrevrangebylex", -4, r, 1, 1, 1, zs, cmdZRange, nil},
		{"zremrangebyrank", 4, d, 1, 1, 1, zs, cmdZRemRange, nil},
		{"zremrangebyscore", 4, d, 1, 1, 1, zs, cmdZRemRange, nil},
		{"zpopmin", -2, df, 1, 1, 1, zs, cmdZPop, nil},
		{"zpopmax", -2, df, 1, 1, 1, zs, cmdZPop, nil},
		{"zscan", -3, r, 1, 1, 1, zs, cmdZScan, nil},
	}, typeCommands()...)
}
