package acl

import (
	"slices"
	"strings"
)

// redisError is an error worded as Redis words it, capitals and all:
// clients and tests match the text.
type redisError string

func (e redisError) Error() string { return string(e) }

// Errors of ACL rules, worded as Redis words them (after "Error in ACL
// SETUSER modifier '<rule>': ").
const (
	errSyntax         = redisError("Syntax error")
	errUnknownCommand = redisError("Unknown command or category name in ACL")
	errKeyAfterAll    = redisError("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
	errChanAfterAll   = redisError("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")
	errFirstArgSub    = redisError("Allowing first-arg of a subcommand is not supported")
	errFirstArgBad    = redisError("First-arg can't be used to block commands")
)

// Limits on what ACL SETUSER can grow, so that a client cannot make the
// server hold unbounded rules (Redis has none).
const (
	MaxUsers     = 10000
	MaxPatterns  = 1024 // key or channel patterns of one selector
	MaxSelectors = 64   // added selectors of one user
	MaxPasswords = 64
	MaxFirstArgs = 64 // first arguments of one command (+select|0)
)

const errTooMany = redisError("Too many patterns, passwords, selectors or first arguments for one user")

// keyPattern is a ~pattern with the access it grants (%R~, %W~, %RW~).
type keyPattern struct {
	pattern string
	flags   uint8
}

// Selector is one set of permissions: commands, keys, channels. A user
// has a root selector and may have more ("(...)" rules); a command runs
// when one of them allows it wholly.
type Selector struct {
	cat *Catalog
	// allowed has a bit per command id of the catalog.
	allowed []uint64
	// allCommands: +@all was the last word on commands, so commands the
	// catalog gains later are allowed too (Redis's ALLCOMMANDS).
	allCommands bool
	// firstArgs are the first arguments allowed for a command whose bit is
	// clear (+select|0).
	firstArgs   map[int][]string
	keys        []keyPattern
	allKeys     bool
	channels    []string
	allChannels bool
}

func newSelector(cat *Catalog) *Selector {
	return &Selector{cat: cat, allowed: make([]uint64, (cat.Len()+63)/64)}
}

func (s *Selector) clone() *Selector {
	n := *s
	n.allowed = slices.Clone(s.allowed)
	n.keys = slices.Clone(s.keys)
	n.channels = slices.Clone(s.channels)
	if s.firstArgs != nil {
		n.firstArgs = make(map[int][]string, len(s.firstArgs))
		for k, v := range s.firstArgs {
			n.firstArgs[k] = slices.Clone(v)
		}
	}
	return &n
}

func (s *Selector) bit(id int) bool { return s.allowed[id/64]&(1<<(id%64)) != 0 }

func (s *Selector) setBit(id int, on bool) {
	if on {
		s.allowed[id/64] |= 1 << (id % 64)
	} else {
		s.allowed[id/64] &^= 1 << (id % 64)
	}
	delete(s.firstArgs, id)
}

// setCommand allows or denies a command and its subcommands.
func (s *Selector) setCommand(ci *cmdInfo, on bool) {
	s.setBit(ci.id, on)
	for _, id := range ci.subs {
		s.setBit(id, on)
	}
}

// full reports whether every command of the catalog is allowed.
func (s *Selector) full() bool {
	if !s.allCommands {
		return false
	}
	n := s.cat.Len()
	for i := 0; i < n; i++ {
		if !s.bit(i) {
			return false
		}
	}
	return true
}

// apply applies one rule that is not a user flag.
func (s *Selector) apply(rule string) error {
	switch strings.ToLower(rule) {
	case "allkeys", "~*": // again on an allkeys selector too, as Redis
		s.keys, s.allKeys = nil, true
		return nil
	case "resetkeys":
		s.keys, s.allKeys = nil, false
		return nil
	case "allchannels", "&*":
		s.channels, s.allChannels = nil, true
		return nil
	case "resetchannels":
		s.channels, s.allChannels = nil, false
		return nil
	case "allcommands":
		rule = "+@all"
	case "nocommands":
		rule = "-@all"
	}
	if rule == "" || hasSpace(rule) {
		return errSyntax // a pattern with spaces would not read back from the file
	}
	switch rule[0] {
	case '~', '%':
		return s.addKeyPattern(rule)
	case '&':
		if s.allChannels {
			return errChanAfterAll
		}
		p := rule[1:]
		if !slices.Contains(s.channels, p) {
			if len(s.channels) >= MaxPatterns {
				return errTooMany
			}
			s.channels = append(s.channels, p)
		}
		return nil
	case '+', '-':
		return s.applyCommandRule(rule)
	}
	return errSyntax
}

func (s *Selector) addKeyPattern(rule string) error {
	var flags uint8
	p := rule
	if rule[0] == '%' {
		i := strings.IndexByte(rule, '~')
		if i < 2 {
			return errSyntax
		}
		for _, ch := range rule[1:i] {
			switch ch {
			case 'R', 'r':
				flags |= KeyRead
			case 'W', 'w':
				flags |= KeyWrite
			default:
				return errSyntax
			}
		}
		p = rule[i:]
	} else {
		flags = KeyRead | KeyWrite
	}
	p = p[1:]
	if s.allKeys {
		return errKeyAfterAll
	}
	if p == "*" && flags == KeyRead|KeyWrite { // %RW~*
		s.keys, s.allKeys = nil, true
		return nil
	}
	for i := range s.keys {
		if s.keys[i].pattern == p { // %R~foo %W~foo is ~foo
			s.keys[i].flags |= flags
			if p == "*" && s.keys[i].flags == KeyRead|KeyWrite { // and %R~* %W~* is allkeys
				s.keys, s.allKeys = nil, true
			}
			return nil
		}
	}
	if len(s.keys) >= MaxPatterns {
		return errTooMany
	}
	s.keys = append(s.keys, keyPattern{p, flags})
	return nil
}

func (s *Selector) applyCommandRule(rule string) error {
	on := rule[0] == '+'
	name := strings.ToLower(rule[1:])
	if cat, ok := strings.CutPrefix(name, "@"); ok {
		if cat == "all" {
			for i := range s.allowed {
				s.allowed[i] = 0
				if on {
					s.allowed[i] = ^uint64(0)
				}
			}
			s.firstArgs = nil
			s.allCommands = on
			return nil
		}
		bit, ok := categoryBit(cat)
		if !ok {
			return errUnknownCommand
		}
		for _, ci := range s.cat.cmds {
			if ci.cats&bit != 0 {
				s.setBit(ci.id, on)
			}
		}
		return nil
	}
	parts := strings.Split(name, "|")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return errUnknownCommand
	}
	ci := s.cat.byName[parts[0]]
	if ci == nil {
		return errUnknownCommand
	}
	switch {
	case len(parts) == 1:
		s.setCommand(ci, on)
	case ci.subs != nil:
		if len(parts) == 3 {
			return errFirstArgSub
		}
		id, ok := ci.subs[parts[1]]
		if !ok {
			return errUnknownCommand
		}
		s.setBit(id, on)
	default: // +select|0: a first argument of a plain command
		if len(parts) == 3 {
			return errUnknownCommand
		}
		if !on {
			return errFirstArgBad
		}
		if s.bit(ci.id) {
			return nil // already allowed whole
		}
		if s.firstArgs == nil {
			s.firstArgs = make(map[int][]string)
		}
		if !slices.Contains(s.firstArgs[ci.id], parts[1]) {
			if len(s.firstArgs[ci.id]) >= MaxFirstArgs {
				return errTooMany
			}
			s.firstArgs[ci.id] = append(s.firstArgs[ci.id], parts[1])
		}
		return nil
	}
	return nil
}

