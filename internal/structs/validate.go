package structs

import (
	"fmt"
	"regexp"
	"strings"
)

// Limits on job fields.
const (
	MaxPriority  = 100
	MaxCount     = 100000
	MaxNameLen   = 128
	DefaultPrio  = 50
	DefaultCount = 1
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// FieldError names the field of a document that breaks a rule.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Rule }

// ValidationError lists every rule a document breaks, so a user fixes them
// all in one round.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Error()
	}
	return "invalid job: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Errors = append(e.Errors, FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
}

// DriverRules knows the task drivers a job may name and checks their config
// blocks. internal/driverschema's registry, which the drivers fill, is the
// one the server and the job parser use.
type DriverRules interface {
	// CheckConfig returns the problems of a config block for the named
	// driver, field names relative to "config"; known is false if no
	// such driver is registered.
	CheckConfig(driver string, config map[string]any) (errs []FieldError, known bool)
	// Names lists the known drivers, sorted.
	Names() []string
}

// Canonicalize fills defaults for fields the user left out. It is applied
// before Validate, on the server, before the job is proposed to Raft.
func (j *Job) Canonicalize() {
	if j.ID == "" {
		j.ID = j.Name
	}
	if j.Type == "" {
		j.Type = JobTypeService
	}
	if j.Priority == 0 {
		j.Priority = DefaultPrio
	}
	if j.Placement == "" {
		j.Placement = PlacementBinpack
	}
	if j.Restart == (RestartPolicy{}) {
		j.Restart = RestartPolicy{Attempts: 2, Interval: Duration(30 * 60e9), Delay: Duration(1e9)}
		if j.Type == JobTypeBatch {
			j.Restart.Attempts = 3
		}
	}
	if j.Reschedule == (ReschedulePolicy{}) {
		j.Reschedule = ReschedulePolicy{Unlimited: j.Type == JobTypeService, Attempts: 1, Delay: Duration(1e9)}
	}
}

// Validate checks a canonicalized job: the driver it names and that
// driver's config block against drivers; nil drivers skips those checks.
func (j *Job) Validate(drivers DriverRules) error {
	e := &ValidationError{}
	switch {
	case j.Name == "":
		e.add("name", "is required")
	case len(j.Name) > MaxNameLen:
		e.add("name", "must be at most %d characters", MaxNameLen)
	case !nameRE.MatchString(j.Name):
		e.add("name", "must start with a letter or digit and contain only letters, digits, '_', '-' and '.' (got %q)", j.Name)
	}
	if j.ID != j.Name {
		e.add("id", "must equal name (got %q)", j.ID)
	}
	if j.Type != JobTypeService && j.Type != JobTypeBatch {
		e.add("type", "must be \"service\" or \"batch\" (got %q)", j.Type)
	}
	if j.Priority < 1 || j.Priority > MaxPriority {
		e.add("priority", "must be between 1 and %d (got %d)", MaxPriority, j.Priority)
	}
	if j.Count < 0 || j.Count > MaxCount {
		e.add("count", "must be between 0 and %d (got %d)", MaxCount, j.Count)
	}
	if j.Framework != "" && (len(j.Framework) > MaxNameLen || !nameRE.MatchString(j.Framework)) {
		e.add("framework", "must be a framework name: letters, digits, '_', '-' and '.', at most %d characters (got %q)", MaxNameLen, j.Framework)
	}
	if j.Placement != PlacementBinpack && j.Placement != PlacementSpread {
		e.add("placement", "must be \"binpack\" or \"spread\" (got %q)", j.Placement)
	}
	for i, c := range j.Constraints {
		validateConstraint(e, fmt.Sprintf("constraints[%d]", i), c)
	}
	if j.Resources.CPU <= 0 {
		e.add("resources.cpu", "must be > 0 millicores (got %d)", j.Resources.CPU)
	}
	if j.Resources.MemoryMB <= 0 {
		e.add("resources.memory_mb", "must be > 0 MiB (got %d)", j.Resources.MemoryMB)
	}
	for k := range j.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			e.add("env", "variable name %q must be non-empty and contain no '=' or NUL", k)
		}
	}
	if j.Restart.Attempts < 0 {
		e.add("restart.attempts", "must be >= 0 (got %d)", j.Restart.Attempts)
	}
	if j.Restart.Delay < 0 || j.Restart.Interval < 0 {
		e.add("restart", "delay and interval must be >= 0")
	}
	if j.Reschedule.Attempts < 0 {
		e.add("reschedule.attempts", "must be >= 0 (got %d)", j.Reschedule.Attempts)
	}
	if j.Reschedule.Delay < 0 {
		e.add("reschedule.delay", "must be >= 0")
	}
	if j.Driver == "" {
		e.add("driver", "is required")
	} else if drivers != nil {
		if errs, known := drivers.CheckConfig(j.Driver, j.Config); known {
			for _, fe := range errs {
				fe.Field = "config." + fe.Field
				e.Errors = append(e.Errors, fe)
			}
		} else if names := drivers.Names(); len(names) == 0 {
			e.add("driver", "unknown driver %q (no task driver is registered in this program)", j.Driver)
		} else {
			e.add("driver", "unknown driver %q (known: %s)", j.Driver, strings.Join(names, ", "))
		}
	}
	if len(e.Errors) > 0 {
		return e
	}
	return nil
}

func validateConstraint(e *ValidationError, field string, c Constraint) {
	if c.Label == "" {
		e.add(field+".label", "is required")
	}
	switch c.Operator {
	case OpEqual, OpNotEqual:
		if len(c.Values) > 0 {
			e.add(field+".values", "is only used with op \"in\"; use value")
		}
	case OpIn:
		if len(c.Values) == 0 {
			e.add(field+".values", "must list at least one value for op \"in\"")
		}
	case OpRegexp:
		if _, err := regexp.Compile(c.Value); err != nil {
			e.add(field+".value", "is not a valid regular expression: %v", err)
		}
	default:
		e.add(field+".op", "must be one of \"=\", \"!=\", \"in\", \"regexp\" (got %q)", c.Operator)
	}
}
