package command

import (
	"math/rand/v2"
	"testing"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// TestSlotOf checks the context's memo of a key's slot against
// keyspace.KeySlot, with keys that repeat, keys of the same length, hash
// tags, keys longer than the memo holds, the empty key, and a buffer
// changed in place after its slot was taken (as a client's read buffer is
// by its next read).
func TestSlotOf(t *testing.T) {
	var c Ctx
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ab{}:x"
	buf := make([]byte, 64)
	for i := 0; i < 50000; i++ {
		n := rng.IntN(len(buf) + 1)
		if rng.IntN(4) == 0 { // the same length as before: the memo's case to get wrong
			n = c.memo.n
		}
		key := buf[:n]
		if rng.IntN(3) > 0 { // change the bytes in place, or keep them
			for j := range key {
				key[j] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		if got, want := c.SlotOf(key), keyspace.KeySlot(key); got != want {
			t.Fatalf("SlotOf(%q) = %d, KeySlot %d", key, got, want)
		}
	}
}