// describeCommands is the commands part of GETUSER and ACL LIST, found
// from the bitmap as Redis 7.0 finds it: start from +@all or -@all, add
// (or remove) the category that best fits what differs while it fits more
// than it misses, then name the single commands still different, and the
// first arguments.
func (s *Selector) describeCommands() string {
	fake := newSelector(s.cat)
	rules := []string{"-@all"}
	sign := "+@"
	if s.allCommands {
		rules[0] = "+@all"
		sign = "-@"
		_ = fake.applyCommandRule("+@all")
	}
	additive := !s.allCommands
	// temp: the user's bitmap with the categories applied so far undone
	temp := s.clone()
	applied := make([]bool, len(categoryNames))
	for {
		best, minDiff, maxSame := -1, int(^uint(0)>>1), 0
		for j := range categoryNames {
			if applied[j] {
				continue
			}
			on, off := temp.countCategory(uint32(1) << j)
			diff, same := on, off
			if additive {
				diff, same = off, on
			}
			if same > diff && (diff < minDiff || (diff == minDiff && same > maxSame)) {
				best, minDiff, maxSame = j, diff, same
			}
		}
		if best < 0 {
			break
		}
		op := sign + categoryNames[best]
		inv := "+@" + categoryNames[best]
		if additive {
			inv = "-@" + categoryNames[best]
		}
		_ = fake.applyCommandRule(op)
		_ = temp.applyCommandRule(inv)
		rules = append(rules, op)
		applied[best] = true
	}
	for _, ci := range s.cat.cmds {
		if ci.parent >= 0 {
			continue
		}
		if want := s.bit(ci.id); want != fake.bit(ci.id) {
			rules = append(rules, signOf(want)+ci.name)
			fake.setCommand(ci, want)
		}
		for _, sub := range s.cat.subsSorted(ci) {
			if want := s.bit(sub.id); want != fake.bit(sub.id) {
				rules = append(rules, signOf(want)+sub.name)
				fake.setBit(sub.id, want)
			}
		}
	}
	for _, ci := range s.cat.cmds {
		for _, a := range s.firstArgs[ci.id] {
			rules = append(rules, "+"+ci.name+"|"+a)
		}
	}
	return strings.Join(rules, " ")
}

