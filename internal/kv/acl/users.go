package acl

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Handle is a user as connections hold it: the current version, replaced
// as a whole by SETUSER, and whether the user was deleted (its
// connections are closed).
type Handle struct {
	cur atomic.Pointer[User]
}

// User returns the current version of the user.
func (h *Handle) User() *User { return h.cur.Load() }

// markDeleted replaces the user by a deleted one, so that its
// connections close at their next command.
func (h *Handle) markDeleted() {
	u := h.cur.Load()
	h.cur.Store(&User{Name: u.Name, deleted: true, root: newSelector(u.root.cat)})
}

// DefaultUser is the name of the user connections start as.
const DefaultUser = "default"

// Users is the set of users of a server.
type Users struct {
	cat *Catalog
	// pubAll is acl-pubsub-default: users and selectors created from now
	// on (and "reset") have every channel (allchannels) or none
	// (resetchannels, the default of Redis 7)
	pubAll atomic.Bool

	mu    sync.Mutex
	users map[string]*Handle
	def   *Handle // the default user, never deleted
}

// ErrDefaultUser refuses to delete the default user.
const ErrDefaultUser = redisError("The 'default' user cannot be removed")

// NewUsers returns the users of a new server: only the default user,
// allowed everything, with requirepass as its password (nopass without
// one).
func NewUsers(cat *Catalog, requirepass string) *Users {
	us := &Users{cat: cat, users: make(map[string]*Handle)}
	us.def = &Handle{}
	us.def.cur.Store(defaultUser(cat, requirepass))
	us.users[DefaultUser] = us.def
	return us
}

func defaultUser(cat *Catalog, requirepass string) *User {
	u := newUser(cat, DefaultUser, true) // every channel, whatever acl-pubsub-default says, as Redis
	for _, r := range []string{"on", "~*", "&*", "+@all"} {
		_ = u.apply(cat, r, true)
	}
	if requirepass == "" {
		_ = u.apply(cat, "nopass", true)
	} else {
		_ = u.apply(cat, ">"+requirepass, true)
	}
	u.finish()
	return u
}

// SetPubsubDefault sets acl-pubsub-default: whether users created from
// now on, their selectors and "reset" get every channel (allchannels) or
// none (resetchannels). Existing users keep their channels.
func (us *Users) SetPubsubDefault(all bool) { us.pubAll.Store(all) }

// PubsubDefault reports acl-pubsub-default: true for allchannels.
func (us *Users) PubsubDefault() bool { return us.pubAll.Load() }

// Catalog returns the command catalog the users' rules refer to.
func (us *Users) Catalog() *Catalog { return us.cat }

// Default returns the default user's handle.
func (us *Users) Default() *Handle { return us.def }

// Get returns a user's handle, nil if there is none.
func (us *Users) Get(name string) *Handle {
	us.mu.Lock()
	defer us.mu.Unlock()
	return us.users[name]
}

