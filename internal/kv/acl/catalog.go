// Package acl is the Redis 7 access control of the data store: users with
// passwords, the commands, keys and channels each may use (rules parsed as
// ACL SETUSER and the ACL file take them), the check of every command, and
// the ACL log. It knows nothing of connections: the server (internal/kv)
// asks a User whether a command may run and answers the ACL command.
//
// A User is immutable: ACL SETUSER builds a new one and publishes it
// through the user's Handle, so a connection reads its permissions with
// one atomic load and the default all-permissive user costs a single
// boolean test per command.
package acl

import (
	"sort"
	"strings"
)

// The command categories of Redis 7, in the order ACL CAT lists them.
var categoryNames = []string{
	"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
	"bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast",
	"slow", "blocking", "dangerous", "connection", "transaction", "scripting",
}

// Categories returns the names of the categories (ACL CAT).
func Categories() []string { return append([]string(nil), categoryNames...) }

func categoryBit(name string) (uint32, bool) {
	for i, n := range categoryNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Key access a command needs on one key.
const (
	KeyRead  uint8 = 1 // reads the key's value (Redis's "access")
	KeyWrite uint8 = 2 // inserts, updates or deletes it
)

// CommandDesc describes a command of the server's table to the catalog.
type CommandDesc struct {
	Name  string
	Flags []string // COMMAND flags: write, readonly, admin, fast, blocking ...
	Group string   // COMMAND group: string, list, server, connection ...
}

// catalogEntry is a command or subcommand of Redis's table
// (catalog_gen.go) or one gantry adds (gantrySubcommands): its
// categories, the access of its key specs and its arity.
type catalogEntry struct {
	cats, keys string
	arity      int
	keyFlags   string // the key specs' flags, "|" between specs
}

// gantrySubcommands are the subcommands gantry serves that Redis 7.0
// does not have, with Redis 7.2's categories and arities where it has
// them: CLIENT SETINFO (which clients send on connecting), CLIENT
// NO-TOUCH, CLUSTER MYSHARDID and gantry's CLUSTER KEYRING.
var gantrySubcommands = map[string]catalogEntry{
	"client|setinfo":    {"slow connection", "", 4, ""},
	"client|no-touch":   {"slow connection", "", 3, ""},
	"cluster|myshardid": {"slow", "", 2, ""},
	"cluster|keyring":   {"admin slow dangerous", "", -3, ""},
}

// entry is the catalog entry of name, Redis's or gantry's.
func entry(name string) (catalogEntry, bool) {
	if e, ok := redisCommands[name]; ok {
		return e, true
	}
	e, ok := gantrySubcommands[name]
	return e, ok
}

// cmdInfo is one command or subcommand of the catalog.
type cmdInfo struct {
	id   int
	name string // "get", "client|kill"
	cats uint32
	keys []uint8 // access per key spec
	// flags of each key spec, as COMMAND INFO shows them ("RW access delete")
	keyFlags []string
	arity    int // of a subcommand, counting the container's name
	parent   int // id of the container, -1
	subs     map[string]int
}

// Catalog numbers the commands and subcommands the server serves, with
// their categories and key access, so that a selector is a bitmap.
type Catalog struct {
	cmds   []*cmdInfo
	byName map[string]*cmdInfo
}

// NewCatalog builds the catalog of the server's commands. Categories and
// key access come from Redis 7's command table (catalog_gen.go); a
// command Redis does not have gets categories from its flags and group,
// as Redis derives them.
func NewCatalog(descs []CommandDesc) *Catalog {
	cat := &Catalog{byName: make(map[string]*cmdInfo)}
	add := func(name string, cats uint32, keys string, parent int) *cmdInfo {
		ci := &cmdInfo{id: len(cat.cmds), name: name, cats: cats, parent: parent}
		if e, ok := entry(name); ok && e.keyFlags != "" {
			ci.keyFlags = strings.Split(e.keyFlags, "|")
		}
		for _, d := range keys {
			ci.keys = append(ci.keys, uint8(d-'0'))
		}
		cat.cmds = append(cat.cmds, ci)
		cat.byName[name] = ci
		return ci
	}
	sorted := append([]CommandDesc(nil), descs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, d := range sorted {
		name := strings.ToLower(d.Name)
		if _, dup := cat.byName[name]; dup {
			continue
		}
		var ci *cmdInfo
		if rc, ok := redisCommands[name]; ok {
			ci = add(name, parseCats(rc.cats), rc.keys, -1)
		} else {
			ci = add(name, derivedCats(d), "", -1)
		}
		for _, table := range []map[string]catalogEntry{redisCommands, gantrySubcommands} {
			for full := range table {
				if sub, ok := strings.CutPrefix(full, name+"|"); ok {
					if ci.subs == nil {
						ci.subs = make(map[string]int)
					}
					ci.subs[sub] = -1
				}
			}
		}
		// subcommands in a stable order, after their container
		subs := make([]string, 0, len(ci.subs))
		for sub := range ci.subs {
			subs = append(subs, sub)
		}
		sort.Strings(subs)
		for _, sub := range subs {
			rc, _ := entry(name + "|" + sub)
			sci := add(name+"|"+sub, parseCats(rc.cats), rc.keys, ci.id)
			sci.arity = rc.arity
			ci.subs[sub] = sci.id
		}
	}
	return cat
}

func parseCats(s string) uint32 {
	var m uint32
	for _, f := range strings.Fields(s) {
		if b, ok := categoryBit(f); ok {
			m |= b
		}
	}
	return m
}

// derivedCats gives a command Redis does not know the categories Redis
// derives from flags (write, read, admin and dangerous, fast or slow,
// blocking) and its group.
func derivedCats(d CommandDesc) uint32 {
	var m uint32
	fast := false
	for _, f := range d.Flags {
		switch f {
		case "write":
			m |= parseCats("write")
		case "readonly":
			m |= parseCats("read")
		case "admin":
			m |= parseCats("admin dangerous")
		case "fast":
			fast = true
		case "blocking":
			m |= parseCats("blocking")
		}
	}
	if fast {
		m |= parseCats("fast")
	} else {
		m |= parseCats("slow")
	}
	groups := map[string]string{
		"generic": "keyspace", "string": "string", "list": "list", "set": "set",
		"sorted_set": "sortedset", "hash": "hash", "bitmap": "bitmap",
		"hyperloglog": "hyperloglog", "geo": "geo", "stream": "stream",
		"pubsub": "pubsub", "transactions": "transaction", "connection": "connection",
		"scripting": "scripting", "cluster": "", "server": "",
	}
	m |= parseCats(groups[d.Group])
	return m
}

// Len is the number of commands and subcommands.
func (cat *Catalog) Len() int { return len(cat.cmds) }

// Command is a command or subcommand of the catalog, as resolved for one
// call: a small handle the server keeps per command.
type Command struct{ ci *cmdInfo }

// Valid reports whether the command is in the catalog.
func (c Command) Valid() bool { return c.ci != nil }

// Name is "get" or "client|kill".
func (c Command) Name() string {
	if c.ci == nil {
		return ""
	}
	return c.ci.name
}

// Lookup finds a command (lower case) and, for a container command, the
// subcommand named by args[1] when there is one.
func (cat *Catalog) Lookup(name string, args [][]byte) Command {
	ci := cat.byName[name]
	if ci == nil {
		return Command{}
	}
	if ci.subs != nil && len(args) > 1 {
		if id, ok := ci.subs[strings.ToLower(string(args[1]))]; ok {
			return Command{cat.cmds[id]}
		}
	}
	return Command{ci}
}

// Subcommand is a subcommand of a container command: its full name
// ("client|kill") and its arity, counting the container's name
// (negative: at least that many arguments).
type Subcommand struct {
	Name  string
	Arity int
}

// Subcommands returns the subcommands of the container command name
// (lower case) by their lower-case names, nil for a command that has
// none: Redis's (catalog_gen.go) and gantry's (gantrySubcommands). The
// server refuses any other subcommand, and a call of one of these with a
// wrong number of arguments, before the command runs, as Redis does.
func (cat *Catalog) Subcommands(name string) map[string]Subcommand {
	ci := cat.byName[name]
	if ci == nil || ci.subs == nil {
		return nil
	}
	out := make(map[string]Subcommand, len(ci.subs))
	for sub, id := range ci.subs {
		sci := cat.cmds[id]
		out[sub] = Subcommand{Name: sci.name, Arity: sci.arity}
	}
	return out
}

// KeyAccess says what a command does to its key number i of n (as the
// server extracted them): by Redis's key specs, the first key follows the
// first spec and key i the spec i (the last one for the keys after it),
// which places the destination and sources of COPY, LMOVE, SINTERSTORE,
// ZUNIONSTORE, BITOP and SORT ... STORE. SET and BITFIELD read their key
// only with GET.
func (c Command) KeyAccess(args [][]byte, i int) uint8 {
	ci := c.ci
	switch ci.name {
	case "set":
		for _, a := range args[3:] {
			if strings.EqualFold(string(a), "get") {
				return KeyRead | KeyWrite
			}
		}
		return KeyWrite
	case "bitfield":
		for j := 2; j < len(args); j++ {
			switch strings.ToLower(string(args[j])) {
			case "set", "incrby":
				return KeyRead | KeyWrite
			}
		}
		return KeyRead
	}
	if len(ci.keys) == 0 {
		return KeyRead | KeyWrite // a command gantry adds: the safe side
	}
	return ci.keys[min(i, len(ci.keys)-1)]
}

// KeyFlags are the flags COMMAND GETKEYSANDFLAGS shows for the command's
// key number i (as the server extracted them), placed on the key specs as
// KeyAccess does (SORT's second key is its STORE destination, the last
// spec); SET and BITFIELD's follow their arguments as Redis's. ok is
// false for a key that is not one (a spec flagged not_key: SPUBLISH's
// channel). A command of gantry's own has none.
func (c Command) KeyFlags(args [][]byte, i int) (flags []string, ok bool) {
	ci := c.ci
	if ci == nil || len(ci.keyFlags) == 0 {
		return nil, true
	}
	switch ci.name {
	case "set", "bitfield":
		switch c.KeyAccess(args, i) {
		case KeyRead:
			return []string{"RO", "access"}, true
		case KeyWrite:
			return []string{"OW", "update"}, true
		}
		return []string{"RW", "access", "update"}, true
	case "sort":
		if i > 0 {
			i = len(ci.keyFlags) - 1
		}
	}
	for _, f := range strings.Fields(ci.keyFlags[min(i, len(ci.keyFlags)-1)]) {
		switch f {
		case "not_key":
			return nil, false
		case "incomplete", "variable_flags": // resolved by the command's arguments
		default:
			flags = append(flags, f)
		}
	}
	return flags, true
}

// Names lists the commands and subcommands (COMMAND LIST FILTERBY).
func (cat *Catalog) Names() []string {
	out := make([]string, len(cat.cmds))
	for i, ci := range cat.cmds {
		out[i] = ci.name
	}
	return out
}

// InCategory lists the commands and subcommands of a category (ACL CAT).
func (cat *Catalog) InCategory(name string) ([]string, bool) {
	bit, ok := categoryBit(name)
	if !ok {
		return nil, false
	}
	var out []string
	for _, ci := range cat.cmds {
		if ci.cats&bit != 0 {
			out = append(out, ci.name)
		}
	}
	return out, true
}

// subsSorted returns the subcommands of a container in name order (they
// follow it in the catalog).
func (cat *Catalog) subsSorted(ci *cmdInfo) []*cmdInfo {
	if len(ci.subs) == 0 {
		return nil
	}
	return cat.cmds[ci.id+1 : ci.id+1+len(ci.subs)]
}
