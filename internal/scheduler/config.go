package scheduler

import (
	"errors"
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// DefaultMaxPlanRetries is how often a job whose plan conflicted is
// recomputed in a row before it backs off: five, as Nomad's service
// scheduler allows. A conflict means another plan took the room first, so
// an immediate retry on a newer view usually succeeds; a job that still
// conflicts after five is on a hot spot and yields its goroutine.
const DefaultMaxPlanRetries = 5

const (
	// ConflictBackoff is the wait before a job that kept conflicting is
	// evaluated again, so a hot spot cannot spin a goroutine.
	ConflictBackoff = 50 * time.Millisecond
	// ErrorBackoff is the wait before a job whose snapshot, plan submission
	// or plan commit failed is evaluated again.
	ErrorBackoff = time.Second
)

// ErrInvalidConfig wraps every configuration error an architecture's New
// returns.
var ErrInvalidConfig = errors.New("invalid scheduler config")

// Config tunes the evaluation loop, whichever architecture runs it. Start
// from DefaultConfig; Validate reports every bad field and changes nothing.
type Config struct {
	// SampleSize is how many feasible nodes with room are ranked per
	// placement (>= 1; see DefaultSampleSize). A shared-state pool may
	// set its own.
	SampleSize int
	// MaxPlanRetries is how often a job whose plan conflicted is
	// recomputed in a row before it backs off for ConflictBackoff (>= 0).
	MaxPlanRetries int
	// Seed seeds placement randomness: node order and allocation IDs.
	// 0 = from the clock when the architecture is built.
	Seed int64
}

// DefaultConfig returns the settings gantry runs with unless told
// otherwise.
func DefaultConfig() Config {
	return Config{SampleSize: DefaultSampleSize, MaxPlanRetries: DefaultMaxPlanRetries}
}

// Validate reports every field that breaks a rule, each as a
// structs.FieldError, joined.
func (c Config) Validate() error {
	var errs []error
	if c.SampleSize < 1 {
		errs = append(errs, FieldErrorf("sample_size", "must be >= 1 (got %d)", c.SampleSize))
	}
	if c.MaxPlanRetries < 0 {
		errs = append(errs, FieldErrorf("max_plan_retries", "must be >= 0 (got %d)", c.MaxPlanRetries))
	}
	return errors.Join(errs...)
}

// FieldErrorf names a setting and the rule it breaks, as a
// structs.FieldError ("sample_size: must be >= 1 (got 0)").
func FieldErrorf(field, format string, args ...any) error {
	return structs.FieldError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// NestErrors places every structs.FieldError in err (one error or a join)
// under parent, so a config nested in another names its fields by their
// full path ("workers" in "shared_state" becomes "shared_state.workers").
// Other errors are prefixed with parent.
func NestErrors(parent string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, NestErrors(parent, e))
		}
		return errors.Join(errs...)
	}
	var fe structs.FieldError
	if errors.As(err, &fe) {
		fe.Field = parent + "." + fe.Field
		return fe
	}
	return fmt.Errorf("%s: %w", parent, err)
}
