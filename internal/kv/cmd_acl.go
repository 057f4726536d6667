package kv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/acl"
	"github.com/gantry-project/gantry/internal/kv/command"
)

// initACL builds the catalog of commands the ACL rules name, the users
// (the default user with requirepass) and loads the aclfile.
func (s *Server) initACL() error {
	cmds := s.cmds.Sorted()
	descs := make([]acl.CommandDesc, len(cmds))
	for i, cmd := range cmds {
		descs[i] = acl.CommandDesc{Name: cmd.Name, Flags: cmd.Flags, Group: cmd.Group}
	}
	cat := acl.NewCatalog(descs)
	s.users = acl.NewUsers(cat, s.cfg.RequirePass)
	// the subcommands the dispatcher checks a container's calls against:
	// the catalog's, the one table of names and arities
	for _, cmd := range cmds {
		if subs := cat.Subcommands(cmd.Name); subs != nil {
			cmd.Subs = make(map[string]*command.Sub, len(subs))
			for n, sc := range subs {
				cmd.Subs[n] = &command.Sub{Name: sc.Name, Arity: sc.Arity}
			}
		}
	}
	s.aclLog = acl.NewLog(acl.DefaultLogMax)
	s.config["acllog-max-len"] = configParam{
		get: func(s *Server) string { return strconv.Itoa(s.aclLog.Max()) },
		set: func(s *Server, v string) string {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<20 {
				return "argument must be between 0 and 1048576 inclusive"
			}
			s.aclLog.SetMax(n)
			return ""
		},
	}
	s.config["aclfile"] = configParam{get: func(s *Server) string { return s.cfg.ACLFile }}
	// before the aclfile, whose users get it
	switch strings.ToLower(s.cfg.ACLPubsubDefault) {
	case "", "resetchannels":
	case "allchannels":
		s.users.SetPubsubDefault(true)
	default:
		return fmt.Errorf("acl-pubsub-default %q: want allchannels or resetchannels", s.cfg.ACLPubsubDefault)
	}
	s.config["acl-pubsub-default"] = configParam{
		get: func(s *Server) string {
			if s.users.PubsubDefault() {
				return "allchannels"
			}
			return "resetchannels"
		},
		set: func(s *Server, v string) string {
			switch strings.ToLower(v) {
			case "allchannels":
				s.users.SetPubsubDefault(true)
			case "resetchannels":
				s.users.SetPubsubDefault(false)
			default:
				return "argument(s) must be one of the following: allchannels, resetchannels"
			}
			return ""
		},
	}
	s.config["masteruser"] = startParam(func(s *Server) string { return s.cfg.MasterUser }, "masteruser", "can't change masteruser of a running server")
	if s.cfg.ACLFile != "" {
		if s.cfg.RequirePass != "" {
			// as Redis: the two ways of giving the default user a password
			// do not mix
			return errors.New("requirepass and aclfile: configure the default user's password in the ACL file")
		}
		if err := s.loadACLFile(nil); err != nil {
			return fmt.Errorf("aclfile %s: %w", s.cfg.ACLFile, err)
		}
	}
	return nil
}

// loadACLFile reads the aclfile (at start, and for ACL LOAD run by c).
func (s *Server) loadACLFile(c *Client) error {
	b, err := os.ReadFile(s.cfg.ACLFile)
	if err != nil {
		return err
	}
	users, err := s.users.Parse(string(b))
	if err != nil {
		return err
	}
	s.users.Replace(users, s.password())
	// as Redis frees the users it replaces: their connections close now
	s.closeUserClients(c, func(name string) bool { return name != acl.DefaultUser })
	return nil
}

// closeUserClients closes the connections logged in as a user match
// selects (ACL DELUSER, ACL LOAD), each from its own loop, at once as
// Redis does; c, the connection running the command, when it is one of
// them, gets its reply first.
func (s *Server) closeUserClients(c *Client, match func(user string) bool) {
	for _, x := range s.clientsSorted() {
		if x.master || !match(x.sharedUser()) {
			continue
		}
		if x == c {
			c.closing = true
			continue
		}
		s.killClient(x)
	}
}

