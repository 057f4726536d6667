package kv

import (
	"strconv"
	"strings"
)

// Keyspace notifications (notify-keyspace-events): after a command that
// changed keys commits, the server publishes the command's event on
// __keyspace@0__:<key> (K) and the key on __keyevent@0__:<event> (E), for
// the classes the setting enables. The event of a command is its name
// unless notifyEvents names another (Redis's names: HMSET is "hset", INCR
// "incrby"); see docs/kv.md for where the events differ from Redis's.

// notify-keyspace-events flags, as Redis's NOTIFY_* bits.
const (
	notifyKeyspace uint32 = 1 << iota // K
	notifyKeyevent                    // E
	notifyGeneric                     // g
	notifyString                      // $
	notifyList                        // l
	notifySet                         // s
	notifyHash                        // h
	notifyZset                        // z
	notifyExpired                     // x
	notifyEvicted                     // e
	notifyStream                      // t
	notifyKeyMiss                     // m
	notifyModule                      // d
	notifyNew                         // n

	notifyAll = notifyGeneric | notifyString | notifyList | notifySet | notifyHash |
		notifyZset | notifyExpired | notifyEvicted | notifyStream | notifyModule
)

var notifyChars = []struct {
	c    byte
	flag uint32
}{
	{'g', notifyGeneric}, {'$', notifyString}, {'l', notifyList}, {'s', notifySet},
	{'h', notifyHash}, {'z', notifyZset}, {'x', notifyExpired}, {'e', notifyEvicted},
	{'t', notifyStream}, {'d', notifyModule}, {'n', notifyNew},
}

// parseNotify parses notify-keyspace-events; false for an unknown flag.
func parseNotify(s string) (uint32, bool) {
	var f uint32
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'A':
			f |= notifyAll
		case 'K':
			f |= notifyKeyspace
		case 'E':
			f |= notifyKeyevent
		case 'm':
			f |= notifyKeyMiss
		default:
			ok := false
			for _, nc := range notifyChars {
				if nc.c == s[i] {
					f |= nc.flag
					ok = true
				}
			}
			if !ok {
				return 0, false
			}
		}
	}
	return f, true
}

