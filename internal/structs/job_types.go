package structs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	// Cron time zones are looked up by name; embedding the zone database
	// makes a periodic job's `time_zone` mean the same on every server,
	// whatever the host's /usr/share/zoneinfo holds.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Job types that run one copy per eligible node instead of Count copies
// (Nomad's system and sysbatch schedulers, Kubernetes' DaemonSet).
const (
	// JobTypeSystem keeps one copy running on every eligible node, placing
	// one on each node that joins or becomes eligible.
	JobTypeSystem JobType = "system"
	// JobTypeSysBatch runs one copy to completion on every eligible node.
	JobTypeSysBatch JobType = "sysbatch"
)

// PerNode reports whether the scheduler places one copy per eligible node
// (system, sysbatch) rather than Count copies.
func (t JobType) PerNode() bool { return t == JobTypeSystem || t == JobTypeSysBatch }

// RunsToCompletion reports whether a copy that exits 0 is done for good
// (batch, sysbatch).
func (t JobType) RunsToCompletion() bool { return t == JobTypeBatch || t == JobTypeSysBatch }

// PeriodicConfig makes a job a template the leader launches on a cron
// schedule: each launch registers a child job NAME.periodic-<unix seconds>.
type PeriodicConfig struct {
	// Cron is a standard five-field cron expression ("*/15 * * * *") or a
	// descriptor (@hourly, @daily, @every 10m).
	Cron string `json:"cron" yaml:"cron"`
	// TimeZone is an IANA zone name ("Europe/Paris"); empty = UTC.
	TimeZone string `json:"time_zone,omitempty" yaml:"time_zone,omitempty"`
	// ProhibitOverlap skips a launch while a child of an earlier launch is
	// still running.
	ProhibitOverlap bool `json:"prohibit_overlap,omitempty" yaml:"prohibit_overlap,omitempty"`
}

// cronParser reads the standard five fields and descriptors, as Nomad does
// (no seconds field: a job launched every second is a service).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// MaxCronLen bounds a cron expression (real ones are under 40 bytes).
const MaxCronLen = 256

// Schedule parses the expression and the zone.
func (p *PeriodicConfig) Schedule() (cron.Schedule, *time.Location, error) {
	if len(p.Cron) > MaxCronLen {
		return nil, nil, fmt.Errorf("cron: at most %d characters (got %d)", MaxCronLen, len(p.Cron))
	}
	if strings.Contains(p.Cron, "TZ=") {
		// robfig/cron reads a CRON_TZ= prefix; the zone has its own field.
		return nil, nil, fmt.Errorf("cron: give the zone in time_zone, not in the expression")
	}
	loc := time.UTC
	if p.TimeZone != "" {
		l, err := time.LoadLocation(p.TimeZone)
		if err != nil || strings.HasPrefix(p.TimeZone, "/") || strings.Contains(p.TimeZone, "..") {
			return nil, nil, fmt.Errorf("time_zone: unknown zone %q (an IANA name such as \"Europe/Paris\")", p.TimeZone)
		}
		loc = l
	}
	s, err := cronParser.Parse(p.Cron)
	if err != nil {
		return nil, nil, fmt.Errorf("cron: %q: %w", p.Cron, err)
	}
	return s, loc, nil
}

// Next returns the first launch time strictly after t, or the zero time if
// the expression never fires (as "0 0 30 2 *").
func (p *PeriodicConfig) Next(t time.Time) (time.Time, error) {
	s, loc, err := p.Schedule()
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t.In(loc)), nil
}

// Payload rules of a parameterized job.
const (
	DispatchPayloadOptional  = "optional"
	DispatchPayloadRequired  = "required"
	DispatchPayloadForbidden = "forbidden"
)

