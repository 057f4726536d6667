package structs

import (
	"fmt"
	"regexp"
	"strings"
	"time"
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
	// what names the document ("" = job).
	what string
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Error()
	}
	what := e.what
	if what == "" {
		what = "job"
	}
	return "invalid " + what + ": " + strings.Join(parts, "; ")
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
	if j.Namespace == "" {
		j.Namespace = DefaultNamespace
	}
	if j.ID == "" {
		j.ID = JobKey(j.Namespace, j.Name)
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
		j.Restart = DefaultRestartPolicy(j.Type)
	}
	if j.Reschedule == (ReschedulePolicy{}) {
		j.Reschedule = DefaultReschedulePolicy(j.Type)
	}
	j.Logs = j.Logs.WithDefaults()
	j.canonicalizeUpdate()
	j.canonicalizeGroups()
	j.canonicalizeGroupPolicies()
	// A block written before delay functions existed keeps its meaning.
	if j.Restart.DelayFunction == "" {
		j.Restart.DelayFunction = DelayConstant
	}
	if j.Reschedule.DelayFunction == "" {
		j.Reschedule.DelayFunction = DelayConstant
	}
}

// DefaultRestartPolicy is the restart policy of a job that sets none:
// Nomad's (2 restarts in 30 minutes for services, 3 in a day for batch
// jobs, 15 s apart).
func DefaultRestartPolicy(t JobType) RestartPolicy {
	if t.RunsToCompletion() {
		return RestartPolicy{Attempts: 3, Interval: Duration(24 * time.Hour), Delay: Duration(15 * time.Second), DelayFunction: DelayConstant}
	}
	return RestartPolicy{Attempts: 2, Interval: Duration(30 * time.Minute), Delay: Duration(15 * time.Second), DelayFunction: DelayConstant}
}

// DefaultReschedulePolicy is the reschedule policy of a job that sets
// none: Nomad's. A service's failed copies are replaced forever, 30 s after
// the first failure, then with the wait doubling up to an hour (a crash
// loop costs one placement an hour, not one every few seconds); a batch
// job's once, after 5 s.
func DefaultReschedulePolicy(t JobType) ReschedulePolicy {
	if t.RunsToCompletion() {
		return ReschedulePolicy{Attempts: 1, Delay: Duration(5 * time.Second), DelayFunction: DelayConstant}
	}
	return ReschedulePolicy{Unlimited: true, Delay: Duration(30 * time.Second), DelayFunction: DelayExponential, MaxDelay: Duration(time.Hour)}
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
	if err := ValidateNamespaceName(j.Namespace); err != nil {
		e.add("namespace", "%v", err)
	}
	if want := JobKey(j.Namespace, j.Name); j.ID != want {
		e.add("id", "must be the name in the default namespace and <namespace>/<name> in others (want %q, got %q)", want, j.ID)
	}
	switch j.Type {
	case JobTypeService, JobTypeBatch, JobTypeSystem, JobTypeSysBatch:
	default:
		e.add("type", "must be \"service\", \"batch\", \"system\" or \"sysbatch\" (got %q)", j.Type)
	}
	validateJobKinds(e, j)
	validateUpdate(e, j)
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
	if j.HasGroups() {
		j.validateGroups(e, drivers) // group.go
	} else {
		j.validateSpec(e, drivers)
	}
	if len(e.Errors) > 0 {
		return e
	}
	return nil
}

// validateSpec checks the fields of a job's single group (a one-group job,
// or a group's view): resources, env, policies, logs, ports, services,
// tasks and the main task's driver.
func (j *Job) validateSpec(e *ValidationError, drivers DriverRules) {
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
	validateBackoff(e, "restart", j.Restart.DelayFunction, j.Restart.Delay, j.Restart.MaxDelay)
	if j.Reschedule.Attempts < 0 {
		e.add("reschedule.attempts", "must be >= 0 (got %d)", j.Reschedule.Attempts)
	}
	if j.Reschedule.Delay < 0 {
		e.add("reschedule.delay", "must be >= 0")
	}
	if l := j.Logs; l.MaxFiles < 1 || l.MaxFiles > MaxLogFiles {
		e.add("logs.max_files", "must be between 1 and %d files per stream (got %d)", MaxLogFiles, l.MaxFiles)
	}
	if l := j.Logs; l.MaxFileSizeMB < 1 || l.MaxFileSizeMB > MaxLogFileSizeMB {
		e.add("logs.max_file_size_mb", "must be between 1 and %d MiB (got %d)", MaxLogFileSizeMB, l.MaxFileSizeMB)
	}
	j.validateNetwork(e)
	j.validateServices(e)
	j.validateTasks(e, drivers)
	validateBackoff(e, "reschedule", j.Reschedule.DelayFunction, j.Reschedule.Delay, j.Reschedule.MaxDelay)
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
}

// validateBackoff checks a policy's delay function and its cap.
func validateBackoff(e *ValidationError, block, function string, delay, maxDelay Duration) {
	switch function {
	case DelayConstant:
	case DelayExponential, DelayFibonacci:
		if maxDelay < delay || maxDelay <= 0 {
			e.add(block+".max_delay", "must be set, and at least delay (%s), with delay_function %q: it caps the growing wait (got %s)",
				delay, function, maxDelay)
			return
		}
	default:
		e.add(block+".delay_function", "must be %q, %q or %q (got %q)", DelayConstant, DelayExponential, DelayFibonacci, function)
	}
	if maxDelay < 0 {
		e.add(block+".max_delay", "must be >= 0 (got %s)", maxDelay)
	}
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
