package keyspace

import (
	"math/bits"
	"strconv"
	"unsafe"
)

// Entry is the value of a key, in 24 bytes (the smallest size class that
// holds an expiry and a pointer): a string keeps its bytes at p, a
// collection its object; m packs the rest:
//
//	bits  0-29  a string's length (at most 1 GiB - 1), or the Kind of a collection
//	bit   30    objFlag: the value is a collection
//	bit   31    openFlag: the entry is being measured again (memory.go)
//	bits 32-39  a string's spare capacity, rounded down (slackCode)
//	bits 40-63  the access bits of eviction: an LRU clock in seconds, or
//	            an LFU time in minutes (16 bits) and counter (8 bits)
//
// Packing the capacity in 8 bits instead of 32 is what makes room for the
// access bits without growing the entry.
type Entry struct {
	exp int64          // expiry in Unix milliseconds, 0 for none
	p   unsafe.Pointer // string bytes or the object
	m   uint64
}

const (
	lenBits     = 30
	lenMask     = 1<<lenBits - 1
	objFlag     = 1 << 30
	openFlag    = 1 << 31
	slackShift  = 32
	accessShift = 40
	accessMask  = 1<<24 - 1
	// MaxLen is the longest string an entry holds.
	MaxLen = lenMask
)

// slackCode encodes a string's spare capacity in 8 bits, rounded down:
// exact below 8, then 3 bits of mantissa and 5 of exponent (within 1/8).
func slackCode(slack int) uint64 {
	if slack < 8 {
		return uint64(slack)
	}
	e := bits.Len(uint(slack)) - 3 // >= 1
	if e > 31 {
		return 0xff
	}
	return uint64(e)<<3 | uint64(slack>>(e-1)-8)
}

// slackOf decodes slackCode.
func slackOf(code uint64) int {
	if code < 8 {
		return int(code)
	}
	return (8 + int(code&7)) << (code>>3 - 1)
}

// Kind identifies the type of a value: KindString, or the kind of a
// collection Type.
type Kind uint32

// KindString is the kind of string values.
const KindString Kind = 0

// kindNames are the names TYPE reports, by Kind; NewType appends.
var kindNames = []string{"string"}

// String returns the name of the kind, as TYPE reports it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "none"
}

// Type is a collection type of the keyspace. The built-in ones are Lists,
// Sets, Hashes and ZSets; a new value type (a stream ...) plugs in with
// one NewType of its own, and its commands reach its values with Of.
// An entry holds a collection as an untyped pointer and the type's Kind,
// so entries stay 24 bytes and Of is one comparison, not a type switch.
type Type[T any] struct {
	kind Kind
}

// NewType registers a collection type named name (as TYPE reports it). It
// must run during package initialisation (package-level variables), before
// any keyspace is used; a name registered twice is a programming error.
func NewType[T any](name string) *Type[T] {
	for _, n := range kindNames {
		if n == name {
			panic("keyspace: value type " + name + " registered twice")
		}
	}
	kindNames = append(kindNames, name)
	kindMem = append(kindMem, memoryFunc[T]())
	return &Type[T]{kind: Kind(len(kindNames) - 1)}
}

// The built-in collection types, registered first: their kinds are
// constants where speed matters (memory.go).
var (
	Lists  = NewType[List]("list")
	Sets   = NewType[Set]("set")
	Hashes = NewType[Hash]("hash")
	ZSets  = NewType[ZSet]("zset")
)

const (
	kindList Kind = iota + 1
	kindSet
	kindHash
	kindZSet
)

// Kind returns the type's kind.
func (t *Type[T]) Kind() Kind { return t.kind }

// Of returns the value of e if it is of this type, else nil.
func (t *Type[T]) Of(e *Entry) *T {
	if e.m&(objFlag|lenMask) != objFlag|uint64(t.kind) {
		return nil
	}
	return (*T)(e.p)
}

// NewEntry returns a new entry (without expiry) holding v.
func (t *Type[T]) NewEntry(v *T) *Entry {
	return &Entry{p: unsafe.Pointer(v), m: objFlag | uint64(t.kind)}
}

// NewString returns a new string entry holding b (which it takes over),
// expiring at exp (Unix ms, 0 for never).
func NewString(b []byte, exp int64) *Entry {
	e := &Entry{exp: exp}
	e.SetBytes(b)
	return e
}

// Kind returns the kind of the value.
func (e *Entry) Kind() Kind {
	if e.m&objFlag == 0 {
		return KindString
	}
	return Kind(e.m & lenMask)
}

// IsString reports whether the value is a string.
func (e *Entry) IsString() bool { return e.m&objFlag == 0 }

// Expiry returns the expiry in Unix milliseconds, 0 for none.
func (e *Entry) Expiry() int64 { return e.exp }

// ExpiredAt reports whether the entry has an expiry at or before now.
func (e *Entry) ExpiredAt(now int64) bool { return e.exp != 0 && e.exp <= now }

// WithExpiry sets the expiry of an entry that is not in a keyspace yet
// (Keyspace.SetExpireLocked changes the expiry of one that is) and
// returns it.
func (e *Entry) WithExpiry(exp int64) *Entry {
	e.exp = exp
	return e
}

// Bytes returns the string value; it aliases the stored bytes. Its
// capacity may be less than the buffer's (slackCode rounds down).
func (e *Entry) Bytes() []byte {
	if e.p == nil || e.m&objFlag != 0 {
		return nil
	}
	n := int(e.m & lenMask)
	return unsafe.Slice((*byte)(e.p), n+slackOf(e.m>>slackShift&0xff))[:n]
}

// SetBytes makes the entry a string holding b (which it takes over). A
// string is at most MaxLen bytes (the protocol allows 512 MB).
func (e *Entry) SetBytes(b []byte) {
	if len(b) > MaxLen {
		panic("keyspace: string of " + strconv.Itoa(len(b)) + " bytes is over the maximum")
	}
	keep := e.m & (openFlag | accessMask<<accessShift)
	e.p = unsafe.Pointer(unsafe.SliceData(b))
	e.m = keep | uint64(len(b)) | slackCode(cap(b)-len(b))<<slackShift
	if cap(b) == 0 {
		e.p = nil
	}
}
