package scheduler

import "github.com/gantry-project/gantry/internal/structs"

// Admission answers, for a job that could not place every copy, whether
// a node could now take one more copy: the node may receive placements
// (ready, not draining, eligible), passes the job's constraints and
// implicit ones (drivers, host volumes), and its free room holds one
// copy's resources. A job with groups is admitted when any group is. It
// is what the server's blocked-job tracker asks of the nodes where room
// grew; it reads no allocations, so ports, quotas and gangs (which the
// placer checks) are not part of the answer: it may say yes where the
// placer will still say no, never the reverse for a plain copy.
//
// An Admission is immutable once built and safe for concurrent use.
type Admission struct {
	views []admitView
	min   structs.Resources
}

type admitView struct {
	ask  structs.Resources
	cons *Constraints
}

// NewAdmission compiles job's groups' constraints and asks once.
func NewAdmission(job *structs.Job) *Admission {
	a := &Admission{}
	for _, g := range job.GroupNames() {
		v := job.GroupView(g)
		if v == nil {
			continue
		}
		ask := v.TotalResources()
		a.views = append(a.views, admitView{ask: ask, cons: compileJobConstraints(v)})
		if len(a.views) == 1 {
			a.min = ask
			continue
		}
		a.min.CPU = min(a.min.CPU, ask.CPU)
		a.min.MemoryMB = min(a.min.MemoryMB, ask.MemoryMB)
	}
	return a
}

// MinAsk is the smallest ask of the job's groups in each dimension: a node
// with less free room than this in either dimension admits no copy.
func (a *Admission) MinAsk() structs.Resources { return a.min }

// Admits reports whether n, with free room free, could take one more copy
// of the job.
func (a *Admission) Admits(n *structs.Node, free structs.Resources) bool {
	if n == nil || nodeStatusReason(n) != "" {
		return false
	}
	for i := range a.views {
		v := &a.views[i]
		if ok, _ := free.Fits(v.ask); ok && v.cons.Check(n) == "" {
			return true
		}
	}
	return false
}
