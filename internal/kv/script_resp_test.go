package kv

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// respArray encodes a command as a RESP array of bulk strings.
func respArray(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// TestScriptReplyProtocols: a script's booleans follow its own protocol
// (redis.setresp), not the client's; a big number is one line in either
// protocol; an attribute before a command's reply is not shown to the
// script. The replies are redis-server 7.0.15's to the same scripts.
func TestScriptReplyProtocols(t *testing.T) {
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	attrib := `redis.setresp(3) return redis.call('debug','protocol','attrib')`
	tests := []struct {
		proto  string
		script string
		want   string
	}{
		{"2", "return false", "$-1\r\n"},
		{"2", "return {false, true}", "*2\r\n$-1\r\n:1\r\n"},
		{"2", "redis.setresp(3) return false", ":0\r\n"},
		{"2", "redis.setresp(3) return true", ":1\r\n"},
		{"2", "redis.setresp(3) return {false, true}", "*2\r\n:0\r\n:1\r\n"},
		{"2", "return {big_number='12\\r\\n34'}", "$6\r\n12  34\r\n"},
		{"2", attrib, "$39\r\nSome real reply following the attribute\r\n"},
		{"2", "redis.setresp(3) local r = redis.call('debug','protocol','attrib') return {type(r), r}",
			"*2\r\n$6\r\nstring\r\n$39\r\nSome real reply following the attribute\r\n"},
		{"3", "return false", "_\r\n"},
		{"3", "return true", ":1\r\n"},
		{"3", "redis.setresp(2) return {false, true}", "*2\r\n_\r\n:1\r\n"},
		{"3", "redis.setresp(3) return {false, true}", "*2\r\n#f\r\n#t\r\n"},
		{"3", "return {big_number='12\\r\\n34'}", "(12  34\r\n"},
		{"3", attrib, "$39\r\nSome real reply following the attribute\r\n"},
	}
	c := e.raw()
	c.roundTrip(respArray("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"), "+OK\r\n")
	for _, proto := range []string{"2", "3"} {
		c := e.raw()
		untilPong(t, c, respArray("HELLO", proto))
		for _, tc := range tests {
			if tc.proto != proto {
				continue
			}
			if got := untilPong(t, c, respArray("EVAL", tc.script, "0")); got != tc.want {
				t.Errorf("RESP%s %q: got %q, want %q", proto, tc.script, got, tc.want)
			}
		}
	}
}

// TestDebugObjectExpiredKey: DEBUG OBJECT shows a key whose expiry has
// passed while active expiry has not taken it (Redis reads its table
// directly), and a script's EXISTS then deletes it, as the suite's
// "Script delete the expired key" checks.
func TestDebugObjectExpiredKey(t *testing.T) {
	clk := newFakeClock()
	e := startServer(t, func(c *Config) {
		c.EnableDebugCommand = "yes"
		c.Clock = clk
	})
	c := e.raw()
	c.roundTrip(respArray("DEBUG", "SET-ACTIVE-EXPIRE", "0"), "+OK\r\n")
	c.roundTrip(respArray("SET", "key", "value", "PX", "1"), "+OK\r\n")
	clk.Advance(5 * time.Millisecond)
	if got := untilPong(t, c, respArray("DEBUG", "OBJECT", "key")); !strings.HasPrefix(got, "+Value at:") {
		t.Fatalf("DEBUG OBJECT of the expired key: %q, want its description", got)
	}
	c.roundTrip(respArray("EVAL", "return redis.call('EXISTS', 'key')", "0"), ":0\r\n")
	c.roundTrip(respArray("DEBUG", "OBJECT", "key"), "-ERR no such key\r\n")
}
