package scheduler

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/gantry-project/gantry/internal/structs"
)

// Filter reasons shown to users in PlacementFailure.NodesFiltered.
const (
	ReasonNotReady   = "not ready"
	ReasonDraining   = "draining"
	ReasonIneligible = "ineligible"
)

// ReasonConstraint is the NodesFiltered key for a failed constraint.
func ReasonConstraint(c structs.Constraint) string { return "constraint " + c.String() }

// ReasonDriver is the NodesFiltered key for a node that does not run the
// job's task driver.
func ReasonDriver(driver string) string { return "driver " + driver + " missing" }

// nodeStatusReason says why a node may not receive placements, or "".
func nodeStatusReason(n *structs.Node) string {
	switch {
	case n.Status != structs.NodeStatusReady:
		return ReasonNotReady
	case n.Drain:
		return ReasonDraining
	case n.Ineligible != "":
		return ReasonIneligible
	}
	return ""
}

// Constraints is a job's constraint list compiled once (regexps parsed), so
// evaluating it against thousands of nodes does no parsing.
type Constraints struct {
	list    []structs.Constraint
	res     []*regexp.Regexp // res[i] is set for regexp constraints
	reasons []string         // reasons[i] is ReasonConstraint(list[i]), built once

	// driverAttr, when set, is the attribute of the job's task driver a
	// node must have (structs.Node.HasDriver); driverReason its reason.
	driverAttr, driverReason string
	// moreDrivers are the attribute and reason of the drivers of a job's
	// extra tasks; volumes its host volume claims.
	moreDrivers [][2]string
	volumes     []volumeCheck
}

// CompileConstraints prepares cs for matching. A regexp that does not
// compile (Validate rejects those, but state may hold older data) matches no
// node rather than crashing the scheduler.
func CompileConstraints(cs []structs.Constraint) (*Constraints, error) {
	c := &Constraints{list: cs, res: make([]*regexp.Regexp, len(cs)), reasons: make([]string, len(cs))}
	var firstErr error
	for i, con := range cs {
		c.reasons[i] = ReasonConstraint(con)
		if con.Operator != structs.OpRegexp {
			continue
		}
		re, err := regexp.Compile(con.Value)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("constraint %s: %w", con, err)
			}
			continue
		}
		c.res[i] = re
	}
	return c, firstErr
}

// compileJobConstraints is CompileConstraints of the job's constraints
// plus the implicit ones every job has: its node must run its tasks'
// drivers (a docker job never lands on a node without Docker) and declare
// the host volumes it claims.
func compileJobConstraints(job *structs.Job) *Constraints {
	c, _ := CompileConstraints(job.Constraints) // a bad regexp matches nothing
	if job.Driver != "" {
		c.driverAttr, c.driverReason = structs.DriverAttrPrefix+job.Driver, ReasonDriver(job.Driver)
	}
	for _, d := range job.Drivers()[1:] {
		c.moreDrivers = append(c.moreDrivers, [2]string{structs.DriverAttrPrefix + d, ReasonDriver(d)})
	}
	for _, v := range job.HostVolumeClaims() {
		c.volumes = append(c.volumes, volumeCheck{name: v.Source, readOnly: v.ReadOnly,
			missing: ReasonHostVolume(v.Source), readOnlyReason: ReasonHostVolumeReadOnly(v.Source)})
	}
	return c
}

// ReasonHostVolume is the NodesFiltered key for a node whose agent does not
// declare a host volume the job claims.
func ReasonHostVolume(name string) string { return "host volume " + name + " missing" }

// ReasonHostVolumeReadOnly is the NodesFiltered key for a node that
// declares a host volume read-only that the job claims read-write.
func ReasonHostVolumeReadOnly(name string) string {
	return "host volume " + name + " read-only"
}

// volumeCheck is one host volume a node must declare.
type volumeCheck struct {
	name                    string
	readOnly                bool // the claim accepts a read-only volume
	missing, readOnlyReason string
}

// Check returns the first constraint the node fails as a reason string
// ("constraint zone = a"), or "" when the node passes all of them.
func (c *Constraints) Check(n *structs.Node) string {
	for i, con := range c.list {
		if !c.match(i, con, n) {
			return c.reasons[i]
		}
	}
	if c.driverAttr != "" && !n.HasDriver(c.driverAttr) {
		return c.driverReason
	}
	for _, d := range c.moreDrivers {
		if !n.HasDriver(d[0]) {
			return d[1]
		}
	}
	for _, v := range c.volumes {
		ok, ro := n.HostVolume(v.name)
		switch {
		case !ok:
			return v.missing
		case ro && !v.readOnly:
			return v.readOnlyReason
		}
	}
	return ""
}

func (c *Constraints) match(i int, con structs.Constraint, n *structs.Node) bool {
	v, ok := n.Label(con.Label)
	switch con.Operator {
	case structs.OpEqual:
		return ok && v == con.Value
	case structs.OpNotEqual:
		// A node without the label is "not equal" to any value.
		return !ok || v != con.Value
	case structs.OpIn:
		return ok && slices.Contains(con.Values, v)
	case structs.OpRegexp:
		return ok && c.res[i] != nil && c.res[i].MatchString(v)
	}
	// Unknown operators match nothing: safer to place nowhere than anywhere.
	return false
}