// saveACLFile writes the users to the aclfile: a temporary file, fsynced
// and renamed over it, so a crash leaves the old or the new file.
func (s *Server) saveACLFile() error {
	path := s.cfg.ACLFile
	tmp, err := os.CreateTemp(filepath.Dir(path), ".acl-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strings.Join(s.users.List(), "\n") + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// userName is the name of the connection's user (CLIENT LIST, ACL LOG).
func (c *Client) userName() string {
	if c.user == nil {
		return acl.DefaultUser
	}
	return c.user.User().Name
}

// defaultAuthed reports whether a new connection is logged in as the
// default user without AUTH: it has no password and is on.
func (s *Server) defaultAuthed() bool {
	u := s.users.Default().User()
	return u.NoPass() && u.Enabled()
}

// restricted reports whether the connection's commands are checked: its
// user is not unrestricted. The fast path of the default user is this one
// atomic load and test. Internal clients (the replication stream's) have
// no user and are not checked.
func (c *Client) restricted() bool {
	return c.user != nil && !c.user.User().Unrestricted()
}

// aclAllowed checks a command against the connection's user, past the
// fast path of an unrestricted user. A refusal is logged and answered.
func (c *Client) aclAllowed(cmd *command.Command, args [][]byte, context string) bool {
	u := c.user.User()
	if u.Deleted() {
		c.closing = true // the user was deleted: its connections close
		c.W.Error("NOPERM the user of this connection was deleted")
		return false
	}
	if u.Unrestricted() || cmd.Has(command.NoAuth) || c.master {
		return true
	}
	req := acl.Request{
		Cmd:  c.srv.users.Catalog().Lookup(cmd.Name, args),
		Args: args,
	}
	c.aclKeys = cmd.GetKeys(args, c.aclKeys[:0])
	req.Keys = c.aclKeys
	req.Channels, req.Patterns = aclChannels(cmd.Name, args)
	d, ok := u.Check(&req)
	if ok {
		return true
	}
	c.srv.aclLog.Add(d.Reason.String(), context, d.Object, u.Name, c.infoLine(), c.srv.nowMs())
	if context == "multi" { // EXEC's check of a queued command, Redis's reply
		c.W.Error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. " +
			"This command is no longer allowed for the following reason: " + execDenial(d.Reason))
		return false
	}
	c.W.Error(d.Error())
	return false
}

// execDenial is the reason EXEC gives for a queued command its user may
// no longer run, as redis-server 7.0's execCommand words it.
func execDenial(r acl.Reason) string {
	switch r {
	case acl.DeniedCommand:
		return "no permission to execute the command or subcommand"
	case acl.DeniedKey:
		return "no permission to touch the specified keys"
	case acl.DeniedChannel:
		return "no permission to access one of the channels used as arguments"
	}
	return "no permission"
}

// aclChannels returns the channels of a pub/sub command that ACL channel
// permissions cover, and whether they are PSUBSCRIBE patterns (matched
// literally, as Redis does).
func aclChannels(name string, args [][]byte) ([][]byte, bool) {
	switch name {
	case "publish", "spublish":
		if len(args) > 1 {
			return args[1:2], false
		}
	case "subscribe", "ssubscribe":
		return args[1:], false
	case "psubscribe":
		return args[1:], true
	}
	return nil, false
}

// auth logs the connection in as user with pass (AUTH, HELLO AUTH); a
// failure is answered, logged and returns false.
func (c *Client) auth(user, pass string) bool {
	h := c.srv.users.Authenticate(user, pass)
	if h == nil {
		c.srv.aclLog.Add("auth", "toplevel", "AUTH", user, c.infoLine(), c.srv.nowMs())
		c.W.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return false
	}
	c.setUser(h)
	c.authed = true
	return true
}

func aclSpecs() []cmdSpec {
	return []cmdSpec{
		{"acl", -2, "noscript loading stale", 0, 0, 0, "server", cmdACL, nil},
	}
}

const aclHelp = `ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
CAT [<category>]
    List all commands that belong to <category>, or all command categories
    when no category is specified.
DELUSER <username> [<username> ...]
    Delete a list of users.
DRYRUN <username> <command> [<arg> ...]
    Returns whether the user can execute the given command without executing the command.
GETUSER <username>
    Get the user's details.
GENPASS [<bits>]
    Generate a secure 256-bit user password. The optional ` + "`bits`" + ` argument can
    be used to specify a different size.
LIST
    Show users details in config file format.
LOAD
    Reload users from the ACL file.
LOG [<count> | RESET]
    Show the ACL log entries.
SAVE
    Save the current config to the ACL file.
SETUSER <username> <attribute> [<attribute> ...]
    Create or modify a user with the specified attributes.
USERS
    List all the registered usernames.
WHOAMI
    Return the current connection username.
HELP
    Prints this help.`

const errNoACLFile = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."

// ACL CAT|DELUSER|DRYRUN|GETUSER|GENPASS|LIST|LOAD|LOG|SAVE|SETUSER|USERS|WHOAMI|HELP
func cmdACL(c *Client) {
	s := c.srv
	sub := strings.ToLower(string(c.Args[1]))
	n := len(c.Args)
	wrong := func() {
		c.SubcommandSyntax()
	}
	switch {
	case sub == "setuser" && n >= 3:
		rules := make([]string, 0, n-3)
		for _, a := range c.Args[3:] {
			rules = append(rules, string(a))
		}
		revoked, err := s.users.SetUser(string(c.Args[2]), rules)
		if err != nil {
			c.W.Error("ERR " + err.Error())
			return
		}
		if revoked {
			s.closeRevokedSubscribers(c, string(c.Args[2]))
		}
		c.W.OK()
	case sub == "getuser" && n == 3:
		h := s.users.Get(string(c.Args[2]))
		if h == nil {
			c.W.Null()
			return
		}
		writeUser(c, h.User())
	case sub == "deluser" && n >= 3:
		names := make([]string, 0, n-2)
		for _, a := range c.Args[2:] {
			names = append(names, string(a))
		}
		count, err := s.users.DelUser(names)
		if err != nil {
			c.W.Error("ERR " + err.Error())
			return
		}
		s.closeUserClients(c, func(name string) bool { return slices.Contains(names, name) })
		c.W.Int(int64(count))
	case sub == "list" && n == 2:
		lines := s.users.List()
		c.W.Array(len(lines))
		for _, l := range lines {
			c.W.BulkString(l)
		}
	case sub == "users" && n == 2:
		names := s.users.Names()
		c.W.Array(len(names))
		for _, nm := range names {
			c.W.BulkString(nm)
		}
	case sub == "whoami" && n == 2:
		c.W.BulkString(c.userName())
	case sub == "cat" && n <= 3:
		if n == 2 {
			cats := acl.Categories()
			c.W.Array(len(cats))
			for _, ct := range cats {
				c.W.BulkString(ct)
			}
			return
		}
		names, ok := s.users.Catalog().InCategory(strings.ToLower(string(c.Args[2])))
		if !ok {
			c.W.Error("ERR Unknown category '" + string(c.Args[2]) + "'")
			return
		}
		c.W.Array(len(names))
		for _, nm := range names {
			c.W.BulkString(nm)
		}
	case sub == "genpass" && n <= 3:
		bits := int64(256)
		if n == 3 {
			v, ok := c.ArgInt(2) // as Redis: not an integer, then the range
			if !ok {
				return
			}
			if v <= 0 || v > 4096 {
				c.W.Error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
				return
			}
			bits = v
		}
		c.W.BulkString(acl.GenPass(int(bits)))
	case sub == "log" && n <= 3:
		count := 10
		if n == 3 {
			if command.EqualFold(c.Args[2], "reset") {
				s.aclLog.Reset()
				c.W.OK()
				return
			}
			v, ok := c.ArgInt(2)
			if !ok {
				return
			}
			count = int(max(0, min(v, 1<<20))) // a negative count lists none, as Redis
		}
		writeLog(c, s.aclLog.Entries(count), s.nowMs())
	case sub == "dryrun" && n >= 4:
		aclDryRun(c)
	case sub == "load" && n == 2:
		if s.cfg.ACLFile == "" {
			c.W.Error(errNoACLFile)
			return
		}
		if err := s.loadACLFile(c); err != nil {
			c.W.Error("ERR " + err.Error())
			return
		}
		c.W.OK()
	case sub == "save" && n == 2:
		if s.cfg.ACLFile == "" {
			c.W.Error(errNoACLFile)
			return
		}
		if err := s.saveACLFile(); err != nil {
			c.W.Error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
			s.logger.Printf("ACL SAVE %s: %v", s.cfg.ACLFile, err)
			return
		}
		c.W.OK()
	case sub == "help" && n == 2:
		lines := strings.Split(aclHelp, "\n")
		c.W.Array(len(lines))
		for _, l := range lines {
			c.W.Simple(l)
		}
	default:
		wrong()
	}
}

func writeUser(c *Client, u *acl.User) {
	c.W.Map(6)
	c.W.BulkString("flags")
	flags := u.Flags()
	c.W.Set(len(flags))
	for _, f := range flags {
		c.W.BulkString(f)
	}
	c.W.BulkString("passwords")
	pw := u.Passwords()
	c.W.Array(len(pw))
	for _, p := range pw {
		c.W.BulkString(p)
	}
	writeSelectorFields(c, u.Root())
	c.W.BulkString("selectors")
	sels := u.Selectors()
	c.W.Array(len(sels))
	for _, sel := range sels {
		c.W.Map(3)
		writeSelectorFields(c, sel)
	}
}

// writeSelectorFields writes a selector's commands, keys and channels as
// ACL GETUSER shows them, for the user's root selector and each added one.
func writeSelectorFields(c *Client, sel acl.SelectorInfo) {
	c.W.BulkString("commands")
	c.W.BulkString(sel.Commands)
	c.W.BulkString("keys")
	c.W.BulkString(sel.Keys)
	c.W.BulkString("channels")
	c.W.BulkString(sel.Channels)
}

func writeLog(c *Client, entries []acl.LogEntry, now int64) {
	c.W.Array(len(entries))
	for _, e := range entries {
		c.W.Map(10)
		c.W.BulkString("count")
		c.W.Int(e.Count)
		c.W.BulkString("reason")
		c.W.BulkString(e.Reason)
		c.W.BulkString("context")
		c.W.BulkString(e.Context)
		c.W.BulkString("object")
		c.W.BulkString(e.Object)
		c.W.BulkString("username")
		c.W.BulkString(e.Username)
		c.W.BulkString("age-seconds")
		c.W.Double(float64(now-e.Created) / 1000)
		c.W.BulkString("client-info")
		c.W.BulkString(e.ClientInfo)
		c.W.BulkString("entry-id")
		c.W.Int(e.EntryID)
		c.W.BulkString("timestamp-created")
		c.W.Int(e.Created)
		c.W.BulkString("timestamp-last-updated")
		c.W.Int(e.Updated)
	}
}

// ACL DRYRUN user command [arg ...]
func aclDryRun(c *Client) {
	s := c.srv
	h := s.users.Get(string(c.Args[2]))
	if h == nil {
		c.W.Error("ERR User '" + string(c.Args[2]) + "' not found")
		return
	}
	args := c.Args[3:]
	cmd := s.cmds.Lookup(args[0])
	if cmd == nil {
		c.W.Error("ERR Command '" + string(args[0]) + "' not found")
		return
	}
	if !cmd.ArityOK(len(args)) {
		c.W.Error("ERR wrong number of arguments for '" + cmd.Name + "' command")
		return
	}
	u := h.User()
	req := acl.Request{Cmd: s.users.Catalog().Lookup(cmd.Name, args), Args: args}
	req.Keys = cmd.GetKeys(args, nil)
	if d, ok := u.Check(&req); !ok {
		c.W.BulkString(d.DryRun())
		return
	}
	c.W.OK()
}
