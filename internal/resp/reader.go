// Package resp encodes and decodes the Redis serialization protocol (RESP2
// and RESP3) as gantry's peers speak it.
//
// The parser works on a caller-owned buffer and returns arguments as slices
// into it, so a connection can parse a whole pipeline without allocating; the
// arguments are valid until the caller reuses the buffer.
package resp

import (
	"bytes"
	"strconv"
)

// Limits of the parser, as Redis applies them.
const (
	MaxInline    = 64 * 1024         // longest inline command line
	MaxBulk      = 512 * 1024 * 1024 // largest proto-max-bulk-len (and its default)
	MaxMultibulk = 1 << 24           // most arguments in one command
	// A client that has not authenticated while a password is set may
	// send at most MaxUnauthMultibulk arguments of at most MaxUnauthBulk
	// bytes (Redis 7's caps), so it cannot make the server buffer much
	// before it proves it knows the password.
	MaxUnauthMultibulk = 10
	MaxUnauthBulk      = 16384
)

// Limits are a connection's limits on what it may send.
type Limits struct {
	// MaxBulk is the longest bulk string (proto-max-bulk-len); 0, or more
	// than the package's MaxBulk, means MaxBulk.
	MaxBulk int64
	// Unauthenticated applies the caps on clients that have not
	// authenticated (MaxUnauthMultibulk, MaxUnauthBulk).
	Unauthenticated bool
}

// maxes returns the largest argument count and bulk length.
func (l Limits) maxes() (count, bulk int64) {
	count, bulk = MaxMultibulk, MaxBulk
	if l.MaxBulk > 0 && l.MaxBulk < bulk {
		bulk = l.MaxBulk
	}
	if l.Unauthenticated {
		count, bulk = MaxUnauthMultibulk, min(bulk, MaxUnauthBulk)
	}
	return count, bulk
}

// bounds returns the largest argument count and bulk length and the
// error messages for going over them.
func (l Limits) bounds() (count, bulk int64, overCount, overBulk string) {
	count, bulk = l.maxes()
	overCount, overBulk = "invalid multibulk length", "invalid bulk length"
	if l.Unauthenticated {
		overCount = "unauthenticated multibulk length"
		if l.MaxBulk <= 0 || l.MaxBulk > MaxUnauthBulk { // the cap is the unauthenticated one
			overBulk = "unauthenticated bulk length"
		}
	}
	return count, bulk, overCount, overBulk
}

// ProtocolError is a malformed request; the server replies
// "-ERR Protocol error: <msg>" and closes the connection, as Redis does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// ParseCommand parses one command (a RESP array of bulk strings, or an inline
// command line) from the start of buf. It appends the arguments to dst[:0]
// and returns them with the number of bytes consumed. When buf holds only a
// part of a command it returns n == 0 and a nil error: read more and retry.
// An empty inline line or an empty array yields no arguments and n > 0.
func ParseCommand(buf []byte, dst [][]byte) (args [][]byte, n int, err error) {
	return ParseCommandLimits(buf, dst, Limits{})
}

// ParseCommandLimits is ParseCommand with a connection's limits: a count
// or a length over them is a ProtocolError as soon as its header is read,
// before any of the payload it announces.
func ParseCommandLimits(buf []byte, dst [][]byte, lim Limits) (args [][]byte, n int, err error) {
	args = dst[:0]
	if len(buf) == 0 {
		return args, 0, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, args)
	}
	maxCount, maxBulk := lim.maxes()
	count, pos, ok := shortLen(buf, 1)
	if !ok || count > maxCount {
		_, _, overCount, _ := lim.bounds()
		count, pos, err = parseLen(buf, 1, maxCount, "invalid multibulk length", overCount)
		if err != nil || pos == 0 {
			return args, 0, err
		}
	}
	for i := int64(0); i < count; i++ { // a count of -1 (null array) is empty
		if pos >= len(buf) {
			return args[:0], 0, nil
		}
		if buf[pos] != '$' {
			return args, 0, &ProtocolError{"expected '$', got '" + printable(buf[pos]) + "'"}
		}
		size, p, ok := shortLen(buf, pos+1)
		if !ok || size > maxBulk {
			_, _, _, overBulk := lim.bounds()
			size, p, err = parseLen(buf, pos+1, maxBulk, "invalid bulk length", overBulk)
			if err != nil || p == 0 {
				return args[:0], 0, err
			}
		}
		if size < 0 {
			return args, 0, &ProtocolError{"invalid bulk length"}
		}
		end := p + int(size)
		if end+2 > len(buf) {
			return args[:0], 0, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return args, 0, &ProtocolError{"invalid bulk terminator"}
		}
		args = append(args, buf[p:end:end])
		pos = end + 2
	}
	return args, pos, nil
}