// Limits on dispatch input: Nomad's 16 KiB payload; metadata bounded so a
// client cannot grow a job (stored in Raft and in every allocation) freely.
const (
	MaxDispatchPayload = 16 << 10
	MaxMetaKeys        = 64
	MaxMetaKeyLen      = 128
	MaxMetaValueLen    = 1024
	// MaxParentNameLen leaves room in MaxNameLen for a child's suffix
	// (".periodic-" + 20 digits, ".dispatch-" + 16 hex digits).
	MaxParentNameLen = MaxNameLen - 32
)

// ParameterizedConfig makes a job a template started with `gantry job
// dispatch`: each dispatch registers a child job NAME.dispatch-<id> with
// the payload and the metadata given.
type ParameterizedConfig struct {
	// Payload is optional (default), required or forbidden.
	Payload string `json:"payload,omitempty" yaml:"payload,omitempty"`
	// MetaRequired are keys every dispatch must give; MetaOptional the
	// other keys it may give. Any other key is refused.
	MetaRequired []string `json:"meta_required,omitempty" yaml:"meta_required,omitempty"`
	MetaOptional []string `json:"meta_optional,omitempty" yaml:"meta_optional,omitempty"`
}

// IsParent reports whether the job is a template (periodic or
// parameterized): the scheduler places none of its copies, its children
// run.
func (j *Job) IsParent() bool { return j.Periodic != nil || j.Parameterized != nil }

// Child name suffixes. A '/' (Nomad's NAME/periodic-<unix>) cannot be
// used: it separates a job key's namespace from its name (JobKey).
const (
	PeriodicSuffix = ".periodic-"
	DispatchSuffix = ".dispatch-"
)

// PeriodicChildName names the child a periodic job launches at t.
func PeriodicChildName(parent string, t time.Time) string {
	return parent + PeriodicSuffix + strconv.FormatInt(t.Unix(), 10)
}

