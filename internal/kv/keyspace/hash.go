package keyspace

import (
	"encoding/binary"
)

// Small hashes are kept as one byte slice of length-prefixed fields and
// values (like Redis's listpack), in insertion order as Redis keeps them,
// which costs a few bytes per field instead of a Go map's hundreds of
// bytes per hash; a hash that grows past HashLimits.Entries fields or gets
// a field or value longer than HashLimits.Value bytes becomes a map (no
// order) for good. The limits are Redis's hash-max-listpack-entries and
// hash-max-listpack-value, read at each write as Redis does.

// HashLimits bound the small form of a hash.
type HashLimits struct {
	Entries int // fields
	Value   int // bytes of a field or value
}

// DefaultHashLimits are gantry's defaults: Redis's 64 bytes, but 128
// fields where Redis has 512, since the small form is searched linearly
// (a lookup in a small hash of 512 fields costs about 40 times a map's).
var DefaultHashLimits = HashLimits{Entries: 128, Value: 64}

// Hash is the value of a hash key: lp (small) or big's map. A small hash
// is the 32-byte Hash and lp: its count in lp's first two bytes (so at
// most 65,535 fields), then uvarint length + field, uvarint length +
// value, ...; what only a big one needs is in big.
type Hash struct {
	lp  []byte
	big *hashMap // nil while small
}

// hashMap is a big hash.
type hashMap struct {
	m     map[string]string
	bytes int // of the fields and values (Memory)
}

// hashMaxSmall is the most fields the small form counts.
const hashMaxSmall = 1<<16 - 1

func NewHash() *Hash { return &Hash{} }

func (h *Hash) Len() int {
	if h.big != nil {
		return len(h.big.m)
	}
	return h.n()
}

// n is a small hash's count.
func (h *Hash) n() int {
	if len(h.lp) == 0 {
		return 0
	}
	return int(binary.LittleEndian.Uint16(h.lp))
}

// addN adds d to a small hash's count.
func (h *Hash) addN(d int) {
	binary.LittleEndian.PutUint16(h.lp, uint16(h.n()+d))
}

// lpNext decodes the string at lp[pos:] and returns it and the next position.
func lpNext(lp []byte, pos int) ([]byte, int) {
	var n uint64
	if b := lp[pos]; b < 0x80 { // a length under 128 is one byte
		n = uint64(b)
		pos++
	} else {
		var k int
		n, k = binary.Uvarint(lp[pos:])
		pos += k
	}
	return lp[pos : pos+int(n)], pos + int(n)
}

// find returns the positions of a field's entry and of its value in lp,
// or -1.
func (h *Hash) find(f []byte) (start, vpos int) {
	for pos := 2; pos < len(h.lp); {
		s := pos
		field, p := lpNext(h.lp, pos)
		_, next := lpNext(h.lp, p)
		if string(field) == string(f) {
			return s, p
		}
		pos = next
	}
	return -1, -1
}

// Get returns a field's value; the slice aliases the hash for small ones.
func (h *Hash) Get(f []byte) ([]byte, bool) {
	if h.big != nil {
		v, ok := h.big.m[string(f)]
		return []byte(v), ok
	}
	_, vpos := h.find(f)
	if vpos < 0 {
		return nil, false
	}
	v, _ := lpNext(h.lp, vpos)
	return v, true
}

func (h *Hash) Has(f []byte) bool {
	if h.big != nil {
		_, ok := h.big.m[string(f)]
		return ok
	}
	s, _ := h.find(f)
	return s >= 0
}

// Set sets a field and reports whether it is new, within
// DefaultHashLimits.
func (h *Hash) Set(f, v []byte) bool { return h.SetWithin(f, v, DefaultHashLimits) }

