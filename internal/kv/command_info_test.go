package kv

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// respNode is a reply read back: its RESP3 type byte, its value (bulk,
// simple, error or integer as text) and its elements (a map's keys and
// values alternate).
type respNode struct {
	T     byte
	V     string
	Elems []respNode
}

func readResp(r *bufio.Reader) (respNode, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return respNode{}, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return respNode{}, fmt.Errorf("empty line")
	}
	n := respNode{T: line[0], V: line[1:]}
	switch n.T {
	case '+', '-', ':', '_':
		return n, nil
	case '$', '=':
		size, err := strconv.Atoi(n.V)
		if err != nil || size < 0 {
			return n, err
		}
		buf := make([]byte, size+2)
		if _, err := readFullResp(r, buf); err != nil {
			return n, err
		}
		n.V = string(buf[:size])
		return n, nil
	case '*', '~', '%', '>':
		size, err := strconv.Atoi(n.V)
		if err != nil {
			return n, err
		}
		if n.T == '%' {
			size *= 2
		}
		n.V = ""
		for range max(size, 0) {
			e, err := readResp(r)
			if err != nil {
				return n, err
			}
			n.Elems = append(n.Elems, e)
		}
		return n, nil
	}
	return n, fmt.Errorf("unexpected reply line %q", line)
}