// PeriodicLaunchTime reads the launch time back from a child's name.
func PeriodicLaunchTime(parent, child string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(child, parent+PeriodicSuffix)
	if !ok {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// DispatchChildName names a dispatched child.
func DispatchChildName(parent, id string) string { return parent + DispatchSuffix + id }

// validateJobKinds checks the fields of job types, periodic,
// parameterized and meta (called by Validate).
func validateJobKinds(e *ValidationError, j *Job) {
	if j.Type.PerNode() && j.Count > 1 {
		e.add("count", "a %s job runs one copy per eligible node: leave count out (got %d)", j.Type, j.Count)
	}
	if j.Type.PerNode() && j.Gang {
		e.add("gang", "not supported for %s jobs", j.Type)
	}
	validateMeta(e, "meta", j.Meta)
	if j.IsParent() && len(j.Name) > MaxParentNameLen {
		e.add("name", "a periodic or parameterized job's name is at most %d characters (its children's names add a suffix)", MaxParentNameLen)
	}
	if j.Periodic != nil && j.Parameterized != nil {
		e.add("periodic", "a job is periodic or parameterized, not both")
	}
	if p := j.Periodic; p != nil {
		if !j.Type.RunsToCompletion() {
			e.add("periodic", "only batch and sysbatch jobs can be periodic (got %s)", j.Type)
		}
		if p.Cron == "" {
			e.add("periodic.cron", "is required")
		} else if _, _, err := p.Schedule(); err != nil {
			field, msg, _ := strings.Cut(err.Error(), ": ")
			e.add("periodic."+field, "%s", msg)
		}
	}
	if p := j.Parameterized; p != nil {
		if !j.Type.RunsToCompletion() {
			e.add("parameterized", "only batch and sysbatch jobs can be parameterized (got %s)", j.Type)
		}
		switch p.Payload {
		case DispatchPayloadOptional, DispatchPayloadRequired, DispatchPayloadForbidden:
		default:
			e.add("parameterized.payload", "must be \"optional\", \"required\" or \"forbidden\" (got %q)", p.Payload)
		}
		seen := map[string]bool{}
		for _, list := range [][]string{p.MetaRequired, p.MetaOptional} {
			for _, k := range list {
				switch {
				case !validMetaKey(k):
					e.add("parameterized", "meta key %q must be 1-%d letters, digits, '_', '-' or '.'", k, MaxMetaKeyLen)
				case seen[k]:
					e.add("parameterized", "meta key %q is listed twice", k)
				}
				seen[k] = true
			}
		}
		if len(seen) > MaxMetaKeys {
			e.add("parameterized", "at most %d meta keys (got %d)", MaxMetaKeys, len(seen))
		}
	}
	if j.ParentID != "" && j.IsParent() {
		e.add("periodic", "a child job cannot itself be periodic or parameterized")
	}
}

func validMetaKey(k string) bool {
	return k != "" && len(k) <= MaxMetaKeyLen && nameRE.MatchString(k)
}

func validateMeta(e *ValidationError, field string, m map[string]string) {
	if len(m) > MaxMetaKeys {
		e.add(field, "at most %d keys (got %d)", MaxMetaKeys, len(m))
	}
	for _, k := range slices.Sorted(mapStringKeys(m)) {
		if !validMetaKey(k) {
			e.add(field, "key %q must be 1-%d letters, digits, '_', '-' or '.', starting with a letter or digit", k, MaxMetaKeyLen)
		}
		if len(m[k]) > MaxMetaValueLen || strings.ContainsRune(m[k], 0) {
			e.add(field, "value of %q must be at most %d bytes, without NUL", k, MaxMetaValueLen)
		}
	}
}

func mapStringKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// CheckDispatch checks a dispatch of a parameterized job: payload size and
// rule, required and allowed metadata keys. Errors name what to fix.
func (j *Job) CheckDispatch(payload []byte, meta map[string]string) error {
	p := j.Parameterized
	if p == nil {
		return fmt.Errorf("job %q is not parameterized (it has no parameterized block)", j.Name)
	}
	e := &ValidationError{what: "dispatch"}
	switch {
	case len(payload) > MaxDispatchPayload:
		e.add("payload", "at most %d bytes (got %d)", MaxDispatchPayload, len(payload))
	case p.Payload == DispatchPayloadRequired && len(payload) == 0:
		e.add("payload", "is required by job %q", j.Name)
	case p.Payload == DispatchPayloadForbidden && len(payload) > 0:
		e.add("payload", "is forbidden by job %q", j.Name)
	}
	validateMeta(e, "meta", meta)
	for _, k := range p.MetaRequired {
		if _, ok := meta[k]; !ok {
			e.add("meta", "key %q is required", k)
		}
	}
	for _, k := range slices.Sorted(mapStringKeys(meta)) {
		if !slices.Contains(p.MetaRequired, k) && !slices.Contains(p.MetaOptional, k) {
			allowed := append(slices.Clone(p.MetaRequired), p.MetaOptional...)
			e.add("meta", "key %q is not allowed (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	if len(e.Errors) > 0 {
		return e
	}
	return nil
}

// Child returns the job a periodic launch or a dispatch registers: the
// template without its periodic and parameterized blocks, named name, its
// ParentID set, the dispatch's meta merged over the template's.
func (j *Job) Child(name string, payload []byte, meta map[string]string) *Job {
	c := j.Copy()
	c.Name = name
	c.ID = JobKey(j.Namespace, name)
	c.ParentID = j.ID
	c.Periodic, c.Parameterized = nil, nil
	c.Payload = append([]byte(nil), payload...)
	if len(meta) > 0 && c.Meta == nil {
		c.Meta = map[string]string{}
	}
	for k, v := range meta {
		c.Meta[k] = v
	}
	c.Version, c.Status, c.Stop, c.StopTime = 0, "", false, 0
	c.CreateIndex, c.ModifyIndex = 0, 0
	return c
}

// DispatchRequest is the body of POST /v1/job/{id}/dispatch.
type DispatchRequest struct {
	// Payload is base64 in JSON; at most MaxDispatchPayload bytes.
	Payload []byte            `json:"payload,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// DispatchResponse names the child job a dispatch registered.
type DispatchResponse struct {
	JobID string `json:"job_id"`
	Index uint64 `json:"index"`
}
