package kv

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// clientFields parses a CLIENT LIST line's flags, multi and cmd.
func clientFields(line string) string {
	var out []string
	for _, f := range strings.Fields(line) {
		for _, k := range []string{"flags=", "multi=", "cmd="} {
			if strings.HasPrefix(f, k) {
				out = append(out, f)
			}
		}
	}
	return strings.Join(out, " ")
}

// TestClientListCmdField: CLIENT LIST's cmd= is the command the client
// sent last, whether it ran or not, NULL for an unknown one, in MULTI or
// not; inside EXEC the client is still in its transaction (x, multi=
// the commands queued, cmd=exec). The lines are redis-server 7.0.15's.
func TestClientListCmdField(t *testing.T) {
	const unknown = "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
	tests := []struct {
		name  string
		req   string
		reply string
		want  string // flags, multi and cmd seen by another client
	}{
		{name: "unknown", req: "PING\r\nNOSUCH\r\n", reply: "+PONG\r\n" + unknown, want: "flags=N multi=-1 cmd=NULL"},
		{name: "unknown in multi", req: "MULTI\r\nNOSUCH\r\n", reply: "+OK\r\n" + unknown, want: "flags=x multi=0 cmd=NULL"},
		{name: "queued", req: "MULTI\r\nGET k\r\n", reply: "+OK\r\n+QUEUED\r\n", want: "flags=x multi=1 cmd=get"},
		{name: "queued then unknown", req: "MULTI\r\nGET k\r\nNOSUCH\r\n", reply: "+OK\r\n+QUEUED\r\n" + unknown, want: "flags=x multi=1 cmd=NULL"},
		{name: "queued subcommand", req: "MULTI\r\nCLIENT SETNAME n\r\n", reply: "+OK\r\n+QUEUED\r\n", want: "flags=x multi=1 cmd=client|setname"},
		{name: "unknown subcommand in multi", req: "MULTI\r\nCLIENT NOSUCH\r\n",
			reply: "+OK\r\n-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n", want: "flags=x multi=0 cmd=NULL"},
		{name: "subcommand arity in multi", req: "MULTI\r\nCONFIG GET\r\n",
			reply: "+OK\r\n-ERR wrong number of arguments for 'config|get' command\r\n", want: "flags=x multi=0 cmd=config|get"},
		{name: "wrong arity in multi", req: "MULTI\r\nGET\r\n", reply: "+OK\r\n-ERR wrong number of arguments for 'get' command\r\n",
			want: "flags=x multi=0 cmd=get"},
		{name: "wrong arity", req: "PING\r\nGET\r\n", reply: "+PONG\r\n-ERR wrong number of arguments for 'get' command\r\n",
			want: "flags=N multi=-1 cmd=get"},
		{name: "not allowed in multi", req: "MULTI\r\nWATCH k\r\n", reply: "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n",
			want: "flags=x multi=0 cmd=watch"},
		{name: "unknown then get", req: "NOSUCH\r\nGET k\r\n", reply: unknown + "$-1\r\n", want: "flags=N multi=-1 cmd=get"},
		{name: "exec aborted", req: "MULTI\r\nNOSUCH\r\nEXEC\r\n",
			reply: "+OK\r\n" + unknown + "-EXECABORT Transaction discarded because of previous errors.\r\n", want: "flags=N multi=-1 cmd=exec"},
		{name: "exec", req: "MULTI\r\nGET k\r\nEXEC\r\n", reply: "+OK\r\n+QUEUED\r\n*1\r\n$-1\r\n", want: "flags=N multi=-1 cmd=exec"},
	}
	for _, loops := range loopModes {
		for _, tc := range tests {
			t.Run(loops.name+"/"+tc.name, func(t *testing.T) {
				e := startServer(t, func(c *Config) { c.EventLoops = loops.n })
				x := e.raw()
				ids := strconv.FormatInt(clientID(t, x), 10)
				x.roundTrip(tc.req, tc.reply)
				other := e.raw()
				if _, err := other.nc.Write([]byte("CLIENT LIST ID " + ids + "\r\n")); err != nil {
					t.Fatal(err)
				}
				if got := clientFields(bulkReply(t, bufio.NewReader(other.nc))); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
	}
}

// TestClientInfoInsideExec: CLIENT INFO run by EXEC shows the client in
// its transaction, as redis-server 7.0.15: flags=x, multi= the commands
// queued, cmd=exec; after EXEC, flags=N multi=-1.
func TestClientInfoInsideExec(t *testing.T) {
	for _, loops := range loopModes {
		t.Run(loops.name, func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops.n })
			x := e.raw()
			x.roundTrip("MULTI\r\nCLIENT INFO\r\nGET k\r\n", "+OK\r\n+QUEUED\r\n+QUEUED\r\n")
			if _, err := x.nc.Write([]byte("EXEC\r\n")); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(x.nc)
			if l := replyLine(t, br); l != "*2" {
				t.Fatalf("EXEC: %q", l)
			}
			if got, want := clientFields(bulkReply(t, br)), "flags=x multi=2 cmd=exec"; got != want {
				t.Errorf("inside EXEC: %q, want %q", got, want)
			}
			if l := replyLine(t, br); l != "$-1" {
				t.Fatalf("GET: %q", l)
			}
			if _, err := x.nc.Write([]byte("CLIENT INFO\r\n")); err != nil {
				t.Fatal(err)
			}
			if got, want := clientFields(bulkReply(t, br)), "flags=N multi=-1 cmd=client|info"; got != want {
				t.Errorf("after EXEC: %q, want %q", got, want)
			}
		})
	}
}

