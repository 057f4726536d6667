package kv

import (
	"sort"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

// commandInfoEntry is what COMMAND INFO shows of a command or subcommand
// besides its name, ACL categories and subcommands (cmdinfo_gen.go has
// Redis 7.0's, gantrySubcommandInfo gantry's own).
type commandInfoEntry struct {
	arity             int
	flags             string // space separated, as Redis prints them
	first, last, step int
	tips              string // space separated
	specs             []keySpec
}

// keySpec is one of Redis's key specs: its flags and notes, where the
// search for its keys begins (an index or, from an index, a keyword) and
// how its keys are found from there (a range: lastkey, keystep, limit; a
// count argument: keynumidx, firstkey, keystep).
type keySpec struct {
	flags, notes string
	begin        string // beginIndex, beginKeyword, beginUnknown
	beginArg     int    // the index, or the keyword's startfrom
	keyword      string
	find         string // findRange, findKeynum, findUnknown
	findArgs     [3]int
}

const (
	beginIndex   = "index"
	beginKeyword = "keyword"
	beginUnknown = "unknown"
	findRange    = "range"
	findKeynum   = "keynum"
	findUnknown  = "unknown"
)

// gantrySubcommandInfo is the COMMAND INFO of the subcommands gantry
// serves that Redis 7.0 lacks (their categories are the ACL catalog's):
// CLIENT SETINFO, CLIENT NO-TOUCH and CLUSTER MYSHARDID as Redis 7.2
// shows them, gantry's CLUSTER KEYRING as CLUSTER's other administrative
// subcommands.
var gantrySubcommandInfo = map[string]commandInfoEntry{
	"client|setinfo":    {arity: 4, flags: "noscript loading stale"},
	"client|no-touch":   {arity: 3, flags: "noscript loading stale"},
	"cluster|myshardid": {arity: 2, flags: "loading stale", tips: "nondeterministic_output"},
	"cluster|keyring":   {arity: -3, flags: "admin noscript stale"},
}

// infoEntry is the COMMAND INFO entry of name ("get", "client|kill"):
// Redis's, or gantry's for a subcommand Redis lacks, or, for a command
// Redis lacks, one made from cmd's spec (flags, one range key spec).
func infoEntry(name string, cmd *command.Command) commandInfoEntry {
	if e, ok := redisCommandInfo[name]; ok {
		return e
	}
	if e, ok := gantrySubcommandInfo[name]; ok {
		return e
	}
	e := commandInfoEntry{arity: cmd.Arity, first: cmd.First, last: cmd.Last, step: cmd.Step}
	flags := make([]string, len(cmd.Flags))
	for i, f := range cmd.Flags {
		flags[i] = strings.ReplaceAll(f, "-", "_")
	}
	e.flags = strings.Join(flags, " ")
	if cmd.First > 0 {
		last := cmd.Last
		if last >= 0 {
			last -= cmd.First
		}
		access := "RO access"
		if cmd.Has(command.Write) {
			access = "RW update"
		}
		e.specs = []keySpec{{flags: access, begin: beginIndex, beginArg: cmd.First,
			find: findRange, findArgs: [3]int{last, cmd.Step, 0}}}
	}
	return e
}

// commandCats maps every command and subcommand of the ACL catalog to its
// categories, in Redis's order (ACL CAT's): COMMAND INFO shows the
// categories the ACL checks use.
func (s *Server) commandCats() map[string][]string {
	cats := make(map[string][]string)
	catalog := s.users.Catalog()
	for _, cat := range acl.Categories() {
		names, _ := catalog.InCategory(cat)
		for _, n := range names {
			cats[n] = append(cats[n], cat)
		}
	}
	return cats
}

// commandInfo writes the COMMAND INFO of cmd, as Redis 7.0: name, arity,
// flags, first, last and step key positions, ACL categories, tips, key
// specs and subcommands (each with the same ten fields).
func (c *Client) commandInfo(cmd *command.Command, cats map[string][]string) {
	c.writeInfo(cmd.Name, infoEntry(cmd.Name, cmd), cats)
	subs := c.srv.users.Catalog().Subcommands(cmd.Name)
	if len(subs) == 0 {
		c.W.Set(0)
		return
	}
	names := make([]string, 0, len(subs))
	for _, sub := range subs {
		names = append(names, sub.Name)
	}
	sort.Strings(names)
	c.W.Array(len(names))
	for _, n := range names {
		c.writeInfo(n, infoEntry(n, cmd), cats)
		c.W.Set(0)
	}
}

// writeInfo writes the first nine fields of a COMMAND INFO entry (the
// caller writes the subcommands).
func (c *Client) writeInfo(name string, e commandInfoEntry, cats map[string][]string) {
	w := &c.W
	w.Array(10)
	w.BulkString(name)
	w.Int(int64(e.arity))
	writeWords(w.Set, w.Simple, e.flags)
	w.Int(int64(e.first))
	w.Int(int64(e.last))
	w.Int(int64(e.step))
	w.Set(len(cats[name]))
	for _, cat := range cats[name] {
		w.Simple("@" + cat)
	}
	writeWords(w.Set, w.BulkString, e.tips)
	w.Set(len(e.specs))
	for _, ks := range e.specs {
		n := 3
		if ks.notes != "" {
			n++
		}
		w.Map(n)
		if ks.notes != "" {
			w.BulkString("notes")
			w.BulkString(ks.notes)
		}
		w.BulkString("flags")
		writeWords(w.Set, w.Simple, ks.flags)
		w.BulkString("begin_search")
		w.Map(2)
		w.BulkString("type")
		w.BulkString(ks.begin)
		w.BulkString("spec")
		switch ks.begin {
		case beginIndex:
			w.Map(1)
			w.BulkString("index")
			w.Int(int64(ks.beginArg))
		case beginKeyword:
			w.Map(2)
			w.BulkString("keyword")
			w.BulkString(ks.keyword)
			w.BulkString("startfrom")
			w.Int(int64(ks.beginArg))
		default:
			w.Map(0)
		}
		w.BulkString("find_keys")
		w.Map(2)
		w.BulkString("type")
		w.BulkString(ks.find)
		w.BulkString("spec")
		var keys [3]string
		switch ks.find {
		case findRange:
			keys = [3]string{"lastkey", "keystep", "limit"}
		case findKeynum:
			keys = [3]string{"keynumidx", "firstkey", "keystep"}
		default:
			w.Map(0)
			continue
		}
		w.Map(3)
		for i, k := range keys {
			w.BulkString(k)
			w.Int(int64(ks.findArgs[i]))
		}
	}
}

// lookupSub finds the subcommand "container|sub" name names, as Redis's
// COMMAND INFO does: its container and its full lower-case name, nil if
// there is none.
func (s *Server) lookupSub(name []byte) (*command.Command, string) {
	parent, sub, ok := strings.Cut(strings.ToLower(string(name)), "|")
	if !ok {
		return nil, ""
	}
	cmd := s.cmds.Lookup([]byte(parent))
	if cmd == nil {
		return nil, ""
	}
	if _, ok := s.users.Catalog().Subcommands(cmd.Name)[sub]; !ok {
		return nil, ""
	}
	return cmd, cmd.Name + "|" + sub
}

// writeWords writes the space-separated words of s as a collection of
// head's kind, each with word.
func writeWords(head func(int), word func(string), s string) {
	words := strings.Fields(s)
	head(len(words))
	for _, x := range words {
		word(x)
	}
}

func (s *Server) sortedCommands() []*command.Command { return s.cmds.Sorted() }

// COMMAND [COUNT | INFO name... | DOCS name... | LIST [FILTERBY ...] |
// GETKEYS cmd args... | GETKEYSANDFLAGS cmd args... | HELP]
func cmdCommand(c *Client) {
	s := c.srv
	if len(c.Args) == 1 {
		cmds := s.sortedCommands()
		cats := s.commandCats()
		c.W.Array(len(cmds))
		for _, cmd := range cmds {
			c.commandInfo(cmd, cats)
		}
		return
	}
	sub := string(command.LowerInto(nil, c.Args[1]))
	switch sub {
	case "count":
		c.W.Int(int64(s.cmds.Len()))
	case "list":
		if len(c.Args) == 2 { // commands and subcommands, as Redis 7.0
			names := s.users.Catalog().Names()
			c.W.Array(len(names))
			for _, n := range names {
				c.W.BulkString(n)
			}
			return
		}
		names, ok := s.commandListFilter(c.Args[2:])
		if !ok {
			c.W.Error("ERR syntax error")
			return
		}
		c.W.Array(len(names))
		for _, n := range names {
			c.W.BulkString(n)
		}
	case "info":
		names := c.Args[2:]
		cats := s.commandCats()
		if len(names) == 0 {
			cmds := s.sortedCommands()
			c.W.Array(len(cmds))
			for _, cmd := range cmds {
				c.commandInfo(cmd, cats)
			}
			return
		}
		c.W.Array(len(names))
		for _, n := range names {
			if cmd := s.cmds.Lookup(n); cmd != nil {
				c.commandInfo(cmd, cats)
			} else if cmd, sub := s.lookupSub(n); cmd != nil {
				c.writeInfo(sub, infoEntry(sub, cmd), cats)
				c.W.Set(0)
			} else {
				c.W.NullArray()
			}
		}
	case "docs":
		type doc struct {
			name string
			cmd  *command.Command
		}
		var docs []doc
		if len(c.Args) == 2 {
			for _, cmd := range s.sortedCommands() {
				docs = append(docs, doc{cmd.Name, cmd})
			}
		} else {
			for _, n := range c.Args[2:] {
				if cmd := s.cmds.Lookup(n); cmd != nil {
					docs = append(docs, doc{cmd.Name, cmd})
				} else if cmd, sub := s.lookupSub(n); cmd != nil {
					docs = append(docs, doc{sub, cmd})
				}
			}
		}
		c.W.Map(len(docs))
		for _, d := range docs {
			c.W.BulkString(d.name)
			c.commandDocs(d.name, d.cmd)
		}
	case "getkeys", "getkeysandflags":
		if len(c.Args) < 3 {
			c.W.Error("ERR wrong number of arguments for 'command|" + sub + "' command")
			return
		}
		args := c.Args[2:]
		cmd := s.cmds.Lookup(args[0])
		if cmd == nil {
			c.W.Error("ERR Invalid command specified")
			return
		}
		ac := s.users.Catalog().Lookup(cmd.Name, args)
		if !commandHasKeys(cmd, ac, args) {
			c.W.Error("ERR The command has no key arguments")
			return
		}
		if !cmd.ArityOK(len(args)) {
			c.W.Error("ERR Invalid number of arguments specified for command")
			return
		}
		keys, noFlags := commandGetKeys(cmd, args)
		if len(keys) == 0 {
			if noMandatoryKeys(cmd) { // EVAL s 0
				c.W.Array(0)
			} else {
				c.W.Error("ERR Invalid arguments specified for command")
			}
			return
		}
		if sub == "getkeysandflags" {
			c.keysAndFlags(ac, args, keys, noFlags)
			return
		}
		c.W.Array(len(keys))
		for _, k := range keys {
			c.W.Bulk(k)
		}
	case "help":
		writeHelp(c, "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all Redis commands.",
			"COUNT", "    Return the total number of commands in this Redis server.",
			"LIST", "    Return a list of all commands in this Redis server.",
			"INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
			"    If no command names are given, documentation details for all", "    commands are returned.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple Redis commands.",
			"    If no command names are given, documentation details for all", "    commands are returned.",
			"GETKEYS <full-command>", "    Return the keys from a full Redis command.",
			"GETKEYSANDFLAGS <full-command>", "    Return the keys and the access flags from a full Redis command.",
			"HELP", "    Prints this help.")
	default:
		c.W.Error("ERR unknown subcommand '" + string(c.Args[1]) + "'. Try COMMAND HELP.")
	}
}

// keysAndFlags answers COMMAND GETKEYSANDFLAGS: each key of the call args
// of ac with the flags of its key spec (Redis's RO/RW/OW/RM and
// access/update/insert/delete), or none when noFlags (keys found by a
// getkeys function of Redis's that gives none).
func (c *Client) keysAndFlags(ac acl.Command, args, keys [][]byte, noFlags bool) {
	c.W.Array(len(keys))
	for i, k := range keys {
		var flags []string
		if !noFlags {
			flags, _ = ac.KeyFlags(args, i)
		}
		c.W.Array(2)
		c.W.Bulk(k)
		c.W.Array(len(flags))
		for _, f := range flags {
			c.W.Simple(f)
		}
	}
}

// commandHasKeys is Redis's doesCommandHaveKeys of the command or, for a
// container, of the subcommand args name: a key spec that is a key
// (SPUBLISH's channel is not; MEMORY STATS has none).
func commandHasKeys(cmd *command.Command, ac acl.Command, args [][]byte) bool {
	if cmd.First == 0 && cmd.KeysFn == nil {
		return false
	}
	if !ac.Valid() || ac.Name() == "set" || ac.Name() == "bitfield" { // these two read args
		return true
	}
	flags, isKey := ac.KeyFlags(args, 0)
	return isKey && (len(flags) > 0 || !strings.Contains(ac.Name(), "|"))
}

// commandGetKeys is the keys COMMAND GETKEYS finds in args, as Redis's
// (getkeys.go); noFlags when Redis's getkeys function found them, which
// gives no flags.
func commandGetKeys(cmd *command.Command, args [][]byte) (keys [][]byte, noFlags bool) {
	fn := redisGetKeysSpecs[cmd.Name]
	if fn == nil {
		return cmd.GetKeys(args, nil), false
	}
	pos, noFlags := fn(args)
	keys = make([][]byte, len(pos))
	for i, p := range pos {
		keys[i] = args[p]
	}
	return keys, noFlags
}

// commandListFilter is COMMAND LIST FILTERBY MODULE name | ACLCAT category
// | PATTERN pattern: the commands and subcommands that pass (none is a
// module's: gantry loads none), ok false for any other arguments, Redis's
// syntax error.
func (s *Server) commandListFilter(args [][]byte) (names []string, ok bool) {
	if len(args) != 3 || !command.EqualFold(args[0], "filterby") {
		return nil, false
	}
	cat := s.users.Catalog()
	switch arg := strings.ToLower(string(args[2])); {
	case command.EqualFold(args[1], "module"):
		return nil, true
	case command.EqualFold(args[1], "aclcat"):
		names, _ = cat.InCategory(arg)
		return names, true
	case command.EqualFold(args[1], "pattern"):
		for _, n := range cat.Names() {
			if command.GlobMatch([]byte(arg), []byte(n)) {
				names = append(names, n)
			}
		}
		return names, true
	}
	return nil, false
}

// noMandatoryKeys reports whether cmd may be called with no keys (EVAL,
// FCALL ...): COMMAND GETKEYS answers it an empty array, as Redis.
func noMandatoryKeys(cmd *command.Command) bool {
	for _, f := range cmd.Flags {
		if f == "no_mandatory_keys" || f == "no-mandatory-keys" {
			return true
		}
	}
	return false
}

func summary(name, group string) string {
	return "The " + name + " command (" + group + "), as Redis documents it."
}

// commandDocsEntry is the COMMAND DOCS of a command or subcommand: the
// fields Redis 7.0 gives, in its order, and their facts (cmddocs_gen.go).
// The prose is gantry's own: the summary (summary), the complexity and
// the history's texts.
type commandDocsEntry struct {
	fields                      string // "summary since group complexity arguments"
	since, group                string
	docFlags                    string
	deprecatedSince, replacedBy string
	history                     string // the versions of its history entries
	args                        string // its arguments as RESP3
}

// gantrySubcommandDocs is the COMMAND DOCS of the subcommands Redis 7.0
// lacks: Redis 7.2's CLIENT SETINFO, CLIENT NO-TOUCH and CLUSTER
// MYSHARDID, gantry's CLUSTER KEYRING (no arguments listed).
var gantrySubcommandDocs = map[string]commandDocsEntry{
	"client|setinfo":    {fields: "summary since group complexity", since: "7.2.0", group: "connection"},
	"client|no-touch":   {fields: "summary since group complexity", since: "7.2.0", group: "connection"},
	"cluster|myshardid": {fields: "summary since group complexity", since: "7.2.0", group: "cluster"},
	"cluster|keyring":   {fields: "summary since group complexity", since: "7.0.0", group: "cluster"},
}

// commandDocs writes the COMMAND DOCS map of name (a command or a
// subcommand of cmd), in Redis 7.0's shape, subcommands included.
func (c *Client) commandDocs(name string, cmd *command.Command) {
	e, ok := redisCommandDocs[name]
	if !ok {
		e, ok = gantrySubcommandDocs[name]
	}
	if !ok { // a command Redis lacks
		e = commandDocsEntry{fields: "summary since group complexity", since: "7.0.0", group: cmd.Group}
	}
	var subs []string
	if !strings.Contains(name, "|") {
		for _, sub := range c.srv.users.Catalog().Subcommands(name) {
			subs = append(subs, sub.Name)
		}
		sort.Strings(subs)
	}
	fields := strings.Fields(e.fields)
	n := len(fields)
	if len(subs) > 0 {
		n++
	}
	w := &c.W
	w.Map(n)
	for _, f := range fields {
		w.BulkString(f)
		switch f {
		case "summary":
			w.BulkString(summary(name, e.group))
		case "since":
			w.BulkString(e.since)
		case "group":
			w.BulkString(e.group)
		case "complexity":
			w.BulkString("See Redis's documentation of " + strings.ToUpper(strings.ReplaceAll(name, "|", " ")) + ".")
		case "doc_flags":
			writeWords(w.Set, w.Simple, e.docFlags)
		case "deprecated_since":
			w.BulkString(e.deprecatedSince)
		case "replaced_by":
			w.BulkString(e.replacedBy)
		case "history":
			versions := strings.Fields(e.history)
			w.Set(len(versions))
			for _, v := range versions {
				w.Array(2)
				w.BulkString(v)
				w.BulkString("Changed in Redis " + v + ".")
			}
		case "arguments":
			writeRESP3(w, e.args)
		}
	}
	if len(subs) > 0 {
		w.BulkString("subcommands")
		w.Map(len(subs))
		for _, sub := range subs {
			w.BulkString(sub)
			c.commandDocs(sub, cmd)
		}
	}
}

// writeRESP3 writes the RESP3 reply s (aggregates, bulk and simple
// strings, integers: the generated tables' arguments) in the client's
// protocol, and returns what follows it in s.
func writeRESP3(w *resp.Writer, s string) string {
	line, rest, _ := strings.Cut(s, "\r\n")
	if line == "" {
		return rest
	}
	n, _ := strconv.Atoi(line[1:])
	switch line[0] {
	case '+':
		w.Simple(line[1:])
	case ':':
		w.Int(int64(n))
	case '$':
		w.BulkString(rest[:n])
		rest = rest[n+2:]
	case '*', '~', '%':
		switch line[0] {
		case '*':
			w.Array(n)
		case '~':
			w.Set(n)
		default:
			w.Map(n)
			n *= 2
		}
		for range n {
			rest = writeRESP3(w, rest)
		}
	}
	return rest
}