func signOf(on bool) string {
	if on {
		return "+"
	}
	return "-"
}

// countCategory counts the commands of a category allowed and not.
func (s *Selector) countCategory(bit uint32) (on, off int) {
	for _, ci := range s.cat.cmds {
		if ci.cats&bit != 0 {
			if s.bit(ci.id) {
				on++
			} else {
				off++
			}
		}
	}
	return on, off
}

func (s *Selector) describeKeys() string {
	if s.allKeys {
		return "~*"
	}
	parts := make([]string, len(s.keys))
	for i, k := range s.keys {
		switch k.flags {
		case KeyRead:
			parts[i] = "%R~" + k.pattern
		case KeyWrite:
			parts[i] = "%W~" + k.pattern
		default:
			parts[i] = "~" + k.pattern
		}
	}
	return strings.Join(parts, " ")
}

func (s *Selector) describeChannels() string {
	if s.allChannels {
		return "&*"
	}
	parts := make([]string, len(s.channels))
	for i, c := range s.channels {
		parts[i] = "&" + c
	}
	return strings.Join(parts, " ")
}

// describe is the selector as rules: keys, channels, commands, as in
// ACL LIST.
func (s *Selector) describe() string {
	var parts []string
	if k := s.describeKeys(); k != "" {
		parts = append(parts, k)
	}
	if s.allChannels {
		parts = append(parts, "&*")
	} else {
		parts = append(parts, "resetchannels")
		if c := s.describeChannels(); c != "" {
			parts = append(parts, c)
		}
	}
	parts = append(parts, s.describeCommands())
	return strings.Join(parts, " ")
}

// hasSpace reports whether s has white space or NUL, which names,
// patterns and commands may not have.
func hasSpace(s string) bool { return strings.ContainsAny(s, " \t\n\r\v\f\x00") }

// fields splits s at the white space hasSpace refuses (ASCII only, as
// Redis splits the ACL file; strings.Fields would also split at Unicode
// spaces a pattern may hold).
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0
	})
}
