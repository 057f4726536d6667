package kv

import (
	"strings"
	"testing"
)

// TestACLAndFunctionRestoreErrors: ACL GENPASS and ACL LOG parse their
// count as Redis's integers (a negative ACL LOG count lists nothing) and
// FUNCTION RESTORE refuses a payload it cannot read with Redis's text;
// redis-server 7.0.15's replies, byte for byte.
func TestACLAndFunctionRestoreErrors(t *testing.T) {
	e := startServer(t, nil)
	r := e.raw()
	const genpassRange = "-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096\r\n"
	const notInt = "-ERR value is not an integer or out of range\r\n"
	const badPayload = "-ERR DUMP payload version or checksum are wrong\r\n"
	// one ACL log entry
	r.roundTrip(respArray("AUTH", "nouser", "x"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	for _, tt := range []struct{ args, want string }{
		{"ACL GENPASS x", notInt},
		{"ACL GENPASS 1.5", notInt},
		{"ACL GENPASS 99999999999999999999", notInt},
		{"ACL GENPASS 0", genpassRange},
		{"ACL GENPASS -1", genpassRange},
		{"ACL GENPASS 4097", genpassRange},
		{"ACL LOG x", notInt},
		{"ACL LOG 1.5", notInt},
		{"ACL LOG -1", "*0\r\n"},
		{"ACL LOG 0", "*0\r\n"},
		{"FUNCTION RESTORE x", badPayload},
		{"FUNCTION RESTORE abcdefghijklmn", badPayload},
		{"FUNCTION RESTORE x REPLACE", badPayload},
	} {
		if got := untilPong(t, r, respArray(strings.Fields(tt.args)...)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.args, got, tt.want)
		}
	}
}
