package kv

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

func cmdBytes(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return resp.AppendCommand(nil, b...)
}

// nullConn is a net.Conn that discards writes, for driving a Client
// without a socket.
type nullConn struct{ net.Conn }

func (nullConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nullConn) Read(b []byte) (int, error)       { return 0, io.EOF }
func (nullConn) Close() error                     { return nil }
func (nullConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nullConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (nullConn) SetReadDeadline(time.Time) error  { return nil }
func (nullConn) SetWriteDeadline(time.Time) error { return nil }
func (nullConn) SetDeadline(time.Time) error      { return nil }

// FuzzCommands runs arbitrary command sequences through the dispatcher
// (every handler's argument parsing): nothing panics, replies are valid
// RESP, and the keyspace stays consistent.
func FuzzCommands(f *testing.F) {
	command.MaxStringSize = 1 << 20
	seeds := [][]string{
		{"SET", "k", "v", "EX", "10", "GET"},
		{"ZADD", "z", "GT", "CH", "1", "a", "2", "b"},
		{"ZRANGE", "z", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1", "WITHSCORES"},
		{"ZRANGE", "z", "[a", "-", "BYLEX", "REV"},
		{"LPOS", "l", "a", "RANK", "-2", "COUNT", "0", "MAXLEN", "5"},
		{"SETRANGE", "s", "100", "x"},
		{"GETRANGE", "s", "-5", "-1"},
		{"LMPOP", "2", "a", "b", "LEFT", "COUNT", "3"},
		{"SINTERCARD", "2", "a", "b", "LIMIT", "1"},
		{"EXPIRE", "k", "100", "GT"},
		{"SCAN", "0", "MATCH", "k*", "COUNT", "5", "TYPE", "string"},
		{"HRANDFIELD", "h", "-5", "WITHVALUES"},
		{"OBJECT", "ENCODING", "k"},
		{"CONFIG", "GET", "*"},
		{"COMMAND", "GETKEYS", "SET", "a", "b"},
		{"MULTI"}, {"EXEC"}, {"WATCH", "k"},
		{"KEYS", "[a-"},
		{"XADD", "x", "1-0", "f", "v"}, {"XGROUP", "CREATE", "x", "g", "0"},
		{"XCLAIM", "x", "g", "c", "0", "1-0", "FORCE", "JUSTID", "LASTID", "1-0", "ENTRIESREAD", "1"},
		{"UNLINK", "x", "l"}, {"FLUSHALL", "ASYNC"},
	}
	for _, s := range seeds {
		f.Add(cmdBytes(s...))
	}
	f.Add([]byte("RPUSH l a b c\r\nLINSERT l BEFORE b x\r\nLTRIM l 1 -1\r\nSPOP s 3\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Logger = nil
		cfg.ActiveExpireHz = 0
		cfg.EventLoops = -1
		cfg.Clock = newFakeClock()
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		c := newClient(s, nullConn{})
		c.inLoop = true // blocking commands return instead of waiting
		c.rbuf = append([]byte(nil), data...)
		c.rend = len(c.rbuf)
		for c.rstart < c.rend {
			args, n, err := resp.ParseCommand(c.rbuf[c.rstart:c.rend], c.Args)
			if err != nil || n == 0 {
				break
			}
			c.rstart += n
			c.Args = args
			if len(args) == 0 {
				continue
			}
			if lc := string(command.LowerInto(nil, args[0])); lc == "save" || lc == "bgsave" || lc == "bgrewriteaof" {
				continue
			}
			c.detach = false
			s.dispatch(c)
		}
		// every reply must parse as RESP
		for b := c.W.B; len(b) > 0; {
			n := respValueLen(b)
			if n <= 0 {
				t.Fatalf("invalid reply bytes: %q", b)
			}
			b = b[n:]
		}
		if c.multi {
			c.discardMulti()
		}
		c.unwatchAll()
		if n := s.ks.Len(); n < 0 {
			t.Fatalf("negative key count %d", n)
		}
	})
}

// respValueLen returns the length of the RESP value at the start of b, or
// 0 if it is not one.
func respValueLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return 0
	}
	line := string(b[1:end])
	pos := end + 2
	switch b[0] {
	case '+', '-', ':', ',', '#', '_':
		return pos
	case '$', '=':
		n, err := strconv.Atoi(line)
		if err != nil {
			return 0
		}
		if n < 0 {
			return pos
		}
		if pos+n+2 > len(b) {
			return 0
		}
		return pos + n + 2
	case '*', '%', '~':
		n, err := strconv.Atoi(line)
		if err != nil {
			return 0
		}
		if b[0] == '%' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			m := respValueLen(b[pos:])
			if m == 0 {
				return 0
			}
			pos += m
		}
		return pos
	}
	return 0
}
