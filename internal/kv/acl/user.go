package acl

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// User is one version of a user: flags, passwords and selectors. It is
// never changed once published; SETUSER builds the next version.
type User struct {
	Name      string
	enabled   bool
	nopass    bool
	sanitize  string   // "", "sanitize-payload" or "skip-sanitize-payload"
	passwords []string // SHA-256 of each password, hex
	root      *Selector
	selectors []*Selector
	// unrestricted: every command, key and channel; the check is skipped
	unrestricted bool
	// deleted: ACL DELUSER or ACL LOAD removed the user
	deleted bool
}

// Deleted reports whether the user was deleted (ACL DELUSER, ACL LOAD):
// the connections logged in as it close.
func (u *User) Deleted() bool { return u.deleted }

// Unrestricted reports whether the user may run anything (the fast path).
func (u *User) Unrestricted() bool { return u.unrestricted }

// Enabled reports whether the user may log in.
func (u *User) Enabled() bool { return u.enabled }

// NoPass reports whether any password logs the user in.
func (u *User) NoPass() bool { return u.nopass }

// newUser is a user as ACL SETUSER and the ACL file create it: off, no
// passwords, commands or keys; every channel when acl-pubsub-default is
// allchannels (pubAll), none when it is resetchannels.
func newUser(cat *Catalog, name string, pubAll bool) *User {
	u := &User{Name: name, root: newSelector(cat)}
	u.root.allChannels = pubAll
	return u
}

func (u *User) clone() *User {
	n := *u
	n.passwords = slices.Clone(u.passwords)
	n.root = u.root.clone()
	n.selectors = make([]*Selector, len(u.selectors))
	for i, s := range u.selectors {
		n.selectors[i] = s.clone()
	}
	return &n
}

// HashPassword is the SHA-256 of a password in hex, as ACL GETUSER shows
// and #<hash> rules take.
func HashPassword(p string) string {
	h := sha256.Sum256([]byte(p))
	return hex.EncodeToString(h[:])
}

// CheckPassword reports whether pass logs the user in (in constant time
// per stored hash).
func (u *User) CheckPassword(pass string) bool {
	if !u.enabled {
		return false
	}
	if u.nopass {
		return true
	}
	h := HashPassword(pass)
	ok := false
	for _, p := range u.passwords {
		if subtle.ConstantTimeCompare([]byte(p), []byte(h)) == 1 {
			ok = true
		}
	}
	return ok
}

