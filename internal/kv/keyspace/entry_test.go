package keyspace

import (
	"testing"
	"unsafe"
)

// A value type registered outside the built-in ones, as a later feature
// (streams ...) registers its own.
type counter struct{ n int }

var counters = NewType[counter]("test-counter")

func TestTypes(t *testing.T) {
	c := &counter{n: 7}
	e := counters.NewEntry(c)
	if got := counters.Of(e); got != c {
		t.Fatalf("Of = %p, want %p", got, c)
	}
	if Lists.Of(e) != nil || ZSets.Of(e) != nil || e.IsString() {
		t.Fatal("a counter entry reads as another type")
	}
	if counters.Of(NewString([]byte("x"), 0)) != nil {
		t.Fatal("a string reads as a counter")
	}
	for _, tt := range []struct {
		e    *Entry
		want string
	}{
		{e, "test-counter"},
		{NewString(nil, 0), "string"},
		{Lists.NewEntry(&List{}), "list"},
		{Sets.NewEntry(NewSet()), "set"},
		{Hashes.NewEntry(NewHash()), "hash"},
		{ZSets.NewEntry(NewZSet()), "zset"},
	} {
		if got := tt.e.Kind().String(); got != tt.want {
			t.Errorf("kind %q, want %q", got, tt.want)
		}
	}
	if got := Kind(1000).String(); got != "none" {
		t.Errorf("unknown kind %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("a second type named list was accepted")
		}
	}()
	NewType[struct{}]("list")
}

// TestSizes pins the sizes the memory figures of docs/kv.md rely on: an
// entry in the 24-byte size class, a shard on whole cache lines.
func TestSizes(t *testing.T) {
	if n := unsafe.Sizeof(Entry{}); n != 24 {
		t.Errorf("entry is %d bytes, want 24", n)
	}
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Errorf("shard is %d bytes, not a multiple of a 64-byte cache line", n)
	}
}

func TestKeyspaceBasics(t *testing.T) {
	ks := New()
	k := []byte("{user}a")
	i := ShardOf(k)
	ks.LockShard(i)
	ks.SetStringLocked(k, []byte("v"), 100, 0)
	if e := ks.LookupLocked(k, 50); e == nil || string(e.Bytes()) != "v" || e.Expiry() != 100 {
		t.Fatalf("lookup before expiry: %+v", e)
	}
	var expired []string
	ks.SetExpireHook(func(key []byte) { expired = append(expired, string(key)) })
	if e := ks.LookupLocked(k, 100); e != nil {
		t.Fatal("an expired key is visible")
	}
	ks.UnlockShard(i)
	if len(expired) != 1 || expired[0] != string(k) || ks.Len() != 0 {
		t.Fatalf("expired %v, %d keys left", expired, ks.Len())
	}
	slot := int(KeySlot(k))
	ks.LockShard(i)
	ks.AddLocked(k, NewString([]byte("w"), 0))
	ks.UnlockShard(i)
	if ks.CountKeysInSlot(slot) != 1 || len(ks.KeysInSlot(slot, 10)) != 1 || KeySlot([]byte("user")) != uint16(slot) {
		t.Fatal("the key is not in its hash tag's slot")
	}
}

func TestBuiltinKinds(t *testing.T) {
	if Lists.Kind() != kindList || Sets.Kind() != kindSet || Hashes.Kind() != kindHash || ZSets.Kind() != kindZSet {
		t.Fatal("the built-in kinds are not the constants memory.go uses")
	}
}