// An unknown subcommand of a container command is shown as cmd=NULL by
// CLIENT LIST, as an unknown command, while a known subcommand refused
// for its arity is named; replies and cmd= taken from redis-server 7.0.15.
func TestClientListUnknownSubcommand(t *testing.T) {
	tests := []struct {
		req, reply, want string
	}{
		{"CLIENT NOSUCH", "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n", "cmd=NULL"},
		{"CLIENT NOSUCH x", "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n", "cmd=NULL"},
		{"CONFIG NOSUCH", "-ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.\r\n", "cmd=NULL"},
		{"OBJECT NOSUCH", "-ERR unknown subcommand 'NOSUCH'. Try OBJECT HELP.\r\n", "cmd=NULL"},
		{"XINFO NOSUCH", "-ERR unknown subcommand 'NOSUCH'. Try XINFO HELP.\r\n", "cmd=NULL"},
		{"MEMORY nosuch", "-ERR unknown subcommand 'nosuch'. Try MEMORY HELP.\r\n", "cmd=NULL"},
		{"SLOWLOG nosuch", "-ERR unknown subcommand 'nosuch'. Try SLOWLOG HELP.\r\n", "cmd=NULL"},
		{"CONFIG get", "-ERR wrong number of arguments for 'config|get' command\r\n", "cmd=config|get"},
		{"OBJECT encoding", "-ERR wrong number of arguments for 'object|encoding' command\r\n", "cmd=object|encoding"},
		{"CLIENT", "-ERR wrong number of arguments for 'client' command\r\n", "cmd=client"},
		{"CLIENT SETNAME n", "+OK\r\n", "cmd=client|setname"},
		{"CLIENT NO-TOUCH off", "+OK\r\n", "cmd=client|no-touch"},
	}
	e := startServer(t, nil)
	x := e.raw()
	ids := strconv.FormatInt(clientID(t, x), 10)
	other := e.raw()
	br := bufio.NewReader(other.nc)
	for _, tc := range tests {
		x.roundTrip(tc.req+"\r\n", tc.reply)
		if _, err := other.nc.Write([]byte("CLIENT LIST ID " + ids + "\r\n")); err != nil {
			t.Fatal(err)
		}
		line := bulkReply(t, br)
		got := regexp.MustCompile(`cmd=\S+`).FindString(line)
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.req, got, tc.want)
		}
	}
}

// TestUnknownSubcommandNoHistogram: a made-up subcommand, from a client
// or a script, is refused before it runs: no commandstats line and no
// latency histogram (24 KB each), as in Redis.
func TestUnknownSubcommandNoHistogram(t *testing.T) {
	e := startServer(t, nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		e.rdb.Do(ctx, "CLIENT", "NOSUCH"+strconv.Itoa(i))
		e.rdb.Eval(ctx, "return redis.pcall('config', 'nosuch"+strconv.Itoa(i)+"')", nil)
	}
	e.rdb.Do(ctx, "CLIENT", "ID")
	hist := fmt.Sprint(e.rdb.Do(ctx, "LATENCY", "HISTOGRAM").Val())
	if strings.Contains(hist, "nosuch") || !strings.Contains(hist, "client|id") {
		t.Errorf("LATENCY HISTOGRAM %s: want client|id and no made-up subcommand", hist)
	}
	// an unknown subcommand is refused before it runs: no command's
	// call, as in Redis
	if info := e.rdb.Info(ctx, "commandstats").Val(); strings.Contains(info, "nosuch") {
		t.Errorf("INFO commandstats %q: want no made-up subcommand", info)
	}
}
