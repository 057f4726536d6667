package resp

import "strconv"

// ParseInt parses a base-10 64-bit integer (an optional sign and digits,
// strconv.ParseInt's syntax) with the same results as strconv.ParseInt.
// Numbers of up to 18 bytes cannot overflow and are parsed here without
// strconv's generic path: numkeys, counters, lengths and integer replies
// are all that short, and they are parsed on every command.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		n, err := strconv.ParseInt(string(b), 10, 64)
		return n, err == nil
	}
	i, neg := 0, false
	switch b[0] {
	case '-':
		i, neg = 1, true
	case '+':
		i = 1
	}
	if i == len(b) {
		return 0, false
	}
	var n int64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	if neg {
		n = -n
	}
	return n, true
}
