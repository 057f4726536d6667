package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
	"github.com/gantry-project/gantry/internal/structs"
)

// schedulerFlags maps the server's scheduler flags onto c, each into the
// settings of the part that owns it; c's values (from DefaultConfig) are
// the flags' defaults.
func schedulerFlags(f *pflag.FlagSet, c *architecture.Config) {
	f.StringVar(&c.Architecture, "scheduler", c.Architecture, "scheduling architecture: "+strings.Join(architecture.Names, ", "))
	f.IntVar(&c.SampleSize, "sample-size", c.SampleSize, "feasible nodes ranked per placement")
	f.IntVar(&c.SharedState.Workers, "schedulers", c.SharedState.Workers, "shared-state: parallel scheduler workers (of the service scheduler with --batch-schedulers)")
	f.IntVar(&c.SharedState.BatchWorkers, "batch-schedulers", c.SharedState.BatchWorkers, "shared-state: run a separate batch scheduler with this many workers (0 = one scheduler for every job type)")
	tl := &c.TwoLevel
	f.DurationVar(&tl.Allocator.OfferTimeout, "offer-timeout", tl.Allocator.OfferTimeout, "two-level: rescind an offer unused for this long (0 = never)")
	f.DurationVar(&tl.AllocationInterval, "allocation-interval", tl.AllocationInterval, "two-level: an allocation round waits this long for more changes to batch")
	f.Var(&roleWeights{c: &tl.Allocator}, "role-weight", "two-level: a role's weight in DRF, role=weight (repeat for more roles)")
	f.Var(&roleQuotas{c: &tl.Allocator}, "role-quota", "two-level: resources guaranteed to a role, role=cpu_millicores,memory_mb (repeat for more roles)")
	f.StringVar(&tl.Allocator.ReservationLabel, "reservation-label", tl.Allocator.ReservationLabel, "two-level: node label naming the role a node is reserved for")
	f.StringVar(&tl.Service.Role, "service-role", tl.Service.Role, "two-level: role of the built-in service framework")
	f.StringVar(&tl.Batch.Role, "batch-role", tl.Batch.Role, "two-level: role of the built-in batch framework")
	f.DurationVar(&tl.Service.DecisionDelay, "service-decision-delay", tl.Service.DecisionDelay, "two-level experiment: time the built-in service framework spends on each job, holding its offers")
	f.DurationVar(&tl.Batch.DecisionDelay, "batch-decision-delay", tl.Batch.DecisionDelay, "two-level experiment: time the built-in batch framework spends on each job, holding its offers")
}

// archFlags names the flags that belong to one architecture: given with
// another they would be ignored, so they are refused.
var archFlags = map[string][]string{
	architecture.SharedState: {"schedulers", "batch-schedulers"},
	architecture.TwoLevel: {"offer-timeout", "allocation-interval", "role-weight", "role-quota", "reservation-label",
		"service-role", "batch-role", "service-decision-delay", "batch-decision-delay"},
}

// archFlagsNeedIt refuses an architecture's settings given with another
// architecture, which would ignore them.
func archFlagsNeedIt(f *pflag.FlagSet, arch string) error {
	for _, owner := range architecture.Names {
		if owner == arch {
			continue
		}
		for _, name := range archFlags[owner] {
			if f.Changed(name) {
				return fmt.Errorf("--%s: needs --scheduler %s (got %q)", name, owner, arch)
			}
		}
	}
	return nil
}

// roleWeights is --role-weight: role=weight, repeatable.
type roleWeights struct{ c *twolevel.AllocatorConfig }

func (v *roleWeights) Type() string { return "role=weight" }

func (v *roleWeights) String() string {
	if v.c == nil {
		return ""
	}
	var parts []string
	for _, r := range sortedRoles(v.c.Roles) {
		if w := v.c.Roles[r].Weight; w != 0 {
			parts = append(parts, r+"="+strconv.FormatFloat(w, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

func (v *roleWeights) Set(s string) error {
	role, val, ok := strings.Cut(s, "=")
	w, err := strconv.ParseFloat(val, 64)
	if !ok || role == "" || err != nil || w <= 0 {
		return fmt.Errorf("want role=weight with a weight > 0 (got %q)", s)
	}
	rc := roleConfig(v.c, role)
	rc.Weight = w
	v.c.Roles[role] = rc
	return nil
}

// roleQuotas is --role-quota: role=cpu,memory, repeatable.
type roleQuotas struct{ c *twolevel.AllocatorConfig }

func (v *roleQuotas) Type() string { return "role=cpu,mem" }

func (v *roleQuotas) String() string {
	if v.c == nil {
		return ""
	}
	var parts []string
	for _, r := range sortedRoles(v.c.Roles) {
		if q := v.c.Roles[r].Quota; !q.IsZero() {
			parts = append(parts, fmt.Sprintf("%s=%d,%d", r, q.CPU, q.MemoryMB))
		}
	}
	return strings.Join(parts, " ")
}

func (v *roleQuotas) Set(s string) error {
	role, val, ok := strings.Cut(s, "=")
	c, m, ok2 := strings.Cut(val, ",")
	cpu, err1 := strconv.ParseInt(c, 10, 64)
	mem, err2 := strconv.ParseInt(m, 10, 64)
	if !ok || !ok2 || role == "" || err1 != nil || err2 != nil || cpu < 0 || mem < 0 {
		return fmt.Errorf("want role=cpu_millicores,memory_mb (got %q)", s)
	}
	rc := roleConfig(v.c, role)
	rc.Quota = structs.Resources{CPU: cpu, MemoryMB: mem}
	v.c.Roles[role] = rc
	return nil
}

func roleConfig(c *twolevel.AllocatorConfig, role string) twolevel.RoleConfig {
	if c.Roles == nil {
		c.Roles = map[string]twolevel.RoleConfig{}
	}
	return c.Roles[role]
}

func sortedRoles(m map[string]twolevel.RoleConfig) []string {
	out := make([]string, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
