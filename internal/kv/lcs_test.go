package kv

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLCSMatchesRedis compares LCS in every form with redis-server on
// random strings over a small alphabet (many matches, ties in the walk).
func TestLCSMatchesRedis(t *testing.T) {
	e, r := newDiffEnv(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	word := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte("ACGT"[rnd.IntN(4)])
		}
		return b.String()
	}
	cmds := []diffCmd{
		{"LCS", "none1", "none2"}, {"LCS", "none1", "none2", "IDX"},
		{"RPUSH", "list", "x"}, {"LCS", "list", "none1"},
		{"SET", "a", "ohmytext"}, {"SET", "b", "mynewtext"},
		{"LCS", "a", "b", "LEN", "IDX"}, {"LCS", "a", "b", "MINMATCHLEN"}, {"LCS", "a", "b", "BOGUS"},
		{"LCS", "a", "b", "IDX", "MINMATCHLEN", "-3", "WITHMATCHLEN"},
	}
	for i := 0; i < 40; i++ {
		cmds = append(cmds, diffCmd{"SET", "a", word(rnd.IntN(60))}, diffCmd{"SET", "b", word(rnd.IntN(60))},
			diffCmd{"LCS", "a", "b"}, diffCmd{"LCS", "a", "b", "LEN"},
			diffCmd{"LCS", "a", "b", "IDX"}, diffCmd{"LCS", "a", "b", "IDX", "WITHMATCHLEN"},
			diffCmd{"LCS", "a", "b", "IDX", "MINMATCHLEN", rnd.IntN(4), "WITHMATCHLEN"})
	}
	diff(t, e, r, cmds)
}
