package keyspace

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// redisFixtures are the payloads captured from redis-server (see
// ../restore_redis_test.go).
func redisFixtures(tb testing.TB) [][]byte {
	b, err := os.ReadFile("../testdata/redis-dumps.json")
	if err != nil {
		tb.Fatal(err)
	}
	var fixtures []struct{ Payload string }
	if err := json.Unmarshal(b, &fixtures); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, fx := range fixtures {
		p, err := hex.DecodeString(fx.Payload)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// FuzzParseDump: any payload is refused with an error or decodes into a
// value whose own dump decodes again; nothing panics or allocates beyond
// the input's size.
func FuzzParseDump(f *testing.F) {
	l := &List{}
	l.PushBack([]byte("a"))
	l.PushBack([]byte(""))
	s := NewSet()
	s.Add([]byte("x"))
	h := NewHash()
	h.Set([]byte("f"), []byte("v"))
	z := NewZSet()
	z.Add("m", 1.5)
	z.Add("n", -2)
	for _, e := range []*Entry{NewString([]byte("hello"), 0), NewString([]byte{}, 0),
		Lists.NewEntry(l), Sets.NewEntry(s), Hashes.NewEntry(h), ZSets.NewEntry(z),
		Streams.NewEntry(sampleStream()), Streams.NewEntry(NewStream())} {
		f.Add(Dump(e))
	}
	f.Add([]byte("\x00\x03bar\n\x00\xb5\x90\x17\x8b\x1c\x8a\x8a\xf7"))
	f.Add([]byte{})
	for _, p := range redisFixtures(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := ParseDump(p)
		if err != nil {
			if !errors.Is(err, ErrDumpChecksum) && !errors.Is(err, ErrDumpFormat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again := Dump(e)
		e2, err := ParseDump(again)
		if err != nil {
			t.Fatalf("re-dump of a parsed payload does not parse: %v", err)
		}
		if e2.Kind() != e.Kind() {
			t.Fatalf("kind %s became %s", e.Kind(), e2.Kind())
		}
	})
}

// FuzzParseDumpBody checksums the fuzzed body itself, so the fuzzer
// reaches the decoder instead of stopping at the checksum.
func FuzzParseDumpBody(f *testing.F) {
	f.Add([]byte{dumpString, 3, 'a', 'b', 'c'})
	f.Add([]byte{dumpList, 2, 1, 'a', 0})
	f.Add([]byte{dumpZSet, 1, 1, 'm', 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}) // NaN
	f.Add([]byte{dumpHash, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(Dump(Streams.NewEntry(sampleStream()))[:len(Dump(Streams.NewEntry(sampleStream())))-10])
	f.Add([]byte{dumpStream, 0, 0, 0, 0, 0, 0, 1, 1, 'g', 0, 0, 1, 0, 1, 1, 1, 0, 0, 2})
	f.Fuzz(func(t *testing.T, body []byte) {
		p := SealDump(body)
		e, err := ParseDump(p)
		if err != nil {
			if !errors.Is(err, ErrDumpFormat) && !errors.Is(err, ErrDumpChecksum) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, err := ParseDump(Dump(e)); err != nil {
			t.Fatalf("re-dump does not parse: %v", err)
		}
	})
}

// sampleStream is a stream with entries, a deleted entry, groups,
// consumers and pending entries (one of them deleted).
func sampleStream() *Stream {
	s := NewStream()
	for i := uint64(1); i <= 5; i++ {
		s.Append(StreamID{i, 0}, [][]byte{[]byte("f"), {byte('a' + i)}}, DefaultNodeLimits)
	}
	g := s.CreateGroup([]byte("g"), StreamID{4, 0}, 4)
	a := g.CreateConsumer([]byte("a"), 100)
	g.CreateConsumer([]byte("idle"), 50)
	g.Deliver(a, StreamID{2, 0}, 110)
	g.Deliver(a, StreamID{3, 0}, 120)
	s.Delete(StreamID{3, 0})
	s.CreateGroup([]byte("empty"), StreamID{}, InvalidEntriesRead)
	return s
}
