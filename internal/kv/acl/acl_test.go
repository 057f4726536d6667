package acl

import (
	"strings"
	"testing"
)

// testCatalog is a small catalog of real Redis commands.
func testCatalog() *Catalog {
	var descs []CommandDesc
	for _, n := range []string{"get", "set", "mget", "copy", "lmove", "client", "config", "select", "ping", "sadd", "acl", "exists", "bitfield", "zunionstore", "publish", "subscribe", "psubscribe"} {
		descs = append(descs, CommandDesc{Name: n})
	}
	descs = append(descs, CommandDesc{Name: "gantrything", Flags: []string{"write", "fast"}, Group: "string"})
	return NewCatalog(descs)
}

func TestRulesRoundTrip(t *testing.T) {
	us := NewUsers(testCatalog(), "")
	tests := []string{
		"on >p ~* &* +@all",
		"off nopass %R~a* %W~b* ~c resetchannels &x -@all +get +client|id",
		"on #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 +@all -@string -client|kill (~x +set) (&ch +@read)",
		"-@all +select|0 +select|1",
		"+@all -gantrything",
	}
	for _, rules := range tests {
		if _, err := us.SetUser("u", append([]string{"reset"}, strings.Fields(rules)...)); err != nil {
			// selectors are one argument each in these tests
			t.Fatalf("%s: %v", rules, err)
		}
		line := us.Get("u").User().Describe()
		parsed, err := us.Parse(line)
		if err != nil {
			t.Fatalf("%s: parse %q: %v", rules, line, err)
		}
		if again := parsed["u"].Describe(); again != line {
			t.Errorf("%s: %q reads back as %q", rules, line, again)
		}
	}
}

func TestCheck(t *testing.T) {
	cat := testCatalog()
	us := NewUsers(cat, "")
	req := func(name string, args ...string) *Request {
		b := make([][]byte, len(args)+1)
		b[0] = []byte(name)
		for i, a := range args {
			b[i+1] = []byte(a)
		}
		return &Request{Cmd: cat.Lookup(name, b), Args: b}
	}
	withKeys := func(r *Request, keys ...string) *Request {
		for _, k := range keys {
			r.Keys = append(r.Keys, []byte(k))
		}
		return r
	}
	withChannels := func(r *Request, pattern bool, chans ...string) *Request {
		for _, c := range chans {
			r.Channels = append(r.Channels, []byte(c))
		}
		r.Patterns = pattern
		return r
	}
	tests := []struct {
		rules string
		req   *Request
		want  Reason
		obj   string
	}{
		{"+@all ~*", withKeys(req("get", "k"), "k"), Allowed, ""},
		{"-@all ~*", withKeys(req("get", "k"), "k"), DeniedCommand, "get"},
		{"+get ~a*", withKeys(req("get", "b"), "b"), DeniedKey, "b"},
		{"+mget ~a*", withKeys(req("mget", "a1", "b", "c"), "a1", "b", "c"), DeniedKey, "b"},
		{"+copy %R~src %W~dst", withKeys(req("copy", "src", "dst"), "src", "dst"), Allowed, ""},
		{"+copy %R~src %W~dst", withKeys(req("copy", "dst", "src"), "dst", "src"), DeniedKey, "dst"},
		{"+lmove %W~a ~b", withKeys(req("lmove", "a", "b", "left", "right"), "a", "b"), DeniedKey, "a"}, // the source is read
		{"+set %W~k", withKeys(req("set", "k", "v"), "k"), Allowed, ""},
		{"+set %W~k", withKeys(req("set", "k", "v", "GET"), "k"), DeniedKey, "k"},
		{"+exists %W~k", withKeys(req("exists", "k"), "k"), Allowed, ""},
		{"+client|id", req("client", "id"), Allowed, ""},
		{"+client|id", req("client", "kill"), DeniedCommand, "client|kill"},
		{"+select|0", req("select", "0"), Allowed, ""},
		{"+select|0", req("select", "1"), DeniedCommand, "select"},
		{"+publish &news.*", withChannels(req("publish", "news.1", "m"), false, "news.1"), Allowed, ""},
		{"+publish &news.*", withChannels(req("publish", "sport", "m"), false, "sport"), DeniedChannel, "sport"},
		{"+psubscribe &news.*", withChannels(req("psubscribe", "news.*"), true, "news.*"), Allowed, ""},
		{"+psubscribe &news.*", withChannels(req("psubscribe", "news.1*"), true, "news.1*"), DeniedChannel, "news.1*"},
		{"+gantrything ~*", withKeys(req("gantrything", "k"), "k"), Allowed, ""},
		{"+@string ~*", withKeys(req("gantrything", "k"), "k"), Allowed, ""}, // derived from its group
		{"+@fast -@write ~*", withKeys(req("gantrything", "k"), "k"), DeniedCommand, "gantrything"},
		// selectors: a key refusal ranks over a command refusal
		{"+mget ~key (+mget ~key ~otherkey)", withKeys(req("mget", "otherkey", "some"), "otherkey", "some"), DeniedKey, "some"},
		{"+mget ~key (+mget ~key ~otherkey)", withKeys(req("get", "key"), "key"), DeniedCommand, "get"},
	}
	for _, tt := range tests {
		if _, err := us.SetUser("u", append([]string{"reset", "on"}, splitRules(tt.rules)...)); err != nil {
			t.Fatalf("%s: %v", tt.rules, err)
		}
		d, ok := us.Get("u").User().Check(tt.req)
		if ok != (tt.want == Allowed) || d.Reason != tt.want || d.Object != tt.obj {
			t.Errorf("%s %s: got %v %v %q, want %v %q", tt.rules, tt.req.Args, ok, d.Reason, d.Object, tt.want, tt.obj)
		}
	}
}