// parseLen reads an integer terminated by CRLF starting at buf[pos]. It
// returns the value and the position after the CRLF, or pos 0 when the line
// is not complete yet. A negative count (-1, a null array, or any other,
// as Redis) means no arguments.
// A malformed line is the error what, a value over limit the error over.
// It is the parser's hot path: one pass, no search, no strconv.
func parseLen(buf []byte, pos int, limit int64, what, over string) (int64, int, error) {
	i := pos
	neg := i < len(buf) && buf[i] == '-'
	if neg {
		i++
	}
	start := i
	var v int64
	for i < len(buf) {
		c := buf[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		if v > limit {
			return 0, 0, &ProtocolError{over}
		}
		i++
	}
	if i+1 >= len(buf) { // the line is not complete
		if i < len(buf) && (buf[i] != '\r' || i == start) {
			return 0, 0, &ProtocolError{what}
		}
		return 0, 0, nil
	}
	if buf[i] != '\r' || buf[i+1] != '\n' || i == start {
		return 0, 0, &ProtocolError{what}
	}
	if neg { // an array of length <= 0 is empty, as Redis takes it; a bulk is refused by the caller
		v = -v
	}
	return v, i + 2, nil
}

// shortLen reads a length of one or two digits and its CRLF at buf[i]:
// nearly every count and argument length. ok is false for anything else
// (more digits, a sign, an incomplete or malformed line), which parseLen
// then reads, so the two agree on every input (TestShortLen).
func shortLen(buf []byte, i int) (v int64, next int, ok bool) {
	if i+2 >= len(buf) {
		return 0, 0, false
	}
	d0 := buf[i] - '0'
	if d0 > 9 {
		return 0, 0, false
	}
	if buf[i+1] == '\r' {
		if buf[i+2] != '\n' {
			return 0, 0, false
		}
		return int64(d0), i + 3, true
	}
	d1 := buf[i+1] - '0'
	if d1 > 9 || i+3 >= len(buf) || buf[i+2] != '\r' || buf[i+3] != '\n' {
		return 0, 0, false
	}
	return int64(d0)*10 + int64(d1), i + 4, true
}

func parseInline(buf []byte, args [][]byte) ([][]byte, int, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > MaxInline {
			return args, 0, &ProtocolError{"too big inline request"}
		}
		return args, 0, nil
	}
	line := buf[:i]
	n := i + 1
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// Split on spaces and tabs; double quotes group an argument with
	// backslash escapes, single quotes group verbatim, as redis-cli writes.
	for p := 0; p < len(line); {
		c := line[p]
		if c == ' ' || c == '\t' {
			p++
			continue
		}
		if c == '"' || c == '\'' {
			arg, next, ok := unquote(line, p)
			if !ok {
				return args, 0, &ProtocolError{"unbalanced quotes in request"}
			}
			args = append(args, arg)
			p = next
			continue
		}
		start := p
		for p < len(line) && line[p] != ' ' && line[p] != '\t' {
			p++
		}
		args = append(args, line[start:p:p])
	}
	return args, n, nil
}

// unquote decodes a quoted inline argument starting at line[p]. The decoded
// bytes overwrite the line in place (they are never longer), so no memory is
// allocated.
func unquote(line []byte, p int) ([]byte, int, bool) {
	q := line[p]
	out := line[p:p]
	i := p + 1
	for ; i < len(line); i++ {
		c := line[i]
		if c == q {
			if i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
				return nil, 0, false
			}
			return out[:len(out):len(out)], i + 1, true
		}
		if c == '\\' && q == '"' && i+1 < len(line) {
			i++
			switch line[i] {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'a':
				c = '\a'
			case 'x':
				if i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
					c = hexVal(line[i+1])<<4 | hexVal(line[i+2])
					i += 2
				} else {
					c = 'x'
				}
			default:
				c = line[i]
			}
		} else if c == '\\' && q == '\'' && i+1 < len(line) && line[i+1] == '\'' {
			i++
			c = '\''
		}
		out = append(out, c)
	}
	return nil, 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func printable(c byte) string {
	if c >= 32 && c < 127 {
		return string(c)
	}
	return "\\x" + strconv.FormatUint(uint64(c), 16)
}
