package rdbcodec

import (
	"encoding/binary"
	"strconv"
)

// Item is one element of a listpack: a string, or an integer when IsInt.
type Item struct {
	S     []byte
	I     int64
	IsInt bool
}

// Bytes returns the element as a string (an integer in decimal).
func (it Item) Bytes() []byte {
	if it.IsInt {
		return strconv.AppendInt(nil, it.I, 10)
	}
	return it.S
}

func itemStrings(items []Item) [][]byte {
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it.Bytes()
	}
	return out
}

// unknownCount is the element count of a ziplist or listpack header when
// the elements are too many for it.
const unknownCount = 65535

// backlenSize is the size of a listpack entry's back length for an entry
// (encoding and data) of l bytes.
func backlenSize(l uint64) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// validBacklen checks that b starts with the back length of an entry of l
// bytes: the most significant 7 bits first, every byte but the first with
// its high bit set.
func validBacklen(b []byte, l uint64) bool {
	k := backlenSize(l)
	if len(b) < k {
		return false
	}
	for i := 0; i < k; i++ {
		want := byte(l>>(7*uint(k-1-i))) & 127
		if i > 0 {
			want |= 128
		}
		if b[i] != want {
			return false
		}
	}
	return true
}

// signExtend interprets the low bits of v as a two's complement integer.
func signExtend(v uint64, bits uint) int64 {
	shift := 64 - bits
	return int64(v<<shift) >> shift
}

// Listpack decodes a listpack (listpack.c's layout): a 4-byte total size
// and a 2-byte element count (little endian), the elements, and 0xFF.
// Every element is an encoding byte, its data and its back length, all
// checked.
func Listpack(b []byte) ([]Item, error) {
	if len(b) < 7 {
		return nil, bad("listpack of %d bytes", len(b))
	}
	if uint64(binary.LittleEndian.Uint32(b)) != uint64(len(b)) {
		return nil, bad("listpack size header %d, blob %d", binary.LittleEndian.Uint32(b), len(b))
	}
	if b[len(b)-1] != 0xFF {
		return nil, bad("listpack without its end byte")
	}
	declared := int(binary.LittleEndian.Uint16(b[4:]))
	end := uint64(len(b) - 1)
	items := make([]Item, 0, min(declared, (len(b)-7)/2))
	for p := uint64(6); p < end; {
		c := b[p]
		var hdr, data uint64 // encoding bytes, data bytes
		var it Item
		need := func(n uint64) bool { return p+n <= end }
		switch {
		case c&0x80 == 0:
			hdr, it = 1, Item{I: int64(c), IsInt: true}
		case c&0xC0 == 0x80:
			hdr, data = 1, uint64(c&0x3f)
		case c&0xE0 == 0xC0:
			if !need(2) {
				return nil, bad("truncated listpack integer")
			}
			hdr, it = 2, Item{I: signExtend(uint64(c&0x1f)<<8|uint64(b[p+1]), 13), IsInt: true}
		case c&0xF0 == 0xE0:
			if !need(2) {
				return nil, bad("truncated listpack string length")
			}
			hdr, data = 2, uint64(c&0x0f)<<8|uint64(b[p+1])
		case c == 0xF0:
			if !need(5) {
				return nil, bad("truncated listpack string length")
			}
			hdr, data = 5, uint64(binary.LittleEndian.Uint32(b[p+1:]))
		case c >= 0xF1 && c <= 0xF4:
			size := [...]uint64{2, 3, 4, 8}[c-0xF1]
			if !need(1 + size) {
				return nil, bad("truncated listpack integer")
			}
			var v uint64
			for i := size; i > 0; i-- {
				v = v<<8 | uint64(b[p+i])
			}
			hdr, it = 1+size, Item{I: signExtend(v, uint(8*size)), IsInt: true}
		default:
			return nil, bad("listpack encoding byte 0x%02x", c)
		}
		l := hdr + data
		if !need(l) {
			return nil, bad("listpack element past the end")
		}
		if !it.IsInt {
			it.S = b[p+hdr : p+l : p+l]
		}
		if !need(l+uint64(backlenSize(l))) || !validBacklen(b[p+l:end], l) {
			return nil, bad("listpack element with a wrong back length")
		}
		items = append(items, it)
		p += l + uint64(backlenSize(l))
	}
	if declared != unknownCount && declared != len(items) {
		return nil, bad("listpack count header %d, %d elements", declared, len(items))
	}
	return items, nil
}

