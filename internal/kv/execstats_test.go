package kv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/resp"
	"github.com/redis/go-redis/v9"
)

// execStatsStep is a pipeline of commands sent on one of a case's
// connections (0 is the one whose commands are counted, the others
// change the server: ACL SETUSER, CONFIG SET), its replies read.
type execStatsStep struct {
	conn int
	cmds [][]string
}

// The statistics of commands run by EXEC and by scripts, queued by MULTI
// and refused before they run, as redis-server 7.0.15 keeps them. Each
// case ran on redis-server 7.0.15 as here (FLUSHALL, the setup, CONFIG
// RESETSTAT, the steps, then INFO from another connection): the replies
// and the commandstats (without the times), errorstats,
// total_commands_processed and total_error_replies lines are its own.
// Redis counts a command in total_commands_processed when call() runs it:
// each command EXEC or a script runs, not a queued or refused one; a
// known command refused before it runs is a rejected call, an unknown
// one only an error.
func TestExecStats(t *testing.T) {
	cases := []struct {
		name    string
		setup   []string
		steps   []execStatsStep
		replies string
		stats   []string
		cluster bool // with fakeHook: keys not starting with "mine" are moved
	}{
		{
			name:  "exec counts its commands",
			setup: []string{"SET s abc"},
			steps: []execStatsStep{
				{0, [][]string{{"MULTI"}, {"INCR", "s"}, {"CLIENT", "FOO"}, {"SET", "a", "1"}, {"EXEC"}, {"MULTI"}, {"INCR", "s"}, {"EXEC"}}},
			},
			replies: "+OK\r\n+QUEUED\r\n-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n+QUEUED\r\n*1\r\n-ERR value is not an integer or out of range\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=2,rejected_calls=0,failed_calls=1",
				"cmdstat_incr:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_multi:calls=2,rejected_calls=0,failed_calls=0",
				"errorstat_ERR:count=2",
				"errorstat_EXECABORT:count=1",
				"total_commands_processed:6",
				"total_error_replies:3",
			},
		},
		{
			name: "refused outside MULTI",
			steps: []execStatsStep{
				{0, [][]string{{"GET"}, {"SET", "a"}, {"NOSUCH", "x"}, {"CLIENT", "FOO"}, {"CLIENT"}, {"CONFIG", "GET"}}},
			},
			replies: "-ERR wrong number of arguments for 'get' command\r\n-ERR wrong number of arguments for 'set' command\r\n-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n-ERR wrong number of arguments for 'client' command\r\n-ERR wrong number of arguments for 'config|get' command\r\n",
			stats: []string{
				"cmdstat_client:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_config|get:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_get:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_set:calls=0,rejected_calls=1,failed_calls=0",
				"errorstat_ERR:count=6",
				"total_commands_processed:1",
				"total_error_replies:6",
			},
		},
		{
			name: "refused at queue time",
			steps: []execStatsStep{
				{0, [][]string{{"MULTI"}, {"GET"}, {"SET", "a", "1"}, {"NOSUCHCMD"}, {"EXEC"}}},
			},
			replies: "+OK\r\n-ERR wrong number of arguments for 'get' command\r\n+QUEUED\r\n-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_get:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_ERR:count=2",
				"errorstat_EXECABORT:count=1",
				"total_commands_processed:3",
				"total_error_replies:3",
			},
		},
		{
			name: "exec commands and errors",
			steps: []execStatsStep{
				{0, [][]string{{"MULTI"}, {"SET", "a", "1"}, {"GET", "a"}, {"INCR", "a"}, {"LPUSH", "a", "x"}, {"EXEC"}}},
			},
			replies: "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n$1\r\n1\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_get:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_incr:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_lpush:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_WRONGTYPE:count=1",
				"total_commands_processed:7",
				"total_error_replies:1",
			},
		},
		{
			name: "watch aborted",
			steps: []execStatsStep{
				{0, [][]string{{"WATCH", "k"}}},
				{1, [][]string{{"SET", "k", "1"}}},
				{0, [][]string{{"MULTI"}, {"SET", "k", "2"}, {"EXEC"}}},
			},
			replies: "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_watch:calls=1,rejected_calls=0,failed_calls=0",
				"total_commands_processed:5",
				"total_error_replies:0",
			},
		},
		{
			name: "tx commands refused",
			steps: []execStatsStep{
				{0, [][]string{{"EXEC"}, {"DISCARD"}, {"MULTI"}, {"SET", "a", "1"}, {"DISCARD"}, {"MULTI"}, {"WATCH", "x"}, {"MULTI"}, {"EXEC"}}},
			},
			replies: "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n+QUEUED\r\n+OK\r\n+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n-ERR MULTI calls can not be nested\r\n*0\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_discard:calls=2,rejected_calls=0,failed_calls=1",
				"cmdstat_exec:calls=2,rejected_calls=0,failed_calls=1",
				"cmdstat_multi:calls=3,rejected_calls=0,failed_calls=1",
				"cmdstat_watch:calls=1,rejected_calls=0,failed_calls=1",
				"errorstat_ERR:count=4",
				"total_commands_processed:9",
				"total_error_replies:4",
			},
		},
		{
			name: "script commands",
			steps: []execStatsStep{
				{0, [][]string{{"EVAL", "redis.call('set','x','1'); redis.call('get','x'); return redis.call('incr','nope2') ", "0"}, {"EVAL", "return redis.call('incr','x')", "0"}, {"EVAL", "redis.call('set','y','a'); return redis.call('incr','y')", "0"}, {"EVAL", "return redis.call('nosuch')", "0"}, {"EVAL", "return redis.call('get')", "0"}, {"EVAL", "return redis.pcall('incr','y')", "0"}}},
			},
			replies: ":1\r\n:2\r\n-ERR value is not an integer or out of range script: c040ece5c5feddc31293f527bda906cf87ba2da5, on @user_script:1.\r\n-ERR Unknown Redis command called from script script: 206396248e12c6e742fd7296250433c8d7343b74, on @user_script:1.\r\n-ERR Wrong number of args calling Redis command from script script: f187dee77f607f7cff00bbabc9df38507582c78d, on @user_script:1.\r\n-ERR value is not an integer or out of range\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_eval:calls=6,rejected_calls=0,failed_calls=4",
				"cmdstat_get:calls=1,rejected_calls=1,failed_calls=0",
				"cmdstat_incr:calls=4,rejected_calls=0,failed_calls=2",
				"cmdstat_set:calls=2,rejected_calls=0,failed_calls=0",
				"errorstat_ERR:count=4",
				"total_commands_processed:14",
				"total_error_replies:4",
			},
		},
		{
			name:  "scripts inside exec",
			setup: []string{"SET s abc"},
			steps: []execStatsStep{
				{0, [][]string{{"MULTI"}, {"EVAL", "return redis.call('incr','s')", "0"}, {"EVAL", "return redis.pcall('incr','s')", "0"}, {"EVAL", "return redis.call('nosuch')", "0"}, {"EVAL", "return redis.call('get','s')", "0"}, {"CONFIG", "GET", "maxmemory"}, {"EXEC"}}},
			},
			replies: "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*5\r\n-ERR value is not an integer or out of range script: c243b9f46db13ba8f69da41b45a77708832babed, on @user_script:1.\r\n-ERR value is not an integer or out of range\r\n-ERR Unknown Redis command called from script script: 206396248e12c6e742fd7296250433c8d7343b74, on @user_script:1.\r\n$3\r\nabc\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n",
			stats: []string{
				"cmdstat_config|get:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_eval:calls=4,rejected_calls=0,failed_calls=3",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_get:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_incr:calls=2,rejected_calls=0,failed_calls=2",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_ERR:count=3",
				"total_commands_processed:11",
				"total_error_replies:3",
			},
		},
		{
			name: "acl refusal last in exec",
			steps: []execStatsStep{
				{1, [][]string{{"ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*"}}},
				{0, [][]string{{"AUTH", "u", "x"}, {"MULTI"}, {"SET", "s", "1"}, {"INCR", "s"}}},
				{1, [][]string{{"ACL", "SETUSER", "u", "-incr"}}},
				{0, [][]string{{"EXEC"}}},
			},
			replies: "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n*2\r\n+OK\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n",
			stats: []string{
				"cmdstat_acl|setuser:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_auth:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_NOPERM:count=1",
				"total_commands_processed:7",
				"total_error_replies:1",
			},
		},
		{
			name: "acl refusal inside exec",
			steps: []execStatsStep{
				{1, [][]string{{"ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*"}}},
				{0, [][]string{{"AUTH", "u", "x"}, {"MULTI"}, {"INCR", "s"}, {"SET", "s", "1"}}},
				{1, [][]string{{"ACL", "SETUSER", "u", "-incr"}}},
				{0, [][]string{{"EXEC"}}},
			},
			replies: "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n*2\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n+OK\r\n",
			stats: []string{
				"cmdstat_acl|setuser:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_auth:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_NOPERM:count=1",
				"total_commands_processed:7",
				"total_error_replies:1",
			},
		},
		{
			name: "acl key and channel refusals in exec",
			steps: []execStatsStep{
				{1, [][]string{{"ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*", "&*"}}},
				{0, [][]string{{"AUTH", "u", "x"}, {"MULTI"}, {"SET", "s", "1"}, {"PUBLISH", "ch", "m"}}},
				{1, [][]string{{"ACL", "SETUSER", "u", "resetkeys", "~o*", "resetchannels", "&x"}}},
				{0, [][]string{{"EXEC"}}},
			},
			replies: "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n*2\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to touch the specified keys\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to access one of the channels used as arguments\r\n",
			stats: []string{
				"cmdstat_acl|setuser:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_auth:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_NOPERM:count=2",
				"total_commands_processed:6",
				"total_error_replies:2",
			},
		},
		{
			name: "acl refusal at queue time",
			steps: []execStatsStep{
				{1, [][]string{{"ACL", "SETUSER", "u", "on", "nopass", "+@all", "-incr", "~*"}}},
				{0, [][]string{{"AUTH", "u", "x"}, {"INCR", "s"}, {"MULTI"}, {"INCR", "s"}, {"SET", "a", "1"}, {"EXEC"}}},
			},
			replies: "+OK\r\n+OK\r\n-NOPERM this user has no permissions to run the 'incr' command\r\n+OK\r\n-NOPERM this user has no permissions to run the 'incr' command\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
			stats: []string{
				"cmdstat_acl|setuser:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_auth:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=1",
				"cmdstat_incr:calls=0,rejected_calls=2,failed_calls=0",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"errorstat_EXECABORT:count=1",
				"errorstat_NOPERM:count=2",
				"total_commands_processed:5",
				"total_error_replies:3",
			},
		},
		{
			name: "noauth",
			steps: []execStatsStep{
				{1, [][]string{{"CONFIG", "SET", "requirepass", "pw"}}},
				{2, [][]string{{"GET", "a"}, {"NOSUCH"}, {"AUTH", "x", "y"}, {"PING"}, {"MULTI"}}},
				{1, [][]string{{"AUTH", "pw"}, {"CONFIG", "SET", "requirepass", ""}}},
			},
			replies: "+OK\r\n-NOAUTH Authentication required.\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n",
			stats: []string{
				"cmdstat_auth:calls=2,rejected_calls=0,failed_calls=1",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|set:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_get:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_multi:calls=0,rejected_calls=1,failed_calls=0",
				"cmdstat_ping:calls=0,rejected_calls=1,failed_calls=0",
				"errorstat_ERR:count=1",
				"errorstat_NOAUTH:count=3",
				"errorstat_WRONGPASS:count=1",
				"total_commands_processed:5",
				"total_error_replies:5",
			},
		},
		{
			name:  "oom scripts",
			setup: []string{"SET a 1"},
			steps: []execStatsStep{
				{1, [][]string{{"CONFIG", "SET", "maxmemory", "1"}}},
				{0, [][]string{{"EVAL", "#!lua\nreturn redis.call('set','a','1')", "0"}, {"EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0"}, {"EVAL", "return redis.call('set','a','1')", "0"}}},
				{1, [][]string{{"CONFIG", "SET", "maxmemory", "0"}}},
			},
			replies: "+OK\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n$1\r\n1\r\n-OOM command not allowed when used memory > 'maxmemory'. script: 67ed14c1cb086d8c2fcf91ebe13410ba087fd0f8, on @user_script:1.\r\n+OK\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|set:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_eval:calls=2,rejected_calls=1,failed_calls=1",
				"cmdstat_get:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=0,rejected_calls=1,failed_calls=0",
				"errorstat_OOM:count=2",
				"total_commands_processed:6",
				"total_error_replies:2",
			},
		},
		{
			name:  "oom",
			setup: []string{"SET a 1"},
			steps: []execStatsStep{
				{1, [][]string{{"CONFIG", "SET", "maxmemory", "1"}}},
				{0, [][]string{{"SET", "a", "1"}, {"GET", "a"}, {"MULTI"}, {"SET", "b", "1"}, {"EXEC"}, {"MULTI"}, {"GET", "a"}, {"EXEC"}}},
				{1, [][]string{{"CONFIG", "SET", "maxmemory", "0"}}},
			},
			replies: "+OK\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n$1\r\n1\r\n+OK\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|set:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=2,rejected_calls=0,failed_calls=2",
				"cmdstat_get:calls=1,rejected_calls=1,failed_calls=0",
				"cmdstat_multi:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=0,rejected_calls=2,failed_calls=0",
				"errorstat_EXECABORT:count=2",
				"errorstat_OOM:count=3",
				"total_commands_processed:8",
				"total_error_replies:5",
			},
		},
		{
			// redis-server 7.0.15 in a cluster of two, "a" on the other
			// node (its MOVED names the slot and node: fakeHook's here)
			name:    "cluster redirections",
			cluster: true,
			steps: []execStatsStep{
				{0, [][]string{{"SET", "a", "1"}, {"GET", "a"}, {"SET", "mine1", "1"}, {"MULTI"}, {"SET", "mine1", "2"}, {"GET", "a"}, {"EXEC"}, {"MULTI"}, {"GET", "mine1"}, {"EXEC"}, {"EVAL", "return redis.call('get',KEYS[1])", "1", "a"}, {"EVAL", "return redis.call('get',KEYS[1])", "1", "mine1"}}},
			},
			replies: "-MOVED 1 127.0.0.1:1\r\n-MOVED 1 127.0.0.1:1\r\n+OK\r\n+OK\r\n+QUEUED\r\n-MOVED 1 127.0.0.1:1\r\n-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\n1\r\n-MOVED 1 127.0.0.1:1\r\n$1\r\n1\r\n",
			stats: []string{
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_eval:calls=1,rejected_calls=1,failed_calls=0",
				"cmdstat_exec:calls=2,rejected_calls=0,failed_calls=1",
				"cmdstat_get:calls=2,rejected_calls=2,failed_calls=0",
				"cmdstat_multi:calls=2,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=1,rejected_calls=1,failed_calls=0",
				"errorstat_EXECABORT:count=1",
				"errorstat_MOVED:count=4",
				"total_commands_processed:9",
				"total_error_replies:5",
			},
		},
	}
	for _, loops := range []int{1, -1} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("loops=%d/%s", loops, tc.name), func(t *testing.T) {
				e := startServer(t, func(c *Config) {
					c.EventLoops = loops
					if tc.cluster {
						c.Cluster = &fakeHook{}
					}
				})
				conns := map[int]*statsConn{}
				conn := func(i int) *statsConn {
					if conns[i] == nil {
						conns[i] = e.statsConn()
					}
					return conns[i]
				}
				conn(0).do([]string{"FLUSHALL"})
				for _, s := range tc.setup {
					conn(0).do(strings.Fields(s))
				}
				conn(0).do([]string{"CONFIG", "RESETSTAT"})
				var got strings.Builder
				for _, st := range tc.steps {
					got.WriteString(conn(st.conn).do(st.cmds...))
				}
				if got.String() != tc.replies {
					t.Errorf("replies:\n%q\nwant (redis-server 7.0.15)\n%q", got.String(), tc.replies)
				}
				info := e.statsConn().do([]string{"INFO", "everything"})
				if lines := execStatsLines(info); strings.Join(lines, "\n") != strings.Join(tc.stats, "\n") {
					t.Errorf("INFO:\n%s\nwant (redis-server 7.0.15)\n%s", strings.Join(lines, "\n"), strings.Join(tc.stats, "\n"))
				}
			})
		}
	}
}

