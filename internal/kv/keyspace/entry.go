package keyspace

import (
	"math"
	"unsafe"
)

// Entry is the value of a key, in 24 bytes (the smallest size class that
// holds an expiry and a pointer): a string keeps its bytes at p with
// length n and capacity c; a collection keeps its object at p, with n =
// objMark and c its Kind.
type Entry struct {
	exp int64          // expiry in Unix milliseconds, 0 for none
	p   unsafe.Pointer // string bytes or the object
	n   uint32         // string length, or objMark
	c   uint32         // string capacity, or the Kind of the object
}

const objMark = ^uint32(0)

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
	return &Type[T]{kind: Kind(len(kindNames) - 1)}
}

// The built-in collection types.
var (
	Lists  = NewType[List]("list")
	Sets   = NewType[Set]("set")
	Hashes = NewType[Hash]("hash")
	ZSets  = NewType[ZSet]("zset")
)

// Kind returns the type's kind.
func (t *Type[T]) Kind() Kind { return t.kind }

// Of returns the value of e if it is of this type, else nil.
func (t *Type[T]) Of(e *Entry) *T {
	if e.n != objMark || Kind(e.c) != t.kind {
		return nil
	}
	return (*T)(e.p)
}

// NewEntry returns a new entry (without expiry) holding v.
func (t *Type[T]) NewEntry(v *T) *Entry {
	return &Entry{p: unsafe.Pointer(v), n: objMark, c: uint32(t.kind)}
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
	if e.n != objMark {
		return KindString
	}
	return Kind(e.c)
}

// IsString reports whether the value is a string.
func (e *Entry) IsString() bool { return e.n != objMark }

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

// Bytes returns the string value; it aliases the stored bytes.
func (e *Entry) Bytes() []byte {
	if e.p == nil || e.n == objMark {
		return nil
	}
	return unsafe.Slice((*byte)(e.p), e.c)[:e.n]
}

// SetBytes makes the entry a string holding b (which it takes over).
func (e *Entry) SetBytes(b []byte) {
	if cap(b) > math.MaxUint32-1 { // not reachable with 512 MB strings
		b = b[:len(b):len(b)]
	}
	e.p, e.n, e.c = unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)), uint32(cap(b))
	if cap(b) == 0 {
		e.p = nil
	}
}
