package kv

import (
	"bytes"
	"testing"
	"time"
)

// untilPong sends req then PING and returns what came before the PONG.
func untilPong(t *testing.T, r *rawConn, req string) string {
	t.Helper()
	if _, err := r.nc.Write([]byte(req + "PING\r\n")); err != nil {
		t.Fatal(err)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte("+PONG\r\n")) {
		n, err := r.nc.Read(buf)
		if err != nil {
			t.Fatalf("%q: read: %v (got %q)", req, err, got)
		}
		got = append(got, buf[:n]...)
	}
	return string(got[:len(got)-len("+PONG\r\n")])
}

// TestDebugProtocol: DEBUG PROTOCOL replies each type of the protocol
// byte for byte as redis-server 7.0.15 does, in RESP2 and RESP3.
func TestDebugProtocol(t *testing.T) {
	tests := []struct {
		typ          string
		resp2, resp3 string
	}{
		{"string", "$11\r\nHello World\r\n", "$11\r\nHello World\r\n"},
		{"integer", ":12345\r\n", ":12345\r\n"},
		{"double", "$5\r\n3.141\r\n", ",3.141\r\n"},
		{"bignum", "$37\r\n1234567999999999999999999999999999999\r\n", "(1234567999999999999999999999999999999\r\n"},
		{"null", "$-1\r\n", "_\r\n"},
		{"array", "*3\r\n:0\r\n:1\r\n:2\r\n", "*3\r\n:0\r\n:1\r\n:2\r\n"},
		{"SET", "*3\r\n:0\r\n:1\r\n:2\r\n", "~3\r\n:0\r\n:1\r\n:2\r\n"},
		{"map", "*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"},
		{"attrib", "$39\r\nSome real reply following the attribute\r\n",
			"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n"},
		{"push", "-ERR RESP2 is not supported by this command\r\n",
			">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n"},
		{"verbatim", "$25\r\nThis is a verbatim\nstring\r\n", "=29\r\ntxt:This is a verbatim\nstring\r\n"},
		{"true", ":1\r\n", "#t\r\n"},
		{"false", ":0\r\n", "#f\r\n"},
		{"nosuch", "-ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false\r\n",
			"-ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false\r\n"},
	}
	e := startServer(t, func(c *Config) { c.EnableDebugCommand = "yes" })
	r2, r3 := e.raw(), e.raw()
	untilPong(t, r3, "HELLO 3\r\n")
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			if got := untilPong(t, r2, "DEBUG PROTOCOL "+tc.typ+"\r\n"); got != tc.resp2 {
				t.Errorf("RESP2: %q, want %q", got, tc.resp2)
			}
			if got := untilPong(t, r3, "DEBUG PROTOCOL "+tc.typ+"\r\n"); got != tc.resp3 {
				t.Errorf("RESP3: %q, want %q", got, tc.resp3)
			}
		})
	}
	e.raw().roundTrip("DEBUG PROTOCOL\r\n", "-ERR unknown subcommand or wrong number of arguments for 'PROTOCOL'. Try DEBUG HELP.\r\n")
}