// The commands EXEC and scripts run are in the slow log (EXEC itself is
// skip-slowlog), a script's with the address "?:0" of Redis's script
// client, and have latency histograms (INFO latencystats). The entries
// are those redis-server 7.0.15 logged for the same commands
// (slowlog-log-slower-than 0), newest first.
func TestExecStatsSlowlog(t *testing.T) {
	e := startServer(t, nil)
	c := e.statsConn()
	c.do([]string{"CONFIG", "SET", "slowlog-log-slower-than", "0"}, []string{"SLOWLOG", "RESET"})
	c.do([]string{"MULTI"}, []string{"SET", "a", "1"}, []string{"INCR", "a"}, []string{"CLIENT", "ID"}, []string{"EXEC"},
		[]string{"EVAL", "redis.call('set','x','1'); return redis.call('incr','x')", "0"})
	c.do([]string{"CONFIG", "SET", "slowlog-log-slower-than", "10000"})
	me := c.nc.LocalAddr().String()
	want := []struct{ args, addr string }{
		{"EVAL redis.call('set','x','1'); return redis.call('incr','x') 0", me},
		{"incr x", "?:0"},
		{"set x 1", "?:0"},
		{"CLIENT ID", me},
		{"INCR a", me},
		{"SET a 1", me},
		{"MULTI", me},
		{"SLOWLOG RESET", me},
	}
	all, err := e.rdb.SlowLogGet(context.Background(), 20).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []redis.SlowLog // the entries of this test's connection and scripts
	for _, l := range all {
		if l.ClientAddr == me || l.ClientAddr == "?:0" {
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("slow log: %d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		args := strings.Join(got[i].Args, " ")
		if args != w.args || got[i].ClientAddr != w.addr {
			t.Errorf("entry %d: %q from %s, want %q from %s", i, args, got[i].ClientAddr, w.args, w.addr)
		}
	}
	info := e.statsConn().do([]string{"INFO", "latencystats"})
	for _, name := range []string{"set", "incr", "client|id", "exec", "eval"} {
		if !strings.Contains(info, "latency_percentiles_usec_"+name+":") {
			t.Errorf("INFO latencystats has no latency_percentiles_usec_%s:\n%s", name, info)
		}
	}
}

var statsTimes = regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+,`)

// execStatsLines are the commandstats (without their times), errorstats,
// total_commands_processed and total_error_replies lines of an INFO
// reply, sorted.
func execStatsLines(info string) []string {
	var out []string
	for _, l := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(l, "cmdstat_") || strings.HasPrefix(l, "errorstat_") ||
			strings.HasPrefix(l, "total_commands_processed:") || strings.HasPrefix(l, "total_error_replies:") {
			out = append(out, statsTimes.ReplaceAllString(l, ""))
		}
	}
	sort.Strings(out)
	return out
}

// statsConn is a connection sending pipelines of commands.
type statsConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *testEnv) statsConn() *statsConn {
	r := e.raw()
	return &statsConn{t: e.t, nc: r.nc, br: bufio.NewReader(r.nc)}
}

// do sends cmds in one write and returns their replies, concatenated.
func (c *statsConn) do(cmds ...[]string) string {
	c.t.Helper()
	var req []byte
	for _, cmd := range cmds {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		req = resp.AppendCommand(req, args...)
	}
	if _, err := c.nc.Write(req); err != nil {
		c.t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	for range cmds {
		v, err := readRESP(c.br)
		out.WriteString(v)
		if err != nil {
			c.t.Fatalf("%q: %v (%q)", cmds, err, out.String())
		}
	}
	return out.String()
}

// A write held by CLIENT PAUSE WRITE is one call, counted when it runs
// after the pause: the replies and lines are redis-server 7.0.15's for
// the same commands.
func TestExecStatsPausedWrite(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			c, admin := e.statsConn(), e.statsConn()
			id, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(c.do([]string{"CLIENT", "ID"}), ":")), 10, 64)
			c.do([]string{"CONFIG", "RESETSTAT"})
			admin.do([]string{"CLIENT", "PAUSE", "100000", "WRITE"})
			req := resp.AppendCommand(nil, []byte("SET"), []byte("p"), []byte("1"))
			req = resp.AppendCommand(req, []byte("MULTI"))
			req = resp.AppendCommand(req, []byte("SET"), []byte("q"), []byte("1"))
			req = resp.AppendCommand(req, []byte("EXEC"))
			if _, err := c.nc.Write(req); err != nil {
				t.Fatal(err)
			}
			set := e.srv.cmds.Lookup([]byte("set"))
			waitUntil(t, "the SET to meet the pause", func() bool {
				for _, x := range e.srv.clientsSorted() {
					if x.id == id && x.shared.lastCmd.Load() == set {
						return true
					}
				}
				return false
			})
			admin.do([]string{"CLIENT", "UNPAUSE"})
			var got strings.Builder
			for range 4 {
				v, err := readRESP(c.br)
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString(v)
			}
			if want := "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n"; got.String() != want {
				t.Errorf("replies %q, want %q", got.String(), want)
			}
			lines := execStatsLines(e.statsConn().do([]string{"INFO", "everything"}))
			want := []string{
				"cmdstat_client|pause:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_client|unpause:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_config|resetstat:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_exec:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_multi:calls=1,rejected_calls=0,failed_calls=0",
				"cmdstat_set:calls=2,rejected_calls=0,failed_calls=0",
				"total_commands_processed:7",
				"total_error_replies:0",
			}
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("INFO:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