// Ziplist decodes a ziplist (ziplist.c's layout, Redis before 7.0): a
// 4-byte total size, the 4-byte offset of the last entry, a 2-byte count
// (little endian), the entries, and 0xFF. Every entry is the previous
// entry's size (1 or 5 bytes), an encoding and its data, all checked.
func Ziplist(b []byte) ([][]byte, error) {
	const header = 10
	if len(b) < header+1 {
		return nil, bad("ziplist of %d bytes", len(b))
	}
	if uint64(binary.LittleEndian.Uint32(b)) != uint64(len(b)) {
		return nil, bad("ziplist size header %d, blob %d", binary.LittleEndian.Uint32(b), len(b))
	}
	if b[len(b)-1] != 0xFF {
		return nil, bad("ziplist without its end byte")
	}
	tail := uint64(binary.LittleEndian.Uint32(b[4:]))
	declared := int(binary.LittleEndian.Uint16(b[8:]))
	end := uint64(len(b) - 1)
	out := make([][]byte, 0, min(declared, (len(b)-header-1)/2))
	prevSize, last := uint64(0), uint64(header)
	for p := uint64(header); p < end; {
		start := p
		var prev uint64
		switch {
		case b[p] < 254:
			prev, p = uint64(b[p]), p+1
		case b[p] == 254 && p+5 <= end:
			prev, p = uint64(binary.LittleEndian.Uint32(b[p+1:])), p+5
		default:
			return nil, bad("ziplist previous-length byte 0x%02x", b[p])
		}
		if prev != prevSize {
			return nil, bad("ziplist previous length %d, previous entry %d bytes", prev, prevSize)
		}
		if p >= end {
			return nil, bad("truncated ziplist entry")
		}
		c := b[p]
		need := func(n uint64) bool { return p+n <= end }
		var hdr, data uint64
		isInt, intSize := false, uint64(0)
		var imm int64
		switch {
		case c>>6 == 0:
			hdr, data = 1, uint64(c&0x3f)
		case c>>6 == 1:
			if !need(2) {
				return nil, bad("truncated ziplist string length")
			}
			hdr, data = 2, uint64(c&0x3f)<<8|uint64(b[p+1])
		case c>>6 == 2:
			if !need(5) {
				return nil, bad("truncated ziplist string length")
			}
			hdr, data = 5, uint64(binary.BigEndian.Uint32(b[p+1:]))
		case c == 0xC0:
			isInt, intSize = true, 2
		case c == 0xD0:
			isInt, intSize = true, 4
		case c == 0xE0:
			isInt, intSize = true, 8
		case c == 0xF0:
			isInt, intSize = true, 3
		case c == 0xFE:
			isInt, intSize = true, 1
		case c >= 0xF1 && c <= 0xFD:
			isInt, imm = true, int64(c&0x0f)-1
		default:
			return nil, bad("ziplist encoding byte 0x%02x", c)
		}
		if isInt {
			hdr, data = 1, intSize
		}
		if !need(hdr + data) {
			return nil, bad("ziplist entry past the end")
		}
		d := b[p+hdr : p+hdr+data : p+hdr+data]
		switch {
		case !isInt:
			out = append(out, d)
		case intSize == 0:
			out = append(out, strconv.AppendInt(nil, imm, 10))
		default:
			var v uint64
			for i := len(d) - 1; i >= 0; i-- {
				v = v<<8 | uint64(d[i])
			}
			out = append(out, strconv.AppendInt(nil, signExtend(v, uint(8*intSize)), 10))
		}
		p += hdr + data
		prevSize, last = p-start, start
	}
	if last != tail {
		return nil, bad("ziplist tail offset %d, last entry at %d", tail, last)
	}
	if declared != unknownCount && declared != len(out) {
		return nil, bad("ziplist count header %d, %d entries", declared, len(out))
	}
	return out, nil
}

