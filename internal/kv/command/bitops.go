package command

import (
	"math/bits"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS,
// BITOP. Bit 0 is the most significant bit of the first byte, as in Redis.
// BITFIELD is in bitfield.go. All of them are deterministic, so they are
// logged as they are.

const errBitOffset = "ERR bit offset is not an integer or out of range"

// bitOffset parses a bit offset; with bitsPerIndex > 0 the "#n" form means
// n*bitsPerIndex. Offsets reaching past proto-max-bulk-len bytes are
// refused, as Redis does (except for a replayed command, which was
// accepted when it ran).
func (c *Ctx) bitOffset(b []byte, bitsPerIndex int) (uint64, bool) {
	hash := len(b) > 0 && b[0] == '#' && bitsPerIndex > 0
	if hash {
		b = b[1:]
	}
	n, ok := parseStrictInt(b)
	if hash && ok {
		if n > (1<<63-1)/int64(bitsPerIndex) || n < 0 {
			ok = false
		}
		n *= int64(bitsPerIndex)
	}
	if !ok || n < 0 || (!c.Replaying && n>>3 >= int64(MaxStringSize)) {
		c.W.Error(errBitOffset)
		return 0, false
	}
	return uint64(n), true
}

// parseStrictInt parses an integer as Redis's string2ll (no sign '+', no
// blanks, no leading zeros).
func parseStrictInt(b []byte) (int64, bool) {
	if len(b) == 0 || b[0] == '+' || (len(b) > 1 && b[0] == '0') || (len(b) > 2 && b[0] == '-' && b[1] == '0') {
		return 0, false
	}
	return ParseInt(b)
}

// stringForBits returns the string of key grown (with zero bytes) to hold
// bit maxBit, creating it when absent; grown reports a new key or a longer
// string. ok is false after replying WRONGTYPE.
func (c *Ctx) stringForBits(key []byte, maxBit uint64) (e *keyspace.Entry, grown bool, ok bool) {
	need := int(maxBit>>3) + 1
	e, ok = c.lookupString(key)
	if !ok {
		return nil, false, false
	}
	if e == nil {
		e = c.KS.AddLocked(key, keyspace.NewString(make([]byte, need), 0))
		return e, true, true
	}
	if b := e.Bytes(); len(b) < need {
		nb := make([]byte, need, max(need, 2*len(b)))
		copy(nb, b)
		e.SetBytes(nb)
		grown = true
	}
	return e, grown, true
}

// SETBIT key offset value
func cmdSetBit(c *Ctx) {
	off, ok := c.bitOffset(c.Args[2], 0)
	if !ok {
		return
	}
	on, ok := parseStrictInt(c.Args[3])
	if !ok || on&^1 != 0 {
		c.W.Error("ERR bit is not an integer or out of range")
		return
	}
	e, grown, ok := c.stringForBits(c.Args[1], off)
	if !ok {
		return
	}
	b := e.Bytes()
	byt, bit := off>>3, 7-off&7
	old := b[byt] >> bit & 1
	if grown || int64(old) != on {
		b[byt] = b[byt]&^(1<<bit) | byte(on)<<bit
		c.Dirty++
	}
	c.W.Int(int64(old))
}

// GETBIT key offset
func cmdGetBit(c *Ctx) {
	off, ok := c.bitOffset(c.Args[2], 0)
	if !ok {
		return
	}
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	var b []byte
	if e != nil {
		b = e.Bytes()
	}
	if off>>3 >= uint64(len(b)) {
		c.W.Int(0)
		return
	}
	c.W.Int(int64(b[off>>3] >> (7 - off&7) & 1))
}

// bitRange converts BITCOUNT/BITPOS start and end (bytes, or bits with
// isBit) into a byte range and masks of the bits outside the range in the
// first and last byte, as Redis does; empty is start > end.
func bitRange(start, end, totlen int64, isBit bool) (s, e int64, firstMask, lastMask byte) {
	if isBit {
		totlen <<= 3
	}
	if start < 0 {
		start += totlen
	}
	if end < 0 {
		end += totlen
	}
	start, end = max(start, 0), max(end, 0)
	if end >= totlen {
		end = totlen - 1
	}
	if isBit && start <= end {
		firstMask = ^byte(1<<(8-start&7) - 1)
		lastMask = byte(1<<(7-end&7) - 1)
		start >>= 3
		end >>= 3
	}
	return start, end, firstMask, lastMask
}

func (c *Ctx) bitUnit(b []byte) (isBit bool, ok bool) {
	switch {
	case EqualFold(b, "bit"):
		return true, true
	case EqualFold(b, "byte"):
		return false, true
	}
	c.W.Error(ErrSyntax)
	return false, false
}

func popcount(b []byte) int64 {
	var n int
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return int64(n)
}

// BITCOUNT key [start end [BYTE | BIT]]
func cmdBitCount(c *Ctx) {
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil {
		c.W.Int(0)
		return
	}
	b := e.Bytes()
	var start, end int64
	var first, last byte
	switch len(c.Args) {
	case 4, 5:
		if start, ok = c.ArgInt(2); !ok {
			return
		}
		if end, ok = c.ArgInt(3); !ok {
			return
		}
		if start < 0 && end < 0 && start > end {
			c.W.Int(0)
			return
		}
		isBit := false
		if len(c.Args) == 5 {
			if isBit, ok = c.bitUnit(c.Args[4]); !ok {
				return
			}
		}
		start, end, first, last = bitRange(start, end, int64(len(b)), isBit)
	case 2:
		start, end = 0, int64(len(b))-1
	default:
		c.W.Error(ErrSyntax)
		return
	}
	if start > end {
		c.W.Int(0)
		return
	}
	n := popcount(b[start : end+1])
	n -= popcount([]byte{b[start] & first, b[end] & last})
	c.W.Int(n)
}

// BITPOS key bit [start [end [BYTE | BIT]]]
func cmdBitPos(c *Ctx) {
	bit, ok := c.ArgInt(2)
	if !ok {
		return
	}
	if bit != 0 && bit != 1 {
		c.W.Error("ERR The bit argument must be 1 or 0.")
		return
	}
	e, ok := c.lookupString(c.Args[1])
	if !ok {
		return
	}
	if e == nil { // an infinite run of zeros
		c.W.Int(map[int64]int64{0: 0, 1: -1}[bit])
		return
	}
	b := e.Bytes()
	var start, end int64
	var first, last byte
	endGiven := false
	switch n := len(c.Args); {
	case n >= 4 && n <= 6:
		if start, ok = c.ArgInt(3); !ok {
			return
		}
		isBit := false
		if n == 6 {
			if isBit, ok = c.bitUnit(c.Args[5]); !ok {
				return
			}
		}
		if n >= 5 {
			if end, ok = c.ArgInt(4); !ok {
				return
			}
			endGiven = true
		} else {
			end = int64(len(b)) - 1
			if isBit {
				end = int64(len(b))<<3 + 7
			}
		}
		start, end, first, last = bitRange(start, end, int64(len(b)), isBit)
	case n == 3:
		start, end = 0, int64(len(b))-1
	default:
		c.W.Error(ErrSyntax)
		return
	}
	if start > end {
		c.W.Int(-1)
		return
	}
	// the bits outside the range are made the opposite of the one sought
	want := byte(bit)
	at := func(i int64) byte {
		x := b[i]
		var mask byte
		if i == start {
			mask |= first
		}
		if i == end {
			mask |= last
		}
		if want == 1 {
			return x &^ mask
		}
		return x | mask
	}
	for i := start; i <= end; i++ {
		x := at(i)
		if want == 0 {
			x = ^x
		}
		if x != 0 {
			c.W.Int(i<<3 + int64(bits.LeadingZeros8(x)))
			return
		}
	}
	if want == 1 || endGiven {
		c.W.Int(-1)
		return
	}
	c.W.Int((end + 1) << 3) // the zero padding after the string
}

// BITOP AND|OR|XOR|NOT destkey key [key ...]: missing keys are empty
// strings, shorter ones are zero-padded; an empty result deletes destkey.
func cmdBitOp(c *Ctx) {
	op := string(LowerInto(nil, c.Args[1]))
	switch op {
	case "and", "or", "xor", "not":
	default:
		c.W.Error(ErrSyntax)
		return
	}
	if op == "not" && len(c.Args) != 4 {
		c.W.Error("ERR BITOP NOT must be called with a single source key.")
		return
	}
	srcs := make([][]byte, 0, len(c.Args)-3)
	maxLen := 0
	for _, k := range c.Args[3:] {
		e, ok := c.lookupString(k)
		if !ok {
			return
		}
		var b []byte
		if e != nil {
			b = e.Bytes()
		}
		srcs = append(srcs, b)
		maxLen = max(maxLen, len(b))
	}
	dst := c.Args[2]
	if maxLen == 0 {
		if c.Lookup(dst) != nil && c.KS.DeleteLocked(dst) {
			c.Dirty++
		}
		c.W.Int(0)
		return
	}
	res := make([]byte, maxLen)
	byteAt := func(s []byte, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	for i := range res {
		x := byteAt(srcs[0], i)
		for _, s := range srcs[1:] {
			switch op {
			case "and":
				x &= byteAt(s, i)
			case "or":
				x |= byteAt(s, i)
			case "xor":
				x ^= byteAt(s, i)
			}
		}
		if op == "not" {
			x = ^x
		}
		res[i] = x
	}
	if c.Lookup(dst) != nil {
		c.KS.DeleteLocked(dst) // the result takes its place, without the TTL
	}
	c.KS.AddLocked(dst, keyspace.NewString(res, 0))
	c.Dirty++
	c.W.Int(int64(maxLen))
}
