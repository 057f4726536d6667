package kv

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pipeline sends cmds (inline commands) in one write and returns their
// replies.
func (r *rawConn) pipeline(cmds []string) []string {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(strings.Join(cmds, "\r\n") + "\r\n")); err != nil {
		r.t.Fatal(err)
	}
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(r.nc)
	out := make([]string, len(cmds))
	for i := range cmds {
		v, err := readRESP(br)
		if err != nil {
			r.t.Fatalf("reply %d of %q: %v (%q)", i, cmds, err, v)
		}
		out[i] = v
	}
	return out
}

// infoNum is field's value in an INFO reply, -1 when missing.
func infoNum(info, field string) int64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(field) + `[:=](\d+)`).FindStringSubmatch(info)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// The commands of a pipeline are counted once per batch (tally.go): a
// command of the same pipeline that reads the statistics, and any client
// once the replies are out, sees every command before it counted.
func TestTallyPipeline(t *testing.T) {
	rep := func(cmd string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = cmd
		}
		return out
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	info := []string{"INFO commandstats stats"}
	cases := []struct {
		name string
		cmds []string // sent after an INFO stats that reads the starting total
		// mid: replies of cmds (by index) that contain a string
		mid map[int]string
		// calls of cmdstat_<name> in the INFO at the end of cmds
		calls map[string]int64
		total int64 // total_commands_processed growth from the first INFO to the last
	}{
		{"one command", cat(rep("GET k", 5), info), nil, map[string]int64{"get": 5}, 6},
		{"two commands", cat(rep("GET k", 3), []string{"SET k v"}, rep("GET k", 2), info), nil,
			map[string]int64{"get": 5, "set": 1}, 7},
		// refused commands are not counted (redis-server 7.0.15: 3)
		{"refused ones", cat([]string{"GET k", "NOSUCH", "GET", "GET k"}, info), nil,
			map[string]int64{"get": 2}, 3},
		{"reset between", cat(rep("GET k", 3), []string{"CONFIG RESETSTAT"}, rep("GET k", 2), info), nil,
			map[string]int64{"get": 2}, -1},
		{"stats read mid-pipeline", cat(rep("INCR n", 4), []string{"LATENCY HISTOGRAM incr"}, rep("INCR n", 2), info),
			map[int]string{4: "$5\r\ncalls\r\n:4\r\n"},
			map[string]int64{"incr": 6, "latency|histogram": 1}, 8},
	}
	for _, loops := range []int{1, -1} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("loops=%d/%s", loops, tc.name), func(t *testing.T) {
				e := startServer(t, func(c *Config) { c.EventLoops = loops })
				replies := e.raw().pipeline(append([]string{"INFO stats"}, tc.cmds...))
				first, last := replies[0], replies[len(replies)-1]
				for i, want := range tc.mid {
					if !strings.Contains(replies[i+1], want) {
						t.Errorf("reply to %q: %q, want it to contain %q", tc.cmds[i], replies[i+1], want)
					}
				}
				for name, want := range tc.calls {
					if got := infoNum(last, "cmdstat_"+name+":calls"); got != want {
						t.Errorf("cmdstat_%s calls %d, want %d", name, got, want)
					}
				}
				if tc.total >= 0 {
					t0 := infoNum(first, "total_commands_processed")
					if got := infoNum(last, "total_commands_processed") - t0; got != tc.total {
						t.Errorf("total_commands_processed grew by %d, want %d", got, tc.total)
					}
				}
				// once the replies are out, every client sees the batch counted
				other := e.raw().pipeline([]string{"INFO commandstats"})[0]
				for name, want := range tc.calls {
					if got := infoNum(other, "cmdstat_"+name+":calls"); got != want {
						t.Errorf("another client: cmdstat_%s calls %d, want %d", name, got, want)
					}
				}
			})
		}
	}
}

// A latency histogram is the sum of the batch's calls.
func TestTallyHistogram(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EventLoops = 1 })
	r := e.raw()
	cmds := make([]string, 20)
	for i := range cmds {
		cmds[i] = "PING"
	}
	r.pipeline(cmds)
	h := e.raw().pipeline([]string{"LATENCY HISTOGRAM ping"})[0]
	if !strings.Contains(h, "$5\r\ncalls\r\n:20\r\n") {
		t.Errorf("LATENCY HISTOGRAM ping: %q, want 20 calls", h)
	}
}

// CLIENT INFO's idle is the time since the client's last command, which
// for the client asking is this command: 0.
func TestClientIdleOwnCommand(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(fmt.Sprint("loops=", loops), func(t *testing.T) {
			e := startServer(t, func(c *Config) { c.EventLoops = loops })
			r := e.raw()
			r.pipeline([]string{"PING"})
			e.clock.Advance(10 * time.Second)
			info := r.pipeline([]string{"CLIENT INFO"})[0]
			if got := infoNum(strings.ReplaceAll(info, " ", "\n"), "idle"); got != 0 {
				t.Errorf("CLIENT INFO after 10 s: idle=%d, want 0 (%s)", got, info)
			}
			e.clock.Advance(5 * time.Second)
			list := e.raw().pipeline([]string{"CLIENT LIST"})[0]
			if !strings.Contains(list, "idle=5 ") {
				t.Errorf("CLIENT LIST 5 s later does not show the first client idle=5:\n%s", list)
			}
		})
	}
}
