package rdbcodec

import (
	"errors"
	"math"
	"strconv"
)

// parseScore parses a sorted-set score stored as a string ("inf", "-inf"
// and decimal or exponent forms); NaN is refused.
func parseScore(s []byte) (float64, error) {
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		// out of range parses as ±Inf with an error, as strtod does
		if !errors.Is(err, strconv.ErrRange) {
			return 0, bad("score %q is not a number", s)
		}
	}
	if math.IsNaN(f) {
		return 0, bad("NaN score")
	}
	return f, nil
}

// zset reads a sorted set of type ZSET (scores as strings) or ZSET_2
// (scores as 8 bytes of IEEE 754, little endian).
func (r *reader) zset(binaryScores bool) (*Object, error) {
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	o := &Object{Kind: KindZSet, Elems: make([][]byte, 0, n), Scores: make([]float64, 0, n)}
	for ; n > 0; n-- {
		m, err := r.str()
		if err != nil {
			return nil, err
		}
		var f float64
		if binaryScores {
			s, err := r.take(8)
			if err != nil {
				return nil, err
			}
			f = math.Float64frombits(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
				uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
		} else {
			f, err = r.stringDouble()
			if err != nil {
				return nil, err
			}
		}
		if math.IsNaN(f) {
			return nil, bad("NaN score")
		}
		o.Elems = append(o.Elems, m)
		o.Scores = append(o.Scores, f)
	}
	return checkZSet(o)
}

// stringDouble reads a double of the old encoding: a length byte (253 NaN,
// 254 +inf, 255 -inf) then that many characters.
func (r *reader) stringDouble() (float64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch c {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	s, err := r.take(uint64(c))
	if err != nil {
		return 0, err
	}
	return parseScore(s)
}

// Quicklist node containers (quicklist.h).
const (
	containerPlain  = 1
	containerPacked = 2
)

// quicklist reads a list of type QUICKLIST (nodes are ziplists) or
// QUICKLIST_2 (nodes are a container kind then a listpack, or one plain
// element). Empty nodes are skipped, as Redis does; an empty list is
// refused.
func (r *reader) quicklist(v2 bool) (*Object, error) {
	per := 1
	if v2 {
		per = 2
	}
	n, err := r.count(per)
	if err != nil {
		return nil, err
	}
	var el [][]byte
	for ; n > 0; n-- {
		container := uint64(containerPacked)
		if v2 {
			if container, err = r.plainLen(); err != nil {
				return nil, err
			}
			if container != containerPlain && container != containerPacked {
				return nil, bad("quicklist node container %d", container)
			}
		}
		blob, err := r.str()
		if err != nil {
			return nil, err
		}
		switch {
		case container == containerPlain:
			el = append(el, blob)
		case v2:
			items, err := Listpack(blob)
			if err != nil {
				return nil, err
			}
			el = append(el, itemStrings(items)...)
		default:
			zl, err := Ziplist(blob)
			if err != nil {
				return nil, err
			}
			el = append(el, zl...)
		}
	}
	return collection(KindList, el)
}
