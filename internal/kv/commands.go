package kv

import (
	"strings"
)

// Command describes one command: its name, arity (negative: at least -Arity
// arguments including the name), flags, the positions of its keys
// (First..Last by Step, Last negative counts from the end) and its handler.
type Command struct {
	Name    string
	Arity   int
	Flags   []string
	First   int
	Last    int
	Step    int
	Group   string
	Summary string
	// KeysFn extracts the keys of commands whose keys are not at fixed
	// positions (a numkeys argument).
	KeysFn  func(args [][]byte, dst [][]byte) [][]byte
	Handler func(c *Client)

	flags uint32
}

const (
	flagWrite uint32 = 1 << iota
	flagReadonly
	flagNoAuth    // allowed before AUTH
	flagNoQueue   // runs at once inside MULTI (EXEC, DISCARD, WATCH ...)
	flagSelfLock  // the handler locks and commits itself (blocking commands)
	flagAllShards // reads or writes the whole keyspace (KEYS, FLUSHALL ...)
	flagNoMulti   // refused inside MULTI
	flagAsking    // routed as after ASKING (RESTORE-ASKING)
)

// getKeys appends the keys of args to dst.
func (cmd *Command) getKeys(args [][]byte, dst [][]byte) [][]byte {
	if cmd.KeysFn != nil {
		return cmd.KeysFn(args, dst)
	}
	if cmd.First == 0 {
		return dst
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

// numKeysAt returns a KeysFn for commands with "numkeys key..." at position
// pos (LMPOP, SINTERCARD, BLMPOP).
func numKeysAt(pos int) func(args [][]byte, dst [][]byte) [][]byte {
	return func(args [][]byte, dst [][]byte) [][]byte {
		if pos >= len(args) {
			return dst
		}
		n, ok := parseInt(args[pos])
		if !ok || n <= 0 || n > int64(len(args)-pos-1) {
			return dst
		}
		return append(dst, args[pos+1:pos+1+int(n)]...)
	}
}

type cmdSpec struct {
	name              string
	arity             int
	flags             string
	first, last, step int
	group             string
	handler           func(c *Client)
	keysFn            func(args [][]byte, dst [][]byte) [][]byte
}

// commandTable builds the registry; a duplicate name is a programming error.
func commandTable() map[string]*Command {
	m := make(map[string]*Command)
	for _, sp := range append(append(commandSpecs(), clusterSpecs()...), replSpecs()...) {
		name := strings.ToLower(sp.name)
		if _, dup := m[name]; dup {
			panic("kv: duplicate command " + name)
		}
		cmd := &Command{
			Name: name, Arity: sp.arity, First: sp.first, Last: sp.last, Step: sp.step,
			Group: sp.group, Handler: sp.handler, KeysFn: sp.keysFn,
		}
		for _, f := range strings.Fields(sp.flags) {
			switch f {
			case "write":
				cmd.flags |= flagWrite
			case "readonly":
				cmd.flags |= flagReadonly
			case "no-auth":
				cmd.flags |= flagNoAuth
			case "noqueue":
				cmd.flags |= flagNoQueue
				continue
			case "selflock":
				cmd.flags |= flagSelfLock
				continue
			case "allshards":
				cmd.flags |= flagAllShards
				continue
			case "no-multi":
				cmd.flags |= flagNoMulti
			case "asking":
				cmd.flags |= flagAsking
			}
			cmd.Flags = append(cmd.Flags, f)
		}
		m[name] = cmd
	}
	return m
}

func commandSpecs() []cmdSpec {
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
		con = "connection"
		tx  = "transactions"
	)
	return []cmdSpec{
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
		{"unlink", -2, df, 1, -1, 1, gen, cmdDel, nil},
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
		{"flushall", -1, d + " allshards", 0, 0, 0, srv, cmdFlushAll, nil},
		{"flushdb", -1, d + " allshards", 0, 0, 0, srv, cmdFlushAll, nil},
		{"copy", -3, w, 1, 2, 1, gen, cmdCopy, nil},
		{"object", -2, r, 2, 2, 1, gen, cmdObject, nil},
		{"dump", 2, r, 1, 1, 1, gen, cmdDump, nil},
		{"restore", -4, w, 1, 1, 1, gen, cmdRestore, nil},
		{"restore-asking", -4, w + " asking", 1, 1, 1, gen, cmdRestore, nil},
		{"migrate", -6, d + " selflock no-multi", 3, 3, 1, gen, cmdMigrate, migrateKeys},
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
		{"lmpop", -4, d, 0, 0, 0, lst, cmdLMPop, numKeysAt(1)},
		{"blpop", -3, d + " blocking selflock", 1, -2, 1, lst, cmdBPop, nil},
		{"brpop", -3, d + " blocking selflock", 1, -2, 1, lst, cmdBPop, nil},
		{"blmove", 6, w + " blocking selflock", 1, 2, 1, lst, cmdBPop, nil},
		{"brpoplpush", 4, w + " blocking selflock", 1, 2, 1, lst, cmdBPop, nil},
		{"blmpop", -5, d + " blocking selflock", 0, 0, 0, lst, cmdBPop, numKeysAt(2)},
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
		{"sintercard", -3, r, 0, 0, 0, st, cmdSInterCard, numKeysAt(1)},
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
		// transactions
		{"multi", 1, "noscript loading stale fast allow-busy noqueue", 0, 0, 0, tx, cmdMulti, nil},
		{"exec", 1, "noscript loading stale skip-slowlog noqueue", 0, 0, 0, tx, cmdExec, nil},
		{"discard", 1, "noscript loading stale fast allow-busy noqueue", 0, 0, 0, tx, cmdDiscard, nil},
		{"watch", -2, "noscript loading stale fast allow-busy noqueue", 1, -1, 1, tx, cmdWatch, nil},
		{"unwatch", 1, "noscript loading stale fast allow-busy", 0, 0, 0, tx, cmdUnwatch, nil},
		// server and connection
		{"ping", -1, "fast", 0, 0, 0, con, cmdPing, nil},
		{"echo", 2, "fast", 0, 0, 0, con, cmdEcho, nil},
		{"auth", -2, "noscript loading stale fast no-auth allow-busy", 0, 0, 0, con, cmdAuth, nil},
		{"hello", -1, "noscript loading stale fast no-auth allow-busy", 0, 0, 0, con, cmdHello, nil},
		{"select", 2, "loading stale fast", 0, 0, 0, con, cmdSelect, nil},
		{"quit", -1, "noscript loading stale fast no-auth allow-busy noqueue", 0, 0, 0, con, cmdQuit, nil},
		{"reset", 1, "noscript loading stale fast no-auth allow-busy noqueue", 0, 0, 0, con, cmdReset, nil},
		{"client", -2, "noscript loading stale", 0, 0, 0, con, cmdClient, nil},
		{"info", -1, "loading stale", 0, 0, 0, srv, cmdInfo, nil},
		{"config", -2, "admin noscript loading stale", 0, 0, 0, srv, cmdConfig, nil},
		{"command", -1, "loading stale", 0, 0, 0, srv, cmdCommand, nil},
		{"time", 1, "loading stale fast", 0, 0, 0, srv, cmdTime, nil},
		{"save", 1, "admin noscript no-async-loading no-multi", 0, 0, 0, srv, cmdSave, nil},
		{"bgsave", -1, "admin noscript no-async-loading", 0, 0, 0, srv, cmdSave, nil},
		{"bgrewriteaof", 1, "admin noscript no-async-loading", 0, 0, 0, srv, cmdSave, nil},
		{"lastsave", 1, "loading stale fast", 0, 0, 0, srv, cmdLastSave, nil},
	}
}
