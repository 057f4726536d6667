package twolevel

import (
	"errors"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler"
)

// Architecture is the name shown by `gantry scheduler status` and taken by
// `gantry server --scheduler`.
const Architecture = "two-level"

// Defaults.
const (
	DefaultAllocationInterval = 0
	DefaultSweepInterval      = time.Second
	DefaultSweepNodes         = 1024
	DefaultHeartbeatInterval  = 15 * time.Second
	DefaultSubscriberBuffer   = 1024
	DefaultMaxFrameworks      = 64
	DefaultMaxTasks           = 100000
	DefaultBuiltinRefuse      = 5 * time.Second
	DefaultBuiltinLinger      = 20 * time.Millisecond
	DefaultMaxInflightPlans   = 64
)

// Config holds what the two-level architecture owns: the allocator, the
// built-in frameworks and the limits of the framework API. The
// evaluation loop's settings are the core's (scheduler.Config). Start from
// DefaultConfig; Validate reports every bad field and changes nothing.
type Config struct {
	// Allocator tunes the DRF allocator (offer timeout, roles, weights,
	// quotas, reservations).
	Allocator AllocatorConfig
	// AllocationInterval batches allocation rounds: after something
	// changes, the round waits this long for more changes. 0 (default):
	// at once; changes that arrive while a round runs are handled by the
	// next, so rounds batch under load anyway.
	AllocationInterval time.Duration
	// SweepInterval and SweepNodes: besides the nodes whose allocations
	// are known to have changed, every SweepInterval the allocator re-reads
	// the usage of SweepNodes more nodes (in turn), so no missed change
	// lingers.
	SweepInterval time.Duration
	SweepNodes    int
	// Service and Batch are the built-in frameworks.
	Service, Batch BuiltinConfig
	// HeartbeatInterval is how often a subscribed framework receives a
	// HEARTBEAT event.
	HeartbeatInterval time.Duration
	// SubscriberBuffer bounds the events queued for one subscribed
	// framework; one that falls further behind is dropped (it subscribes
	// again), so a framework that does not read never slows the leader.
	SubscriberBuffer int
	// MaxFrameworks bounds the external frameworks registered at once;
	// MaxTasks the live tasks of one framework.
	MaxFrameworks, MaxTasks int
}

// BuiltinConfig tunes a built-in framework.
type BuiltinConfig struct {
	// Role is the role its share counts under ("" = structs.DefaultRole).
	Role string
	// DecisionDelay is a think time per job, spent holding the offers:
	// an experiment setting that reproduces the offer-hoarding cost of
	// slow second-level schedulers (Omega, section 5). 0 normally.
	DecisionDelay time.Duration
	// Refuse filters the offers declined while jobs still wait (they did
	// not fit): the same room is not offered again for this long unless
	// it grows.
	Refuse time.Duration
	// Linger is how long an idle framework keeps its offers for work
	// that arrives meanwhile before it declines them and suppresses
	// offers (0 = at once). Longer placed bursts of jobs sooner; it also
	// holds the room from other frameworks that long.
	Linger time.Duration
	// MaxInflightPlans bounds the plans whose commit the framework does
	// not wait for, with a pipelined planner.
	MaxInflightPlans int
}

// DefaultConfig returns the two-level architecture's standard settings.
func DefaultConfig() Config {
	b := BuiltinConfig{Refuse: DefaultBuiltinRefuse, Linger: DefaultBuiltinLinger, MaxInflightPlans: DefaultMaxInflightPlans}
	return Config{
		Allocator:          DefaultAllocatorConfig(),
		AllocationInterval: DefaultAllocationInterval,
		SweepInterval:      DefaultSweepInterval,
		SweepNodes:         DefaultSweepNodes,
		Service:            b,
		Batch:              b,
		HeartbeatInterval:  DefaultHeartbeatInterval,
		SubscriberBuffer:   DefaultSubscriberBuffer,
		MaxFrameworks:      DefaultMaxFrameworks,
		MaxTasks:           DefaultMaxTasks,
	}
}

// Validate reports every field that breaks a rule.
func (c Config) Validate() error {
	errs := []error{scheduler.NestErrors("allocator", c.Allocator.Validate())}
	if c.AllocationInterval < 0 {
		errs = append(errs, fieldErrorf("allocation_interval", "must be >= 0 (got %s)", c.AllocationInterval))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, fieldErrorf("sweep_interval", "must be > 0 (got %s)", c.SweepInterval))
	}
	if c.SweepNodes < 1 {
		errs = append(errs, fieldErrorf("sweep_nodes", "must be >= 1 (got %d)", c.SweepNodes))
	}
	errs = append(errs, scheduler.NestErrors("service", c.Service.validate()), scheduler.NestErrors("batch", c.Batch.validate()))
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fieldErrorf("heartbeat_interval", "must be > 0 (got %s)", c.HeartbeatInterval))
	}
	if c.SubscriberBuffer < 16 {
		errs = append(errs, fieldErrorf("subscriber_buffer", "must be >= 16 (got %d)", c.SubscriberBuffer))
	}
	if c.MaxFrameworks < 1 {
		errs = append(errs, fieldErrorf("max_frameworks", "must be >= 1 (got %d)", c.MaxFrameworks))
	}
	if c.MaxTasks < 1 {
		errs = append(errs, fieldErrorf("max_tasks", "must be >= 1 (got %d)", c.MaxTasks))
	}
	return errors.Join(errs...)
}

func (b BuiltinConfig) validate() error {
	var errs []error
	if b.DecisionDelay < 0 {
		errs = append(errs, fieldErrorf("decision_delay", "must be >= 0 (got %s)", b.DecisionDelay))
	}
	if b.Refuse < 0 {
		errs = append(errs, fieldErrorf("refuse", "must be >= 0 (got %s)", b.Refuse))
	}
	if b.Linger < 0 {
		errs = append(errs, fieldErrorf("linger", "must be >= 0 (got %s)", b.Linger))
	}
	if b.MaxInflightPlans < 1 {
		errs = append(errs, fieldErrorf("max_inflight_plans", "must be >= 1 (got %d)", b.MaxInflightPlans))
	}
	return errors.Join(errs...)
}
