// Package architecture picks the scheduling architecture a server runs
// and holds the settings of each, nested under the part that owns them:
// the evaluation loop's (scheduler.Config) once, since every architecture
// runs it, and each architecture's own beside it. The server keeps one
// Config and builds the architecture with New.
package architecture

import (
	"errors"
	"fmt"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/monolithic"
	"github.com/gantry-project/gantry/internal/scheduler/sharedstate"
	"github.com/gantry-project/gantry/internal/scheduler/twolevel"
)

// The architectures (Config.Architecture, `gantry server --scheduler`).
const (
	Monolithic  = monolithic.Architecture
	SharedState = sharedstate.Architecture
	TwoLevel    = twolevel.Architecture
)

// Names lists the architectures, in the order docs and flags name them.
var Names = []string{Monolithic, SharedState, TwoLevel}

// Config picks and tunes the scheduling architecture. Start from
// DefaultConfig; Validate reports every bad field and changes nothing.
type Config struct {
	// Architecture is the one to run: Monolithic, SharedState or
	// TwoLevel.
	Architecture string
	// Config holds the evaluation loop's settings (sample size, plan
	// retries, seed), whichever architecture runs it.
	scheduler.Config
	// Monolithic holds the monolithic loop's own settings, read only
	// when Architecture is Monolithic.
	Monolithic monolithic.Config
	// SharedState holds the shared-state pools' settings, read only when
	// Architecture is SharedState.
	SharedState sharedstate.Config
	// TwoLevel holds the allocator's and the built-in frameworks'
	// settings, read only when Architecture is TwoLevel.
	TwoLevel twolevel.Config
}

// DefaultConfig returns the monolithic architecture with every part's
// standard settings.
func DefaultConfig() Config {
	return Config{
		Architecture: Monolithic,
		Config:       scheduler.DefaultConfig(),
		Monolithic:   monolithic.DefaultConfig(),
		SharedState:  sharedstate.DefaultConfig(),
		TwoLevel:     twolevel.DefaultConfig(),
	}
}

// Validate reports every field that breaks a rule, named by its path
// ("sample_size", "shared_state.workers"), as structs.FieldErrors joined.
// The settings of the architecture not picked are not read, so not
// checked.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate()}
	switch c.Architecture {
	case Monolithic:
		errs = append(errs, scheduler.NestErrors("monolithic", c.Monolithic.Validate()))
	case SharedState:
		errs = append(errs, scheduler.NestErrors("shared_state", c.SharedState.Validate()))
	case TwoLevel:
		errs = append(errs, scheduler.NestErrors("two_level", c.TwoLevel.Validate()))
	default:
		errs = append(errs, scheduler.FieldErrorf("architecture", "must be %q, %q or %q (got %q)", Monolithic, SharedState, TwoLevel, c.Architecture))
	}
	return errors.Join(errs...)
}

// New validates c and builds the architecture it picks over env.
func New(c Config, env scheduler.Env) (scheduler.Architecture, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", scheduler.ErrInvalidConfig, err)
	}
	// Each branch returns a nil interface on error, never a typed nil.
	if c.Architecture == TwoLevel {
		s, err := twolevel.New(c.Config, c.TwoLevel, env)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if c.Architecture == SharedState {
		s, err := sharedstate.New(c.Config, c.SharedState, env)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := monolithic.New(c.Config, c.Monolithic, env)
	if err != nil {
		return nil, err
	}
	return s, nil
}