// formatNotify is CONFIG GET's spelling, as Redis's
// keyspaceEventsFlagsToString.
func formatNotify(f uint32) string {
	var b strings.Builder
	if f&notifyAll == notifyAll {
		b.WriteByte('A')
	} else {
		for _, nc := range notifyChars {
			if nc.flag != notifyNew && f&nc.flag != 0 {
				b.WriteByte(nc.c)
			}
		}
	}
	if f&notifyAll == notifyAll && f&notifyNew != 0 {
		b.WriteByte('n')
	}
	if f&notifyKeyspace != 0 {
		b.WriteByte('K')
	}
	if f&notifyKeyevent != 0 {
		b.WriteByte('E')
	}
	if f&notifyKeyMiss != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// notifyEvent is the event a write command raises and on which of its keys.
type notifyEvent struct {
	event  string
	class  uint32
	keys   int8 // 0: the first key; 1: every key; 2: first key event, second key event2
	event2 string
}

// notifyEvents names the events that are not the command's own name.
var notifyEvents = map[string]notifyEvent{
	"set": {event: "set", class: notifyString}, "setnx": {event: "set", class: notifyString},
	"setex": {event: "set", class: notifyString}, "psetex": {event: "set", class: notifyString},
	"getset": {event: "set", class: notifyString}, "mset": {event: "set", class: notifyString, keys: 1},
	"msetnx": {event: "set", class: notifyString, keys: 1},
	"incr":   {event: "incrby", class: notifyString}, "decr": {event: "decrby", class: notifyString},
	"getdel": {event: "del", class: notifyGeneric}, "getex": {event: "expire", class: notifyGeneric},
	"del": {event: "del", class: notifyGeneric, keys: 1}, "unlink": {event: "del", class: notifyGeneric, keys: 1},
	"pexpire": {event: "expire", class: notifyGeneric}, "expireat": {event: "expire", class: notifyGeneric},
	"pexpireat": {event: "expire", class: notifyGeneric},
	"rename":    {event: "rename_from", event2: "rename_to", class: notifyGeneric, keys: 2},
	"renamenx":  {event: "rename_from", event2: "rename_to", class: notifyGeneric, keys: 2},
	"copy":      {event: "copy_to", class: notifyGeneric}, "restore-asking": {event: "restore", class: notifyGeneric},
	"lpushx": {event: "lpush", class: notifyList}, "rpushx": {event: "rpush", class: notifyList},
	"rpoplpush": {event: "rpop", event2: "lpush", class: notifyList, keys: 2},
	"smove":     {event: "srem", event2: "sadd", class: notifySet, keys: 2},
	"hmset":     {event: "hset", class: notifyHash}, "hsetnx": {event: "hset", class: notifyHash},
	"zincrby":        {event: "zincr", class: notifyZset},
	"zremrangebylex": {event: "zremrangebylex", class: notifyZset},
	// no event of their own (a consumer they create raises one)
	"flushall": {}, "flushdb": {}, "publish": {}, "spublish": {},
	"xreadgroup": {}, "xclaim": {}, "xautoclaim": {}, "xack": {},
}

// classOf maps a notify-keyspace-events class character to its flag.
func classOf(c byte) uint32 {
	for _, nc := range notifyChars {
		if nc.c == c {
			return nc.flag
		}
	}
	return notifyGeneric
}

// groupClass maps a command's group to its notification class.
func groupClass(group string) uint32 {
	switch group {
	case "string":
		return notifyString
	case "list":
		return notifyList
	case "set":
		return notifySet
	case "hash":
		return notifyHash
	case "sorted-set":
		return notifyZset
	case "stream":
		return notifyStream
	}
	return notifyGeneric
}

// notifyCommand publishes the events of the command c just committed:
// those its handler raised, or else the default of its name.
func (s *Server) notifyCommand(c *Client, flags uint32) {
	if evs, own := c.Events(); own {
		for _, ev := range evs {
			s.notifyKeyDB(ev.DB, flags, classOf(ev.Class), ev.Name, ev.Key)
		}
		return
	}
	db := c.DB
	cmd := c.Cmd
	if cmd == nil || len(c.Keys) == 0 {
		return
	}
	ev, ok := notifyEvents[cmd.Name]
	if !ok {
		ev = notifyEvent{event: cmd.Name, class: groupClass(cmd.Group)}
		switch {
		case cmd.Name == "lmove" && len(c.Args) == 5:
			ev = notifyEvent{event: strings.ToLower(string(c.Args[3])) + "pop", event2: strings.ToLower(string(c.Args[4])) + "push", class: notifyList, keys: 2}
		case (cmd.Name == "xgroup") && len(c.Args) > 1:
			ev.event = "xgroup-" + strings.ToLower(string(c.Args[1]))
		}
	}
	if ev.event == "" {
		return
	}
	switch ev.keys {
	case 1:
		for _, k := range c.Keys {
			s.notifyKeyDB(db, flags, ev.class, ev.event, k)
		}
	case 2:
		s.notifyKeyDB(db, flags, ev.class, ev.event, c.Keys[0])
		if len(c.Keys) > 1 {
			s.notifyKeyDB(db, flags, ev.class, ev.event2, c.Keys[1])
		}
	default:
		s.notifyKeyDB(db, flags, ev.class, ev.event, c.Keys[0])
		if cmd.Name == "setex" || cmd.Name == "psetex" {
			s.notifyKeyDB(db, flags, notifyGeneric, "expire", c.Keys[0])
		}
	}
	if flags&notifyNew != 0 {
		for _, k := range c.newKeys {
			s.notifyKeyDB(db, flags, notifyNew, "new", k)
		}
	}
}

// notifyKeyDB publishes one event of class on a key of database db
// (__keyspace@<db>__:<key>, __keyevent@<db>__:<event>), if enabled.
func (s *Server) notifyKeyDB(db int, flags, class uint32, event string, key []byte) {
	if flags&class == 0 {
		return
	}
	if flags&notifyKeyspace != 0 {
		ch := make([]byte, 0, 20+len(key))
		ch = append(ch, "__keyspace@"...)
		ch = strconv.AppendInt(ch, int64(db), 10)
		ch = append(append(ch, "__:"...), key...)
		s.publish(psChannel, ch, []byte(event))
	}
	if flags&notifyKeyevent != 0 {
		s.publish(psChannel, []byte("__keyevent@"+strconv.Itoa(db)+"__:"+event), key)
	}
}

// noteNewKeys records, before a write runs, which of its keys do not
// exist (for the "new" event); the shards are locked.
func (c *Client) noteNewKeys() {
	c.newKeys = c.newKeys[:0]
	for _, k := range c.Keys {
		if c.KS.LookupLocked(k, c.Now) == nil {
			c.newKeys = append(c.newKeys, k)
		}
	}
}

// afterWrite runs with the shards still locked, after a write committed.
func (c *Client) afterWrite() {
	s := c.srv
	flags := s.ps.notify.Load()
	if flags&(notifyKeyspace|notifyKeyevent) == 0 {
		return
	}
	if flags&notifyNew != 0 {
		kept := c.newKeys[:0]
		for _, k := range c.newKeys {
			if c.KS.LookupLocked(k, c.Now) != nil {
				kept = append(kept, k)
			}
		}
		c.newKeys = kept
	}
	s.notifyCommand(c, flags)
	c.newKeys = c.newKeys[:0]
}

// expired is the keyspace's hook for expired keys (shard locked).
func (s *Server) expired(db int, key []byte) {
	s.repl.Expired(db, key)
	if s.ct.n.Load() > 0 {
		s.invalidate(key, nil)
	}
	if f := s.ps.notify.Load(); f&(notifyKeyspace|notifyKeyevent) != 0 {
		s.notifyKeyDB(db, f, notifyExpired, "expired", key)
	}
}

// evictedNotify is the keyspace's hook for evicted keys (shard locked).
func (s *Server) evictedNotify(db int, key []byte) {
	s.evicted(db, key)
	if f := s.ps.notify.Load(); f&(notifyKeyspace|notifyKeyevent) != 0 {
		s.notifyKeyDB(db, f, notifyEvicted, "evicted", key)
	}
}

// notifyConfig is the notify-keyspace-events parameter.
func notifyConfig() configParam {
	return configParam{
		get: func(s *Server) string { return formatNotify(s.ps.notify.Load()) },
		set: func(s *Server, v string) string {
			f, ok := parseNotify(v)
			if !ok {
				return "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
			}
			s.ps.notify.Store(f)
			return ""
		},
	}
}