// Intset decodes an intset: the integer size (2, 4 or 8) and the count as
// 4 bytes each, then the integers (little endian), strictly ascending.
func Intset(b []byte) ([][]byte, error) {
	if len(b) < 8 {
		return nil, bad("intset of %d bytes", len(b))
	}
	size := uint64(binary.LittleEndian.Uint32(b))
	n := uint64(binary.LittleEndian.Uint32(b[4:]))
	if size != 2 && size != 4 && size != 8 {
		return nil, bad("intset integer size %d", size)
	}
	if n*size != uint64(len(b)-8) {
		return nil, bad("intset of %d integers in %d bytes", n, len(b)-8)
	}
	out := make([][]byte, 0, n)
	var prev int64
	for i := uint64(0); i < n; i++ {
		d := b[8+i*size : 8+(i+1)*size]
		var v int64
		switch size {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(d)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d)))
		default:
			v = int64(binary.LittleEndian.Uint64(d))
		}
		if i > 0 && v <= prev {
			return nil, bad("intset not in ascending order")
		}
		prev = v
		out = append(out, strconv.AppendInt(nil, v, 10))
	}
	return out, nil
}

// Zipmap decodes a zipmap (hashes of Redis before 2.6): a count byte,
// then per pair a length, the field, a length, a free-space byte, the
// value and its free space, then 0xFF. A length is one byte below 254, or
// 254 and 4 bytes (little endian).
func Zipmap(b []byte) ([][]byte, error) {
	if len(b) < 2 || b[len(b)-1] != 0xFF {
		return nil, bad("zipmap without its end byte")
	}
	end := uint64(len(b) - 1)
	p := uint64(1)
	length := func() (uint64, error) {
		if p >= end {
			return 0, bad("truncated zipmap")
		}
		c := b[p]
		switch {
		case c < 254:
			p++
			return uint64(c), nil
		case c == 254 && p+5 <= end:
			n := uint64(binary.LittleEndian.Uint32(b[p+1:]))
			p += 5
			return n, nil
		}
		return 0, bad("zipmap length byte 0x%02x", c)
	}
	take := func(n uint64) ([]byte, error) {
		if n > end-p {
			return nil, bad("zipmap string past the end")
		}
		s := b[p : p+n : p+n]
		p += n
		return s, nil
	}
	var out [][]byte
	for p < end {
		fl, err := length()
		if err != nil {
			return nil, err
		}
		f, err := take(fl)
		if err != nil {
			return nil, err
		}
		vl, err := length()
		if err != nil {
			return nil, err
		}
		free, err := take(1)
		if err != nil {
			return nil, err
		}
		v, err := take(vl)
		if err != nil {
			return nil, err
		}
		if _, err := take(uint64(free[0])); err != nil {
			return nil, err
		}
		out = append(out, f, v)
	}
	return out, nil
}

// LZFDecompress expands LZF data (lzf_d.c's format) into exactly n bytes:
// a control byte below 32 copies that many plus one literal bytes; above,
// its top 3 bits (7: plus the next byte) plus 2 are a length to copy from
// an earlier offset (its low 5 bits and the next byte, plus one).
func LZFDecompress(in []byte, n int) ([]byte, error) {
	if n <= 0 || len(in) == 0 {
		return nil, bad("empty LZF string")
	}
	// each input byte yields at most 264/3 output bytes
	if uint64(n) > 89*uint64(len(in)) {
		return nil, bad("LZF string of %d bytes from %d", n, len(in))
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(in); {
		c := int(in[i])
		i++
		if c < 32 {
			l := c + 1
			if l > len(in)-i || l > n-len(out) {
				return nil, bad("LZF literal past the end")
			}
			out = append(out, in[i:i+l]...)
			i += l
			continue
		}
		l := c >> 5
		if l == 7 {
			if i >= len(in) {
				return nil, bad("truncated LZF back reference")
			}
			l += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, bad("truncated LZF back reference")
		}
		ref := len(out) - (c&0x1f)<<8 - int(in[i]) - 1
		i++
		l += 2
		if ref < 0 || l > n-len(out) {
			return nil, bad("LZF back reference out of range")
		}
		for k := 0; k < l; k++ { // may overlap what it writes
			out = append(out, out[ref+k])
		}
	}
	if len(out) != n {
		return nil, bad("LZF string of %d bytes, %d declared", len(out), n)
	}
	return out, nil
}
