package kv

import (
	"math"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// COMMAND GETKEYS and GETKEYSANDFLAGS find keys as redis-server 7.0.15's
// getKeysFromCommandWithSpecs: the command's key specs first, and when a
// spec cannot be followed (a numkeys that is not a strict integer or
// leaves the arguments, an incomplete spec) the command's own getkeys
// function, which reads numkeys with C's atoi and lists the keys in its
// own order, with no flags. This is only COMMAND's answer: the
// dispatcher's extraction (Command.GetKeys, which locks the shards a
// handler touches) is left as it is, the handler replying the syntax
// error.

// redisGetKeysSpecs are the commands whose keys COMMAND GETKEYS finds by
// Redis's specs and getkeys functions rather than Command.GetKeys.
var redisGetKeysSpecs = func() map[string]func(args [][]byte) (pos []int, noFlags bool) {
	m := map[string]func(args [][]byte) ([]int, bool){}
	numkeys := func(idx, store int) func(args [][]byte) ([]int, bool) {
		return func(args [][]byte) ([]int, bool) {
			if pos, ok := numkeysSpec(args, idx, store); ok {
				return pos, false
			}
			return genericGetKeys(args, store, idx), true
		}
	}
	for _, n := range []string{"zunionstore", "zinterstore", "zdiffstore"} {
		m[n] = numkeys(2, 1)
	}
	for _, n := range []string{"zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop"} {
		m[n] = numkeys(1, 0)
	}
	for _, n := range []string{"blmpop", "bzmpop", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"} {
		m[n] = numkeys(2, 0)
	}
	xread := func(from int) func(args [][]byte) ([]int, bool) {
		return func(args [][]byte) ([]int, bool) {
			first, found := keywordSearch(args, "streams", from)
			if !found {
				return nil, false
			}
			// range: lastkey -1, keystep 1, limit 2 (keys then IDs)
			last := first + (len(args)-first)/2 - 1
			if last < first || last >= len(args) {
				return xreadGetKeys(args), true
			}
			return span(first, last), false
		}
	}
	m["xread"] = xread(1)
	m["xreadgroup"] = xread(4)
	georadius := func(from int) func(args [][]byte) ([]int, bool) {
		return func(args [][]byte) ([]int, bool) {
			pos := []int{1}
			for _, kw := range []string{"store", "storedist"} {
				if first, found := keywordSearch(args, kw, from); found {
					pos = append(pos, first)
				}
			}
			return pos, false
		}
	}
	m["georadius"] = georadius(6)
	m["georadiusbymember"] = georadius(5)
	m["migrate"] = func(args [][]byte) ([]int, bool) {
		// spec 0: the key at 3; spec 1: after KEYS searched from the
		// end, incomplete, so that Redis falls back to migrateGetKeys
		if _, found := keywordSearch(args, "keys", -2); !found {
			return []int{3}, false
		}
		return migrateGetKeys(args), false
	}
	return m
}()

// span lists the positions first..last.
func span(first, last int) []int {
	pos := make([]int, 0, last-first+1)
	for i := first; i <= last; i++ {
		pos = append(pos, i)
	}
	return pos
}

// numkeysSpec follows Redis's key specs of a numkeys command: the key at
// store (when > 0), then the keynum spec at idx: numkeys a strict integer
// (string2ll), not negative, taken as a C int, with every key inside the
// arguments and at least one. ok false: Redis's invalid spec.
func numkeysSpec(args [][]byte, idx, store int) (pos []int, ok bool) {
	if store > 0 {
		pos = append(pos, store)
	}
	if idx >= len(args) {
		return nil, false
	}
	n, isInt := string2ll(args[idx])
	if !isInt || n < 0 {
		return nil, false
	}
	first := idx + 1
	last := first + int(int32(n)) - 1 // Redis's (int)numkeys
	if last >= len(args) || last < first || first >= len(args) {
		return nil, false
	}
	return append(pos, span(first, last)...), true
}

// string2ll is Redis's strict integer parsing: an optional minus, no
// plus, no space and no leading zero, at most 20 bytes, in 64 bits.
func string2ll(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var u uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' || u > (math.MaxUint64-uint64(ch-'0'))/10 {
			return 0, false
		}
		u = u*10 + uint64(ch-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), true //nolint:gosec // two's complement: -2^63 too
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	}
	return 0, false
}

// genericGetKeys is Redis's genericGetKeys(store, numIdx, numIdx+1, 1):
// numkeys read with atoi, the keys and then the destination; none when
// numkeys is below 1 or more than the arguments left.
func genericGetKeys(args [][]byte, store, numIdx int) []int {
	first := numIdx + 1
	n := cAtoiInt(args[numIdx])
	if n < 1 || n > len(args)-first {
		return nil
	}
	pos := span(first, first+n-1)
	if store > 0 {
		pos = append(pos, store)
	}
	return pos
}

// cAtoiInt is glibc's atoi (DEBUG's arguments, numkeys in getkeys):
// strtol (saturating at the 64-bit bounds) cast to a 32-bit int.
func cAtoiInt(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	var u uint64
	over := false
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			over = true
			continue
		}
		u = u*10 + d
	}
	var v int64
	switch {
	case neg && (over || u > 1<<63):
		v = math.MinInt64
	case neg:
		v = int64(-u) //nolint:gosec // two's complement, as strtol's result
	case over || u > math.MaxInt64:
		v = math.MaxInt64
	default:
		v = int64(u)
	}
	return int(int32(v)) //nolint:gosec // C's conversion of a long to an int
}

// keywordSearch is Redis's begin_search keyword: from index from up to
// the one before last (from > 0), or from len(args)+from down to 1; the
// position after the keyword.
func keywordSearch(args [][]byte, kw string, from int) (first int, found bool) {
	if from > 0 {
		for i := from; i < len(args)-1; i++ {
			if command.EqualFold(args[i], kw) {
				return i + 1, true
			}
		}
		return 0, false
	}
	for i := len(args) + from; i >= 1 && i < len(args); i-- {
		if command.EqualFold(args[i], kw) {
			return i + 1, true
		}
	}
	return 0, false
}

// xreadGetKeys is Redis's: the options up to STREAMS, then half of the
// arguments after it.
func xreadGetKeys(args [][]byte) []int {
	streams := -1
loop:
	for i := 1; i < len(args); i++ {
		switch {
		case command.EqualFold(args[i], "block"), command.EqualFold(args[i], "count"):
			i++
		case command.EqualFold(args[i], "group"):
			i += 2
		case command.EqualFold(args[i], "noack"):
		case command.EqualFold(args[i], "streams"):
			streams = i
			break loop
		default:
			break loop
		}
	}
	num := len(args) - streams - 1
	if streams == -1 || num == 0 || num%2 != 0 {
		return nil
	}
	return span(streams+1, streams+num/2)
}

// migrateGetKeys is Redis's: the key at 3, or with KEYS (only after an
// empty key) the arguments after it; COPY, REPLACE, AUTH and AUTH2 are
// skipped with their arguments.
func migrateGetKeys(args [][]byte) []int {
	first, num := 3, 1
	if len(args) > 6 {
	loop:
		for i := 6; i < len(args); i++ {
			switch {
			case command.EqualFold(args[i], "keys"):
				if len(args[3]) > 0 {
					return nil
				}
				first, num = i+1, len(args)-i-1
				break loop
			case command.EqualFold(args[i], "auth"):
				i++
			case command.EqualFold(args[i], "auth2"):
				i += 2
			}
		}
	}
	if num == 0 {
		return nil
	}
	return span(first, first+num-1)
}