// splitRules splits on spaces outside parentheses.
func splitRules(s string) []string {
	var out []string
	depth, start := 0, -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || (s[i] == ' ' && depth == 0) {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	return out
}

func TestDefaultUserFastPath(t *testing.T) {
	us := NewUsers(testCatalog(), "")
	if u := us.Default().User(); !u.Unrestricted() || !u.NoPass() {
		t.Fatal("the default user is not unrestricted and nopass")
	}
	us.SetDefaultPassword("pw")
	u := us.Default().User()
	if !u.Unrestricted() || u.NoPass() || !u.CheckPassword("pw") || u.CheckPassword("x") {
		t.Fatal("requirepass does not make the default user's password")
	}
	if _, err := us.SetUser("default", []string{"-get"}); err != nil {
		t.Fatal(err)
	}
	if us.Default().User().Unrestricted() {
		t.Fatal("a restricted default user takes the fast path")
	}
}

func TestLog(t *testing.T) {
	l := NewLog(3)
	l.Add("key", "toplevel", "a", "u", "", 1000)
	l.Add("key", "toplevel", "a", "u", "", 2000) // grouped
	l.Add("key", "toplevel", "a", "u", "", 70000)
	l.Add("command", "toplevel", "get", "u", "", 70001)
	l.Add("command", "toplevel", "set", "u", "", 70002)
	e := l.Entries(-1)
	if len(e) != 3 || e[0].Object != "set" || e[2].Object != "a" || e[2].Count != 1 || e[2].Created != 70000 {
		t.Errorf("entries %+v", e)
	}
	l.Add("key", "toplevel", "a", "u", "", 70003) // moves to the front
	if e := l.Entries(1); e[0].Object != "a" || e[0].Count != 2 {
		t.Errorf("regrouped %+v", e)
	}
}

func TestGenPass(t *testing.T) {
	for bits, n := range map[int]int{256: 64, 5: 2, 1: 1, 4096: 1024} {
		if p := GenPass(bits); len(p) != n {
			t.Errorf("GenPass(%d) = %q: want %d hex digits", bits, p, n)
		}
	}
	if a, b := GenPass(128), GenPass(128); a == b {
		t.Error("two passwords are equal")
	}
}

// FuzzSetUser applies arbitrary rules: never a panic, and a user that was
// accepted reads back from its ACL LIST line as the same user.
func FuzzSetUser(f *testing.F) {
	for _, s := range []string{
		"on >p ~* &* +@all",
		"off nopass %R~a* %W~b* resetchannels &x -@all +get +client|id",
		"(~x +set) (&ch +@read) clearselectors",
		"+select|0 -select +config|get|x",
		"#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6 !34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6",
		"%RW~k %Q~x ~* ~y ( (",
		"reset allkeys allchannels allcommands nocommands resetkeys resetpass",
	} {
		f.Add(s)
	}
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		us := NewUsers(cat, "")
		if _, err := us.SetUser("u", strings.Split(s, " ")); err != nil {
			if us.Get("u") != nil {
				t.Fatalf("a refused SETUSER created the user")
			}
			return
		}
		line := us.Get("u").User().Describe()
		parsed, err := us.Parse(line)
		if err != nil {
			t.Fatalf("%q: ACL LIST line %q does not parse: %v", s, line, err)
		}
		if again := parsed["u"].Describe(); again != line {
			t.Fatalf("%q: %q reads back as %q", s, line, again)
		}
	})
}