func readFullResp(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// resp2 is node as RESP2 shows it: maps and sets are arrays.
func resp2(n respNode) respNode {
	if n.T == '%' || n.T == '~' {
		n.T = '*'
	}
	elems := make([]respNode, len(n.Elems))
	for i, e := range n.Elems {
		elems[i] = resp2(e)
	}
	if n.Elems == nil {
		elems = nil
	}
	n.Elems = elems
	return n
}

// String renders a node compactly for failure messages.
func (n respNode) String() string {
	if n.Elems == nil && strings.ContainsRune("*~%", rune(n.T)) {
		return string(n.T) + "[]"
	}
	if n.Elems == nil {
		return string(n.T) + n.V
	}
	parts := make([]string, len(n.Elems))
	for i, e := range n.Elems {
		parts[i] = e.String()
	}
	return string(n.T) + "[" + strings.Join(parts, " ") + "]"
}

// gantryLacks are the commands of Redis 7.0.15 gantry does not serve
// (docs/kv.md): COMMAND INFO answers them a null, as unknown commands.
var gantryLacks = map[string]bool{"failover": true, "lolwut": true}

// TestCommandInfoMatchesRedis compares the COMMAND INFO of every command
// with redis-server 7.0.15's (testdata/redis-command-info.resp3, written
// by acl/mkcatalog.py), in RESP3 and RESP2: every field, the subcommands
// with theirs. gantry lists its own subcommands too (CLIENT SETINFO ...):
// they are left out of the comparison and checked on their own.
func TestCommandInfoMatchesRedis(t *testing.T) {
	f, err := os.Open("testdata/redis-command-info.resp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := readResp(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	redisNames := map[string]bool{}
	for _, c := range all.Elems {
		redisNames[c.Elems[0].V] = true
		for _, s := range c.Elems[9].Elems {
			redisNames[s.Elems[0].V] = true
		}
	}
	e := startServer(t, nil)
	for _, proto := range []int{3, 2} {
		nc := e.raw().nc
		r := bufio.NewReader(nc)
		call := func(args ...string) respNode {
			t.Helper()
			req := fmt.Sprintf("*%d\r\n", len(args))
			for _, a := range args {
				req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
			}
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := readResp(r)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			return n
		}
		call("HELLO", strconv.Itoa(proto))
		var differ []string
		for _, want := range all.Elems {
			name := want.Elems[0].V
			got := call("COMMAND", "INFO", name)
			if len(got.Elems) != 1 {
				t.Fatalf("RESP%d COMMAND INFO %s: %v", proto, name, got)
			}
			g := got.Elems[0]
			if gantryLacks[name] {
				if g.T != '*' && g.T != '_' || g.Elems != nil {
					t.Errorf("RESP%d COMMAND INFO %s: %v, want a null", proto, name, g)
				}
				continue
			}
			if len(g.Elems) == 10 { // leave gantry's own subcommands out
				var subs []respNode
				for _, s := range g.Elems[9].Elems {
					if len(s.Elems) == 10 && redisNames[s.Elems[0].V] {
						subs = append(subs, s)
					}
				}
				if g.Elems[9].Elems != nil {
					g.Elems[9].Elems = subs
				}
			}
			if proto == 2 {
				want = resp2(want)
			}
			if !reflect.DeepEqual(g, want) {
				differ = append(differ, name)
				if len(differ) <= 5 {
					t.Errorf("RESP%d COMMAND INFO %s:\n got  %v\n want %v", proto, name, g, want)
				}
			}
		}
		if len(differ) > 0 {
			t.Errorf("RESP%d: %d of %d commands differ from Redis's COMMAND INFO: %v",
				proto, len(differ), len(all.Elems), differ)
		}
	}
}

// TestCommandListCount checks COMMAND LIST (commands and subcommands,
// Redis's and gantry's own) and COMMAND COUNT (commands alone) against
// Redis 7.0.15's, and that gantry's own subcommands have COMMAND INFO.
func TestCommandListCount(t *testing.T) {
	f, err := os.Open("testdata/redis-command-info.resp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := readResp(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	count := 0
	for _, c := range all.Elems {
		if gantryLacks[c.Elems[0].V] {
			continue
		}
		count++
		want = append(want, c.Elems[0].V)
		for _, s := range c.Elems[9].Elems {
			want = append(want, s.Elems[0].V)
		}
	}
	var own []string
	for n := range gantrySubcommandInfo {
		own = append(own, n)
	}
	want = append(want, own...)
	sort.Strings(want)

	e := startServer(t, nil)
	ctx := t.Context()
	got, err := e.rdb.Do(ctx, "COMMAND", "LIST").StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("COMMAND LIST: %d names, want %d:\n got  %v\n want %v", len(got), len(want), got, want)
	}
	n, err := e.rdb.Do(ctx, "COMMAND", "COUNT").Int()
	if err != nil || n != count {
		t.Errorf("COMMAND COUNT = %d, %v; want %d", n, err, count)
	}
	for _, name := range own {
		res, err := e.rdb.Do(ctx, "COMMAND", "INFO", name).Slice()
		if err != nil || len(res) != 1 || res[0] == nil {
			t.Errorf("COMMAND INFO %s = %v, %v", name, res, err)
			continue
		}
		info := res[0].([]any)
		if info[0] != name || fmt.Sprint(info[1]) != strconv.Itoa(gantrySubcommandInfo[name].arity) ||
			len(info[6].([]any)) == 0 {
			t.Errorf("COMMAND INFO %s = %v", name, info)
		}
	}
}

// blankDocs clears, in a COMMAND DOCS reply (RESP2 or RESP3: a map's keys
// and values alternate either way), the prose that is gantry's own
// (summary, complexity, history texts), and leaves out the commands and
// subcommands keep rejects.
func blankDocs(n respNode, keep func(string) bool) respNode {
	out := respNode{T: n.T, V: n.V, Elems: []respNode{}}
	for i := 0; i+1 < len(n.Elems); i += 2 {
		name, doc := n.Elems[i], n.Elems[i+1]
		if !keep(name.V) {
			continue
		}
		fields := append([]respNode(nil), doc.Elems...)
		for j := 0; j+1 < len(fields); j += 2 {
			v := fields[j+1]
			switch fields[j].V {
			case "summary", "complexity":
				v.V = ""
			case "history":
				v.Elems = append([]respNode(nil), v.Elems...)
				for h := range v.Elems {
					entry := append([]respNode(nil), v.Elems[h].Elems...)
					entry[1].V = ""
					v.Elems[h].Elems = entry
				}
			case "subcommands":
				v = blankDocs(v, keep)
			}
			fields[j+1] = v
		}
		doc.Elems = fields
		out.Elems = append(out.Elems, name, doc)
	}
	return out
}

// TestCommandDocsMatchesRedis compares COMMAND DOCS with redis-server
// 7.0.15's (testdata/redis-command-docs.resp3, written by
// acl/mkcatalog.py without Redis's prose), in RESP3 and RESP2: every
// command's and subcommand's fields, in order, since, group, doc flags,
// deprecation, history versions and arguments (redis-cli 7 builds its
// hints from them). The summaries, complexities and history texts are
// gantry's own.
func TestCommandDocsMatchesRedis(t *testing.T) {
	f, err := os.Open("testdata/redis-command-docs.resp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recorded, err := readResp(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	redisNames := map[string]bool{}
	var walk func(n respNode)
	walk = func(n respNode) {
		for i := 0; i+1 < len(n.Elems); i += 2 {
			redisNames[n.Elems[i].V] = true
			doc := n.Elems[i+1]
			for j := 0; j+1 < len(doc.Elems); j += 2 {
				if doc.Elems[j].V == "subcommands" {
					walk(doc.Elems[j+1])
				}
			}
		}
	}
	walk(recorded)
	keep := func(name string) bool { return redisNames[name] && !gantryLacks[name] }
	want3 := blankDocs(recorded, keep)

	e := startServer(t, nil)
	for _, proto := range []int{3, 2} {
		nc := e.raw().nc
		r := bufio.NewReader(nc)
		for _, req := range []string{"*2\r\n$5\r\nHELLO\r\n$1\r\n" + strconv.Itoa(proto) + "\r\n", "*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n"} {
			if _, err := nc.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := readResp(r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(req, "DOCS") {
				continue
			}
			got = blankDocs(got, keep)
			want := want3
			if proto == 2 {
				want = resp2(want3)
			}
			if len(got.Elems) != len(want.Elems) {
				t.Fatalf("RESP%d COMMAND DOCS: %d commands, want %d", proto, len(got.Elems)/2, len(want.Elems)/2)
			}
			var differ []string
			for i := 0; i < len(want.Elems); i += 2 {
				if !reflect.DeepEqual(got.Elems[i:i+2], want.Elems[i:i+2]) {
					differ = append(differ, want.Elems[i].V)
					if len(differ) <= 3 {
						t.Errorf("RESP%d COMMAND DOCS %s:\n got  %v\n want %v", proto, want.Elems[i].V, got.Elems[i:i+2], want.Elems[i:i+2])
					}
				}
			}
			if len(differ) > 0 {
				t.Errorf("RESP%d: %d commands' COMMAND DOCS differ from Redis's: %v", proto, len(differ), differ)
			}
		}
	}
}
