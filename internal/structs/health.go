package structs

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Services and health checks (Nomad's service blocks, Kubernetes'
// liveness and readiness probes): a job declares services, each named,
// on one of its port labels, with checks the agent runs against every
// copy. The copy's verdict (AllocHealth) travels in the agent's reports
// into the allocation, where rolling updates read it (readiness) and the
// servers' catalog of instances is built from it (discovery).

// Check types.
const (
	CheckHTTP   = "http"
	CheckTCP    = "tcp"
	CheckScript = "script" // a command run in the task's context
)

// Check statuses.
const (
	CheckPassing  = "passing"
	CheckWarning  = "warning"
	CheckCritical = "critical"
)

// Limits and defaults of services and checks.
const (
	MaxServicesPerJob    = 16
	MaxChecksPerService  = 8
	MaxTagsPerService    = 16
	MaxCheckOutput       = 512 // bytes of a check's output kept in its status
	MaxCheckArgs         = 32
	MaxCheckPathLen      = 1024
	MinCheckInterval     = 100 * time.Millisecond
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	MaxCheckThreshold    = 100
)

// Service is a named endpoint of every copy of a job.
type Service struct {
	// Name is a DNS label: <name>.service.gantry.
	Name string `json:"name" yaml:"name"`
	// Port is the label of one of the job's network ports ("" = none:
	// instances have an address and no port).
	Port   string   `json:"port,omitempty" yaml:"port,omitempty"`
	Tags   []string `json:"tags,omitempty" yaml:"tags,omitempty"`
	Checks []Check  `json:"checks,omitempty" yaml:"checks,omitempty"`
}

// Check is one health check of a service's copies.
type Check struct {
	// Name defaults to "<service>-<type>-<index>".
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	Type string `json:"type" yaml:"type"`
	// Path is the HTTP path (http; default "/"). 2xx passes, 429 warns,
	// anything else (or no answer) is critical.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Port overrides the service's port label (http, tcp).
	Port string `json:"port,omitempty" yaml:"port,omitempty"`
	// Command and Args run in the task's context (script): exit 0 passes,
	// 1 warns, anything else is critical.
	Command string   `json:"command,omitempty" yaml:"command,omitempty"`
	Args    []string `json:"args,omitempty" yaml:"args,omitempty"`

	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"` // default 10s
	Timeout  Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`   // default 2s
	// SuccessThreshold and FailureThreshold are the consecutive results
	// that turn the check passing and failing (default 1 each).
	SuccessThreshold int `json:"success_threshold,omitempty" yaml:"success_threshold,omitempty"`
	FailureThreshold int `json:"failure_threshold,omitempty" yaml:"failure_threshold,omitempty"`
	// InitialDelay is the wait after the task starts before the first run.
	InitialDelay Duration `json:"initial_delay,omitempty" yaml:"initial_delay,omitempty"`
	// CheckRestart, when set, restarts the task once the check has been
	// failing this long (liveness); nil only reports (readiness).
	CheckRestart *CheckRestart `json:"check_restart,omitempty" yaml:"check_restart,omitempty"`
}

// CheckRestart restarts a task whose check keeps failing. The restart
// counts against the job's restart policy as an exit would.
type CheckRestart struct {
	// Limit is the consecutive failing results that restart the task.
	Limit int `json:"limit" yaml:"limit"`
	// Grace is the time after a (re)start during which failures do not count.
	Grace Duration `json:"grace,omitempty" yaml:"grace,omitempty"`
}

// WithDefaults fills the fields left at zero.
func (c Check) WithDefaults() Check {
	if c.Interval == 0 {
		c.Interval = Duration(DefaultCheckInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultCheckTimeout)
	}
	if c.SuccessThreshold == 0 {
		c.SuccessThreshold = 1
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 1
	}
	if c.Type == CheckHTTP && c.Path == "" {
		c.Path = "/"
	}
	return c
}

// CheckName is the check's name, or the default one.
func CheckName(svc string, i int, c Check) string {
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("%s-%s-%d", svc, c.Type, i)
}

// AllocHealth is an allocation's health as its agent last reported it.
// A nil *AllocHealth means not known yet. A running copy without checks is
// healthy once its task runs; with checks, when every check passes.
type AllocHealth struct {
	Healthy bool `json:"healthy"`
	// Time is when the verdict last changed (unix nanoseconds).
	Time   int64         `json:"time"`
	Checks []CheckStatus `json:"checks,omitempty"`
}

// CheckStatus is one check's last status.
type CheckStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"` // passing, warning or critical
	// Output is the check's last output, cut at MaxCheckOutput bytes.
	Output string `json:"output,omitempty"`
	// Time is when the status last changed (unix nanoseconds).
	Time int64 `json:"time"`
}

// Copy returns a deep copy (nil for nil).
func (h *AllocHealth) Copy() *AllocHealth {
	if h == nil {
		return nil
	}
	c := *h
	c.Checks = append([]CheckStatus(nil), h.Checks...)
	return &c
}

// Equal compares two verdicts, nil included.
func (h *AllocHealth) Equal(o *AllocHealth) bool {
	if h == nil || o == nil {
		return h == o
	}
	if h.Healthy != o.Healthy || h.Time != o.Time || len(h.Checks) != len(o.Checks) || (h.Checks == nil) != (o.Checks == nil) {
		return false
	}
	for i := range h.Checks {
		if h.Checks[i] != o.Checks[i] {
			return false
		}
	}
	return true
}

// TruncateCheckOutput cuts s to MaxCheckOutput bytes without splitting a
// UTF-8 sequence.
func TruncateCheckOutput(s string) string {
	if len(s) <= MaxCheckOutput {
		return s
	}
	n := MaxCheckOutput
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// HasChecks reports whether any service of the job has a check.
func (j *Job) HasChecks() bool {
	for _, s := range j.Services {
		if len(s.Checks) > 0 {
			return true
		}
	}
	return false
}

// serviceNameRE keeps service names and tags usable as DNS labels.
var serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidServiceName reports whether s can name a service or a tag.
func ValidServiceName(s string) bool { return serviceNameRE.MatchString(s) }

func (j *Job) validateServices(e *ValidationError) {
	if len(j.Services) > MaxServicesPerJob {
		e.add("services", "at most %d services per job (got %d)", MaxServicesPerJob, len(j.Services))
		return
	}
	labels := map[string]bool{}
	if j.Network != nil {
		for _, p := range j.Network.Ports {
			labels[strings.ToUpper(p.Label)] = true
		}
	}
	names := map[string]bool{}
	for i, s := range j.Services {
		f := fmt.Sprintf("services[%d]", i)
		switch {
		case !ValidServiceName(s.Name):
			e.add(f+".name", "must be a DNS label: lower-case letters, digits and '-', 1-63 characters, not starting or ending with '-' (got %q)", s.Name)
		case names[s.Name]:
			e.add(f+".name", "service %q is declared twice", s.Name)
		}
		names[s.Name] = true
		if s.Port != "" && !labels[strings.ToUpper(s.Port)] {
			e.add(f+".port", "names no port of network.ports (got %q)", s.Port)
		}
		if len(s.Tags) > MaxTagsPerService {
			e.add(f+".tags", "at most %d tags (got %d)", MaxTagsPerService, len(s.Tags))
		}
		for k, t := range s.Tags {
			if !ValidServiceName(t) {
				e.add(fmt.Sprintf("%s.tags[%d]", f, k), "must be a DNS label: lower-case letters, digits and '-', 1-63 characters (got %q)", t)
			}
		}
		if len(s.Checks) > MaxChecksPerService {
			e.add(f+".checks", "at most %d checks per service (got %d)", MaxChecksPerService, len(s.Checks))
			continue
		}
		checkNames := map[string]bool{}
		for k, c := range s.Checks {
			cf := fmt.Sprintf("%s.checks[%d]", f, k)
			validateCheck(e, cf, s, c, labels)
			n := CheckName(s.Name, k, c)
			if checkNames[n] {
				e.add(cf+".name", "check %q is declared twice in this service", n)
			}
			checkNames[n] = true
		}
	}
}

func validateCheck(e *ValidationError, f string, s Service, c Check, labels map[string]bool) {
	if len(c.Name) > MaxNameLen {
		e.add(f+".name", "must be at most %d characters", MaxNameLen)
	}
	switch c.Type {
	case CheckHTTP, CheckTCP:
		port := c.Port
		if port == "" {
			port = s.Port
		}
		switch {
		case port == "":
			e.add(f+".port", "a %s check needs a port: set the service's port or the check's", c.Type)
		case !labels[strings.ToUpper(port)]:
			e.add(f+".port", "names no port of network.ports (got %q)", port)
		}
		if c.Type == CheckHTTP && c.Path != "" && (!strings.HasPrefix(c.Path, "/") || len(c.Path) > MaxCheckPathLen || strings.ContainsAny(c.Path, " \r\n\x00")) {
			e.add(f+".path", "must start with '/', hold no spaces or control characters and be at most %d characters (got %q)", MaxCheckPathLen, c.Path)
		}
		if c.Command != "" || len(c.Args) > 0 {
			e.add(f+".command", "only script checks run a command")
		}
	case CheckScript:
		if c.Command == "" {
			e.add(f+".command", "is required for a script check")
		}
		if len(c.Args) > MaxCheckArgs {
			e.add(f+".args", "at most %d arguments (got %d)", MaxCheckArgs, len(c.Args))
		}
	default:
		e.add(f+".type", "must be \"http\", \"tcp\" or \"script\" (got %q)", c.Type)
	}
	if c.Interval != 0 && c.Interval.D() < MinCheckInterval {
		e.add(f+".interval", "must be at least %s (got %s)", MinCheckInterval, c.Interval)
	}
	if c.Timeout < 0 {
		e.add(f+".timeout", "must be >= 0 (got %s)", c.Timeout)
	}
	if c.InitialDelay < 0 {
		e.add(f+".initial_delay", "must be >= 0 (got %s)", c.InitialDelay)
	}
	if c.SuccessThreshold < 0 || c.SuccessThreshold > MaxCheckThreshold {
		e.add(f+".success_threshold", "must be between 1 and %d (got %d)", MaxCheckThreshold, c.SuccessThreshold)
	}
	if c.FailureThreshold < 0 || c.FailureThreshold > MaxCheckThreshold {
		e.add(f+".failure_threshold", "must be between 1 and %d (got %d)", MaxCheckThreshold, c.FailureThreshold)
	}
	if r := c.CheckRestart; r != nil {
		if r.Limit < 1 || r.Limit > MaxCheckThreshold {
			e.add(f+".check_restart.limit", "must be between 1 and %d (got %d)", MaxCheckThreshold, r.Limit)
		}
		if r.Grace < 0 {
			e.add(f+".check_restart.grace", "must be >= 0 (got %s)", r.Grace)
		}
	}
}

// copyServices deep-copies a job's services.
func copyServices(in []Service) []Service {
	if in == nil {
		return nil
	}
	out := make([]Service, len(in))
	for i, s := range in {
		s.Tags = append([]string(nil), s.Tags...)
		if s.Checks != nil {
			cs := make([]Check, len(s.Checks))
			for k, c := range s.Checks {
				c.Args = append([]string(nil), c.Args...)
				if c.CheckRestart != nil {
					r := *c.CheckRestart
					c.CheckRestart = &r
				}
				cs[k] = c
			}
			s.Checks = cs
		}
		out[i] = s
	}
	return out
}