// FuzzParseFile reads arbitrary ACL files: never a panic, and what is
// accepted is written and read back unchanged.
func FuzzParseFile(f *testing.F) {
	f.Add("user alice on >a ~* &* +@all\n# comment\n\nuser bob off (~x +get)\n")
	f.Add("user x on\nuser x off\n")
	f.Add("usr x\nuser\n")
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 8192 {
			return
		}
		us := NewUsers(cat, "")
		users, err := us.Parse(text)
		if err != nil {
			return
		}
		for name, u := range users {
			line := u.Describe()
			again, err := us.Parse(line)
			if err != nil || again[name] == nil || again[name].Describe() != line {
				t.Fatalf("%q: %q does not read back: %v", text, line, err)
			}
		}
	})
}

func TestLimits(t *testing.T) {
	us := NewUsers(testCatalog(), "")
	many := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		}
		return out
	}
	for _, rules := range [][]string{many("~", MaxPatterns+1), many("&", MaxPatterns+1), many(">", MaxPasswords+1), many("(~", MaxSelectors+1)} {
		for i := range rules {
			if strings.HasPrefix(rules[i], "(") {
				rules[i] += ")"
			}
		}
		if _, err := us.SetUser("u", rules); err == nil || !strings.Contains(err.Error(), "Too many") {
			t.Errorf("%d rules %q...: %v", len(rules), rules[0], err)
		}
	}
}

// TestAllKeysAgain: "~*" and "&*" (and allkeys, allchannels) are accepted
// on a selector that already has every key or channel, as redis-server
// 7.0.15 accepts them; another pattern after them is refused.
func TestAllKeysAgain(t *testing.T) {
	us := NewUsers(testCatalog(), "")
	for _, tt := range []struct {
		rules string
		err   string // "" for accepted
		want  string // the user's ACL LIST line after them, as redis-server 7.0.15 shows it
	}{
		{"~* ~*", "", "user u off sanitize-payload ~* resetchannels -@all"},
		{"allkeys ~*", "", "user u off sanitize-payload ~* resetchannels -@all"},
		{"~* allkeys", "", "user u off sanitize-payload ~* resetchannels -@all"},
		{"%R~* ~*", "", "user u off sanitize-payload ~* resetchannels -@all"},
		{"~* ~foo", "Adding a pattern after the *", ""},
		{"~* %RW~*", "Adding a pattern after the *", ""},
		{"resetchannels &* &*", "", "user u off sanitize-payload &* -@all"},
		{"resetchannels allchannels &*", "", "user u off sanitize-payload &* -@all"},
		{"resetchannels &* &x", "Adding a pattern after the *", ""},
	} {
		_, err := us.SetUser("u", append([]string{"reset"}, strings.Fields(tt.rules)...))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want one with %q", tt.rules, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.rules, err)
			continue
		}
		if d := us.Get("u").User().Describe(); d != tt.want {
			t.Errorf("%s: user %q, want %q", tt.rules, d, tt.want)
		}
	}
}
