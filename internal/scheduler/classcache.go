package scheduler

import (
	"strings"

	"github.com/gantry-project/gantry/internal/structs"
)

// DefaultCacheClasses bounds the constraint sets a FeasibilityCache keeps.
const DefaultCacheClasses = 32

// FeasibilityCache remembers, per distinct constraint set (an equivalence
// class of jobs, as Borg groups tasks with equal requirements), each node's
// verdict across scheduling passes. A pass walks the node list comparing
// pointers, which is sequential and cheap, and re-evaluates only nodes whose
// object changed (state stores replace a node object on every change). The
// placement scan then visits only the nodes that pass, so a constraint that
// admits 10% of the cluster does not cost ten times the work.
//
// It is not safe for concurrent use: one per scheduling goroutine.
type FeasibilityCache struct {
	max     int
	tick    uint64
	classes map[string]*feasClass
}

type feasClass struct {
	cons    *Constraints
	nodes   []*structs.Node // node objects the verdicts were computed on
	verdict []string        // "" = passes status and constraints
	used    uint64
}

// NewFeasibilityCache returns a cache of at most maxClasses constraint sets
// (0 = DefaultCacheClasses); the least recently used set is dropped first.
func NewFeasibilityCache(maxClasses int) *FeasibilityCache {
	if maxClasses <= 0 {
		maxClasses = DefaultCacheClasses
	}
	return &FeasibilityCache{max: maxClasses, classes: map[string]*feasClass{}}
}

func classKey(job *structs.Job) string {
	var b strings.Builder
	for _, d := range job.Drivers() {
		b.WriteString(d)
		b.WriteByte(0)
	}
	b.WriteByte(0)
	for _, c := range job.Constraints {
		b.WriteString(c.String())
		b.WriteByte(0)
	}
	for _, v := range job.HostVolumeClaims() {
		b.WriteString("\x00volume ")
		b.WriteString(v.Source)
		if !v.ReadOnly {
			b.WriteString(" rw")
		}
	}
	return b.String()
}

// filter returns the nodes that are ready and pass the constraints, and how
// many nodes each reason excluded (nil when none).
func (c *FeasibilityCache) filter(nodes []*structs.Node, job *structs.Job) ([]*structs.Node, map[string]int) {
	c.tick++
	key := classKey(job)
	cl := c.classes[key]
	if cl == nil {
		if len(c.classes) >= c.max {
			c.evict()
		}
		cl = &feasClass{cons: compileJobConstraints(job)}
		c.classes[key] = cl
	}
	cl.used = c.tick
	if len(cl.nodes) != len(nodes) {
		cl.nodes = make([]*structs.Node, len(nodes))
		cl.verdict = make([]string, len(nodes))
	}
	pass := make([]*structs.Node, 0, len(nodes)/4)
	var filtered map[string]int
	for i, n := range nodes {
		if cl.nodes[i] != n {
			cl.nodes[i] = n
			r := nodeStatusReason(n)
			if r == "" {
				r = cl.cons.Check(n)
			}
			cl.verdict[i] = r
		}
		if r := cl.verdict[i]; r != "" {
			if filtered == nil {
				filtered = map[string]int{}
			}
			filtered[r]++
			continue
		}
		pass = append(pass, n)
	}
	return pass, filtered
}

func (c *FeasibilityCache) evict() {
	var oldest string
	var at uint64
	first := true
	for k, cl := range c.classes {
		if first || cl.used < at {
			oldest, at, first = k, cl.used, false
		}
	}
	delete(c.classes, oldest)
}