// RuleError is an invalid rule, reported as Redis reports it.
type RuleError struct {
	Rule string
	Err  error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("Error in ACL SETUSER modifier '%s': %v", e.Rule, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

const (
	errNoSuchPass = redisError("The password you are trying to remove from the user does not exist")
	errBadHash    = redisError("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
)

// validHash reports whether h is 64 lower-case hex digits.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// apply applies one rule to the user (u is a private copy). pubAll is
// acl-pubsub-default: whether a new selector "(...)" and "reset" start
// with every channel, as Redis's selectors start with it.
func (u *User) apply(cat *Catalog, rule string, pubAll bool) error {
	if rule == "" {
		return errSyntax
	}
	if strings.HasPrefix(rule, "(") && strings.HasSuffix(rule, ")") {
		sel := newSelector(cat)
		sel.allChannels = pubAll
		for _, r := range fields(rule[1 : len(rule)-1]) {
			if strings.ContainsAny(r, "()") {
				return errSyntax // no nesting: the file could not tell where it ends
			}
			if err := sel.apply(r); err != nil {
				return err
			}
		}
		if len(u.selectors) >= MaxSelectors {
			return errTooMany
		}
		u.selectors = append(u.selectors, sel)
		return nil
	}
	switch strings.ToLower(rule) {
	case "on":
		u.enabled = true
		return nil
	case "off":
		u.enabled = false
		return nil
	case "nopass":
		u.nopass, u.passwords = true, nil
		return nil
	case "resetpass":
		u.nopass, u.passwords = false, nil
		return nil
	case "sanitize-payload", "skip-sanitize-payload":
		u.sanitize = strings.ToLower(rule)
		return nil
	case "clearselectors":
		u.selectors = nil
		return nil
	case "reset":
		*u = User{Name: u.Name, root: newSelector(cat), sanitize: "sanitize-payload"}
		u.root.allChannels = pubAll
		return nil
	}
	switch rule[0] {
	case '>':
		h := HashPassword(rule[1:])
		if !slices.Contains(u.passwords, h) {
			if len(u.passwords) >= MaxPasswords {
				return errTooMany
			}
			u.passwords = append(u.passwords, h)
		}
		u.nopass = false
		return nil
	case '#':
		if !validHash(rule[1:]) {
			return errBadHash
		}
		if !slices.Contains(u.passwords, rule[1:]) {
			if len(u.passwords) >= MaxPasswords {
				return errTooMany
			}
			u.passwords = append(u.passwords, rule[1:])
		}
		u.nopass = false
		return nil
	case '<', '!':
		h := rule[1:]
		if rule[0] == '<' {
			h = HashPassword(h)
		} else if !validHash(h) {
			return errBadHash
		}
		i := slices.Index(u.passwords, h)
		if i < 0 {
			return errNoSuchPass
		}
		u.passwords = slices.Delete(u.passwords, i, i+1)
		return nil
	}
	return u.root.apply(rule)
}

// KeepsSubscription reports whether a subscription of the user's
// connection survives a change of the user's channels, as Redis 7.0
// decides it (ACLKillPubsubClientsIfNeeded): a selector with every
// channel keeps all; otherwise the channel patterns of all selectors
// together, matched against a channel as a glob and compared literally
// with a PSUBSCRIBE pattern (pattern), as the command's check does.
func (u *User) KeepsSubscription(name string, pattern bool) bool {
	if u.unrestricted {
		return true
	}
	for i := -1; i < len(u.selectors); i++ {
		s := u.root
		if i >= 0 {
			s = u.selectors[i]
		}
		if s.allChannels || s.channelAllowed([]byte(name), pattern) {
			return true
		}
	}
	return false
}

// revokesChannels reports whether changing a user from old to cur may take
// a channel away from its subscribers, Redis's test before it looks at
// them: not when a selector of cur has every channel, nor when cur's
// channel patterns include every one of old's (and old had no selector
// with every channel).
func revokesChannels(old, cur *User) bool {
	sels := func(u *User) []*Selector { return append([]*Selector{u.root}, u.selectors...) }
	upcoming := map[string]bool{}
	for _, s := range sels(cur) {
		if s.allChannels {
			return false
		}
		for _, p := range s.channels {
			upcoming[p] = true
		}
	}
	for _, s := range sels(old) {
		if s.allChannels {
			return true
		}
		for _, p := range s.channels {
			if !upcoming[p] {
				return true
			}
		}
	}
	return false
}

// finish computes what the checks use after rules changed the user.
func (u *User) finish() {
	u.unrestricted = u.root.full() && u.root.allKeys && u.root.allChannels
}

// mergeSelectorArgs joins the arguments of one "(...)" selector given
// over several arguments, as Redis does: "(~key1", "+get", ")".
func mergeSelectorArgs(rules []string) ([]string, error) {
	var out []string
	for i := 0; i < len(rules); i++ {
		r := rules[i]
		if !strings.HasPrefix(r, "(") || strings.HasSuffix(r, ")") {
			out = append(out, r)
			continue
		}
		j := i + 1
		for j < len(rules) && !strings.HasSuffix(rules[j], ")") {
			j++
		}
		if j == len(rules) {
			return nil, redisError("Unmatched parenthesis in acl selector starting at '" + r + "'.")
		}
		out = append(out, strings.Join(rules[i:j+1], " "))
		i = j
	}
	return out, nil
}

// Describe is the user as one line of an ACL file and of ACL LIST:
// "user alice on #hash ~keys resetchannels &ch -@all +get (...)".
func (u *User) Describe() string {
	parts := []string{"user", u.Name}
	parts = append(parts, u.Flags()...)
	for _, p := range u.passwords {
		parts = append(parts, "#"+p)
	}
	parts = append(parts, u.root.describe())
	for _, s := range u.selectors {
		parts = append(parts, "("+s.describe()+")")
	}
	return strings.Join(parts, " ")
}

// Flags are the user's flags as GETUSER lists them.
func (u *User) Flags() []string {
	flags := []string{"off"}
	if u.enabled {
		flags[0] = "on"
	}
	if u.nopass {
		flags = append(flags, "nopass")
	}
	if u.sanitize != "" { // set by reset or by name, as Redis shows it
		flags = append(flags, u.sanitize)
	}
	return flags
}

// Passwords are the SHA-256 hashes of the user's passwords.
func (u *User) Passwords() []string { return slices.Clone(u.passwords) }

// SelectorInfo is one selector's rules as GETUSER shows them.
type SelectorInfo struct{ Commands, Keys, Channels string }

// Root is the root selector's description.
func (u *User) Root() SelectorInfo { return info(u.root) }

// Selectors describes the user's added selectors.
func (u *User) Selectors() []SelectorInfo {
	out := make([]SelectorInfo, len(u.selectors))
	for i, s := range u.selectors {
		out[i] = info(s)
	}
	return out
}

func info(s *Selector) SelectorInfo {
	return SelectorInfo{s.describeCommands(), s.describeKeys(), s.describeChannels()}
}
