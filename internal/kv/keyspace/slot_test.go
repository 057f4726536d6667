package keyspace

import (
	"math/rand/v2"
	"testing"
)

// crc16Bytewise is the plain byte-at-a-time CRC16 crc16 must equal.
func crc16Bytewise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^c]
	}
	return crc
}

func TestCRC16(t *testing.T) {
	// Redis Cluster's reference value, and known slots
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, slot := range map[string]uint16{"foo": 12182, "bar": 5061, "key:000000000042": KeySlot([]byte("{key:000000000042}"))} {
		if got := KeySlot([]byte(key)); got != slot {
			t.Errorf("KeySlot(%q) = %d, want %d", key, got, slot)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 100; n++ {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if got, want := crc16(b), crc16Bytewise(b); got != want {
				t.Fatalf("crc16(%x) = %#x, want %#x", b, got, want)
			}
		}
	}
}

// keySlotRef is Redis's keyHashSlot (cluster.c), loop for loop.
func keySlotRef(key []byte) uint16 {
	s := 0
	for s < len(key) && key[s] != '{' {
		s++
	}
	if s == len(key) {
		return crc16Bytewise(key) & 16383
	}
	e := s + 1
	for e < len(key) && key[e] != '}' {
		e++
	}
	if e == len(key) || e == s+1 {
		return crc16Bytewise(key) & 16383
	}
	return crc16Bytewise(key[s+1:e]) & 16383
}

func TestKeySlotHashTags(t *testing.T) {
	for _, tc := range []struct {
		key  string
		same string // a key of the same slot
	}{
		{"{user1000}.following", "user1000"},
		{"foo{bar}baz", "bar"},
		{"foo{}{bar}", "foo{}{bar}"}, // an empty tag: the whole key
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
		{"{}", "{}"},
		{"{", "{"},
		{"}{", "}{"},
		{"a{b", "a{b"},
		{"a}b{c}", "c"},
		{"", ""},
	} {
		if got, want := KeySlot([]byte(tc.key)), keySlotRef([]byte(tc.same)); got != want {
			t.Errorf("KeySlot(%q) = %d, want %d (the slot of %q)", tc.key, got, want, tc.same)
		}
		if got, want := KeySlot([]byte(tc.key)), keySlotRef([]byte(tc.key)); got != want {
			t.Errorf("KeySlot(%q) = %d, Redis's %d", tc.key, got, want)
		}
	}
}

func FuzzKeySlot(f *testing.F) {
	for _, k := range []string{"key:000000000042", "{a}b", "a{}b{c}", "{{}}", "x{y"} {
		f.Add([]byte(k))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		if got, want := KeySlot(key), keySlotRef(key); got != want {
			t.Fatalf("KeySlot(%q) = %d, Redis's %d", key, got, want)
		}
	})
}

func FuzzCRC16(f *testing.F) {
	f.Add([]byte("key:000000000042"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := crc16(b), crc16Bytewise(b); got != want {
			t.Fatalf("crc16(%x) = %#x, want %#x", b, got, want)
		}
	})
}

func BenchmarkKeySlot(b *testing.B) {
	key := []byte("key:000000000042")
	var s uint16
	for b.Loop() {
		s += KeySlot(key)
	}
	_ = s
}