// SetWithin sets a field and reports whether it is new; the hash leaves
// its small form when it would pass lim.
func (h *Hash) SetWithin(f, v []byte, lim HashLimits) bool {
	if h.big == nil && (len(f) > lim.Value || len(v) > lim.Value) {
		h.toMap()
	}
	if big := h.big; big != nil {
		old, ok := big.m[string(f)]
		big.m[string(f)] = string(v)
		if ok {
			big.bytes += len(v) - len(old)
		} else {
			big.bytes += len(f) + len(v)
		}
		return !ok
	}
	start, vpos := h.find(f)
	if start >= 0 {
		old, end := lpNext(h.lp, vpos)
		if len(old) == len(v) {
			copy(old, v)
			return false
		}
		// replace the value where it is: the field keeps its place, as
		// in Redis's listpack
		var enc [binary.MaxVarintLen64]byte
		k := binary.PutUvarint(enc[:], uint64(len(v)))
		tail := len(h.lp) - end
		grow := k + len(v) - (end - vpos)
		if grow > 0 {
			h.lp = append(h.lp, make([]byte, grow)...)
		}
		copy(h.lp[vpos+k+len(v):], h.lp[end:end+tail])
		copy(h.lp[vpos:], enc[:k])
		copy(h.lp[vpos+k:], v)
		h.lp = h.lp[:vpos+k+len(v)+tail]
		return false
	}
	if start < 0 && h.n() >= min(lim.Entries, hashMaxSmall) {
		h.toMap()
		h.big.m[string(f)] = string(v)
		h.big.bytes += len(f) + len(v)
		return true
	}
	if len(h.lp) == 0 {
		h.lp = append(h.lp, 0, 0)
	}
	h.lp = binary.AppendUvarint(h.lp, uint64(len(f)))
	h.lp = append(h.lp, f...)
	h.lp = binary.AppendUvarint(h.lp, uint64(len(v)))
	h.lp = append(h.lp, v...)
	h.addN(1)
	return start < 0
}

// Del removes a field and reports whether it existed.
func (h *Hash) Del(f []byte) bool {
	if big := h.big; big != nil {
		v, ok := big.m[string(f)]
		if ok {
			delete(big.m, string(f))
			big.bytes -= len(f) + len(v)
		}
		return ok
	}
	start, vpos := h.find(f)
	if start < 0 {
		return false
	}
	_, end := lpNext(h.lp, vpos)
	h.lp = append(h.lp[:start], h.lp[end:]...)
	h.addN(-1)
	return true
}

// Each calls fn for every field and value; the slices are valid only
// during the call and fn must not change the hash.
func (h *Hash) Each(fn func(f, v []byte)) {
	if h.big != nil {
		for f, v := range h.big.m {
			fn([]byte(f), []byte(v))
		}
		return
	}
	for pos := 2; pos < len(h.lp); {
		var f, v []byte
		f, pos = lpNext(h.lp, pos)
		v, pos = lpNext(h.lp, pos)
		fn(f, v)
	}
}

// Clone returns a deep copy in the same form (and order, when small).
func (h *Hash) Clone() *Hash {
	n := &Hash{lp: append([]byte(nil), h.lp...)}
	if h.big != nil {
		n.big = &hashMap{m: make(map[string]string, len(h.big.m)), bytes: h.big.bytes}
		for f, v := range h.big.m {
			n.big.m[f] = v
		}
	}
	return n
}

func (h *Hash) toMap() {
	big := &hashMap{m: make(map[string]string, h.n()+1)}
	h.Each(func(f, v []byte) {
		big.m[string(f)] = string(v)
		big.bytes += len(f) + len(v)
	})
	h.big, h.lp = big, nil
}

// Small reports whether the hash is in its compact form.
func (h *Hash) Small() bool { return h.big == nil }

// Fields returns the fields as strings (a big hash's without copying).
func (h *Hash) Fields() []string {
	out := make([]string, 0, h.Len())
	if h.big != nil {
		for f := range h.big.m {
			out = append(out, f)
		}
		return out
	}
	h.Each(func(f, _ []byte) { out = append(out, string(f)) })
	return out
}
