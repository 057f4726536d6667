package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gantry-project/gantry/internal/structs"
)

// recordFailure fills p.failed after a copy found no node: every node has
// been visited by the failed scan, so each is counted once, under the filter
// that excluded it or the resource dimension it lacks.
func (p *Placer) recordFailure(ask structs.Resources) {
	f := &structs.PlacementFailure{
		JobID:          p.job.ID,
		Unplaced:       1,
		NodesEvaluated: p.total,
		Time:           p.now().UnixNano(),
	}
	for r, n := range p.prefiltered {
		if f.NodesFiltered == nil {
			f.NodesFiltered = map[string]int{}
		}
		f.NodesFiltered[r] += n
	}
	for i := range p.info {
		if r := p.info[i].reason; r != "" {
			if f.NodesFiltered == nil {
				f.NodesFiltered = map[string]int{}
			}
			f.NodesFiltered[r]++
			continue
		}
		in := p.usage(i)
		dim := "capacity"
		if ok, d := p.nodes[i].Capacity.Sub(in.used).Fits(ask); !ok {
			dim = d
		} else if p.job.HasPorts() {
			if r := p.portsFit(i); r != "" {
				dim = r
			}
		}
		if f.NodesExhausted == nil {
			f.NodesExhausted = map[string]int{}
		}
		f.NodesExhausted[dim]++
	}
	f.Message = FailureMessage(f)
	p.failed = f
}

// FailureMessage summarises a failure for people: "3 nodes excluded by
// constraint zone = a, 7 by memory", largest cause first.
func FailureMessage(f *structs.PlacementFailure) string {
	if f.NodesEvaluated == 0 {
		return "no nodes in the cluster"
	}
	counts := map[string]int{}
	maps.Copy(counts, f.NodesFiltered)
	for k, v := range f.NodesExhausted {
		counts[k] += v
	}
	reasons := slices.Collect(maps.Keys(counts))
	slices.SortFunc(reasons, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for k, r := range reasons {
		switch k {
		case 0:
			noun := "nodes"
			if counts[r] == 1 {
				noun = "node"
			}
			fmt.Fprintf(&b, "%d %s excluded by %s", counts[r], noun, r)
		default:
			fmt.Fprintf(&b, ", %d by %s", counts[r], r)
		}
	}
	return b.String()
}

// SameFailure reports whether two failure records say the same thing, time
// aside, so an unchanged failure need not be written again.
func SameFailure(a, b *structs.PlacementFailure) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.JobID == b.JobID && a.Unplaced == b.Unplaced &&
		a.NodesEvaluated == b.NodesEvaluated && a.Message == b.Message &&
		maps.Equal(a.NodesFiltered, b.NodesFiltered) &&
		maps.Equal(a.NodesExhausted, b.NodesExhausted)
}
