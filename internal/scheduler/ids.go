package scheduler

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/structs"
)

// NewID returns a random version-4 UUID string drawn from rng, so that
// allocation IDs are reproducible under a fixed seed.
func NewID(rng *rand.Rand) string { return structs.NewUUIDFrom(rng) }

// arenaChunk is the most bytes (and allocation structs) a Placer's arenas
// take from the heap at once.
const arenaChunk = 256

// stringArena hands out short strings carved from larger buffers, so the
// IDs and names of a plan's allocations cost one heap allocation per chunk
// instead of one each. A strings.Builder never changes bytes it has
// written, so every string handed out stays valid; a chunk lives as long
// as any string carved from it (a plan's allocations are short-lived:
// the state store keeps its own decoded copies).
type stringArena struct {
	b    strings.Builder
	next int // size of the next chunk; doubles up to arenaChunk*36
}

func (a *stringArena) reserve(n int) {
	if a.b.Cap()-a.b.Len() >= n {
		return
	}
	a.next = min(max(2*a.next, 64), arenaChunk*36)
	a.b = strings.Builder{}
	a.b.Grow(max(a.next, n))
}

// carve returns the bytes written since start as a string.
func (a *stringArena) carve(start int) string { return a.b.String()[start:] }

// id draws a version-4 UUID from rng (the same one NewID would).
func (a *stringArena) id(rng *rand.Rand) string {
	var s [36]byte
	structs.FormatRandomUUID(&s, rng)
	a.reserve(len(s))
	start := a.b.Len()
	a.b.Write(s[:])
	return a.carve(start)
}

// name returns structs.AllocName(job, idx).
func (a *stringArena) name(job string, idx int) string {
	var num [20]byte
	n := strconv.AppendInt(num[:0], int64(idx), 10)
	a.reserve(len(job) + len(n) + 2)
	start := a.b.Len()
	a.b.WriteString(job)
	a.b.WriteByte('[')
	a.b.Write(n)
	a.b.WriteByte(']')
	return a.carve(start)
}

// allocSlab hands out zeroed Allocations from chunks, one heap allocation
// per chunk (up to arenaChunk structs) instead of one each.
type allocSlab struct {
	free []structs.Allocation
	next int
}

func (s *allocSlab) get() *structs.Allocation {
	if len(s.free) == 0 {
		s.next = min(max(2*s.next, 1), arenaChunk)
		s.free = make([]structs.Allocation, s.next)
	}
	a := &s.free[0]
	s.free = s.free[1:]
	return a
}