// Names lists the users in name order.
func (us *Users) Names() []string {
	us.mu.Lock()
	defer us.mu.Unlock()
	names := make([]string, 0, len(us.users))
	for n := range us.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// List describes every user as a line of an ACL file (ACL LIST).
func (us *Users) List() []string {
	var out []string
	for _, n := range us.Names() {
		if h := us.Get(n); h != nil {
			out = append(out, h.User().Describe())
		}
	}
	return out
}

// validName refuses names Redis refuses.
func validName(name string) error {
	if hasSpace(name) {
		return redisError("Usernames can't contain spaces or null characters")
	}
	return nil
}

// SetUser creates or changes a user by rules (ACL SETUSER). Either every
// rule applies or none does. A new user starts off, without passwords,
// commands or keys, with the channels of acl-pubsub-default. revoked
// reports that the change of an existing user may take channels away
// from its subscribers: the caller closes the connections of the user
// whose subscriptions the new version no longer keeps
// (User.KeepsSubscription), as Redis does.
func (us *Users) SetUser(name string, rules []string) (revoked bool, err error) {
	if err := validName(name); err != nil {
		return false, err
	}
	rules, err = mergeSelectorArgs(rules)
	if err != nil {
		return false, err
	}
	pubAll := us.pubAll.Load()
	us.mu.Lock()
	defer us.mu.Unlock()
	h := us.users[name]
	var u *User
	if h != nil {
		u = h.User().clone()
	} else {
		u = newUser(us.cat, name, pubAll)
	}
	for _, r := range rules {
		if err := u.apply(us.cat, r, pubAll); err != nil {
			return false, &RuleError{r, err}
		}
	}
	u.finish()
	if h == nil {
		if len(us.users) >= MaxUsers {
			return false, redisError(fmt.Sprintf("Too many users: at most %d", MaxUsers))
		}
		h = &Handle{}
		us.users[name] = h
	} else {
		revoked = revokesChannels(h.User(), u)
	}
	h.cur.Store(u)
	return revoked, nil
}

// DelUser deletes users and returns how many existed; the caller closes
// their connections, and a connection that logs in meanwhile sees
// User.Deleted at its next command.
func (us *Users) DelUser(names []string) (int, error) {
	us.mu.Lock()
	defer us.mu.Unlock()
	for _, n := range names {
		if n == DefaultUser {
			return 0, ErrDefaultUser
		}
	}
	count := 0
	for _, n := range names {
		if h, ok := us.users[n]; ok {
			h.markDeleted()
			delete(us.users, n)
			count++
		}
	}
	return count, nil
}

// SetDefaultPassword makes requirepass the default user's only password
// (CONFIG SET requirepass), or nopass when empty.
func (us *Users) SetDefaultPassword(pass string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	u := us.def.User().clone()
	if pass == "" {
		_ = u.apply(us.cat, "nopass", false)
	} else {
		_ = u.apply(us.cat, "resetpass", false)
		_ = u.apply(us.cat, ">"+pass, false)
	}
	u.finish()
	us.def.cur.Store(u)
}

// Authenticate returns the handle of a user whose password pass is; nil
// when the user does not exist, is off, or the password is wrong.
func (us *Users) Authenticate(name, pass string) *Handle {
	h := us.Get(name)
	if h == nil || !h.User().CheckPassword(pass) {
		return nil
	}
	return h
}

// Parse reads ACL file lines ("user <name> rules...", blank lines and
// # comments skipped) into a new set of users; an error names the line.
// A file without the default user keeps the default user of def.
func (us *Users) Parse(text string) (map[string]*User, error) {
	users := make(map[string]*User)
	pubAll := us.pubAll.Load()
	for i, line := range strings.Split(text, "\n") {
		line = strings.Trim(line, " \t\r\v\f")
		if line == "" || line[0] == '#' {
			continue
		}
		f := fields(line)
		if len(f) < 2 || f[0] != "user" {
			return nil, fmt.Errorf("line %d: should start with user keyword", i+1)
		}
		name := f[1]
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if len(users) >= MaxUsers {
			return nil, fmt.Errorf("line %d: too many users: at most %d", i+1, MaxUsers)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("duplicate user '%s' found on line %d", name, i+1)
		}
		rules, err := mergeSelectorArgs(f[2:])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		u := newUser(us.cat, name, pubAll)
		for _, r := range rules {
			if err := u.apply(us.cat, r, pubAll); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, &RuleError{r, err})
			}
		}
		u.finish()
		users[name] = u
	}
	return users, nil
}

// Replace installs parsed users (ACL LOAD, the aclfile at start). The
// caller closes the connections of every user but the default one, as
// Redis does (those that log in meanwhile see User.Deleted); the default
// user, when the file does not name it, is reset to all permissions with
// requirepass, and its subscribers are kept whatever its new channels, as
// Redis 7.0 keeps them.
func (us *Users) Replace(users map[string]*User, requirepass string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	for n, h := range us.users {
		if n != DefaultUser {
			h.markDeleted()
		}
	}
	us.users = map[string]*Handle{DefaultUser: us.def}
	if d, ok := users[DefaultUser]; ok {
		us.def.cur.Store(d)
	} else {
		us.def.cur.Store(defaultUser(us.cat, requirepass))
	}
	for n, u := range users {
		if n == DefaultUser {
			continue
		}
		h := &Handle{}
		h.cur.Store(u)
		us.users[n] = h
	}
}
