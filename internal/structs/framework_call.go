package structs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// CallType is what a framework asks of the server (Mesos v1 scheduler
// call types).
type CallType string

const (
	CallTypeSubscribe   CallType = "SUBSCRIBE"
	CallTypeAccept      CallType = "ACCEPT"
	CallTypeDecline     CallType = "DECLINE"
	CallTypeKill        CallType = "KILL"
	CallTypeAcknowledge CallType = "ACKNOWLEDGE"
	CallTypeReconcile   CallType = "RECONCILE"
	CallTypeRevive      CallType = "REVIVE"
	CallTypeSuppress    CallType = "SUPPRESS"
	CallTypeTeardown    CallType = "TEARDOWN"
)

// EventType is what the server streams to a subscribed framework.
type EventType string

const (
	EventTypeSubscribed EventType = "SUBSCRIBED"
	EventTypeOffers     EventType = "OFFERS"
	EventTypeRescind    EventType = "RESCIND"
	EventTypeUpdate     EventType = "UPDATE"
	EventTypeFailure    EventType = "FAILURE"
	EventTypeError      EventType = "ERROR"
	EventTypeHeartbeat  EventType = "HEARTBEAT"
)

// Limits of one call, so a call cannot make the leader do unbounded work.
const (
	MaxCallBytes       = 4 << 20
	MaxCallOffers      = 10000 // offer IDs in one ACCEPT or DECLINE
	MaxCallTasks       = 10000 // tasks in one ACCEPT or RECONCILE
	MaxFailoverTimeout = 7 * 24 * 3600.0
	MaxRefuseSeconds   = 365 * 24 * 3600.0
	// DefaultRefuseSeconds is the filter of a DECLINE (or of an offer's
	// unused part on ACCEPT) that names none, as Mesos.
	DefaultRefuseSeconds = 5.0
	maxIDLen             = 128
)

// OperationLaunch is the one offer operation: launch tasks.
const OperationLaunch = "LAUNCH"

// FrameworkCall is the body of POST /v1/frameworks/scheduler. Exactly the
// part its Type names is set.
type FrameworkCall struct {
	FrameworkID string           `json:"framework_id,omitempty"`
	Type        CallType         `json:"type"`
	Subscribe   *CallSubscribe   `json:"subscribe,omitempty"`
	Accept      *CallAccept      `json:"accept,omitempty"`
	Decline     *CallDecline     `json:"decline,omitempty"`
	Kill        *CallKill        `json:"kill,omitempty"`
	Acknowledge *CallAcknowledge `json:"acknowledge,omitempty"`
	Reconcile   *CallReconcile   `json:"reconcile,omitempty"`
}

// FrameworkInfo describes a framework when it subscribes.
type FrameworkInfo struct {
	// ID is set when the framework subscribes again (after a restart or a
	// lost connection) to keep its tasks; empty for a new framework.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Role is the role whose weight and quota the framework's share is
	// counted under; empty = DefaultRole.
	Role string `json:"role,omitempty"`
	// FailoverTimeout (seconds) is how long the framework's tasks keep
	// running while it is disconnected; after it they are killed.
	FailoverTimeout float64 `json:"failover_timeout,omitempty"`
}

// CallSubscribe opens the event stream.
type CallSubscribe struct {
	FrameworkInfo FrameworkInfo `json:"framework_info"`
}

// Filters ask the allocator not to offer the refused resources again for
// a while. Nil RefuseSeconds = DefaultRefuseSeconds.
type Filters struct {
	RefuseSeconds *float64 `json:"refuse_seconds,omitempty"`
}

// Refuse returns the filter's duration in seconds.
func (f *Filters) Refuse() float64 {
	if f == nil || f.RefuseSeconds == nil {
		return DefaultRefuseSeconds
	}
	return *f.RefuseSeconds
}

// CallAccept uses offers: the tasks of its LAUNCH operations run on the
// offers' nodes; whatever the operations leave of the offers returns to
// the allocator (filtered by Filters).
type CallAccept struct {
	OfferIDs   []string         `json:"offer_ids"`
	Operations []OfferOperation `json:"operations"`
	Filters    *Filters         `json:"filters,omitempty"`
}

// OfferOperation is one operation on accepted offers; only LAUNCH exists.
type OfferOperation struct {
	Type   string           `json:"type"`
	Launch *LaunchOperation `json:"launch,omitempty"`
}

// LaunchOperation launches tasks.
type LaunchOperation struct {
	TaskInfos []TaskInfo `json:"task_infos"`
}

// TaskInfo is one task to launch on an offered node.
type TaskInfo struct {
	TaskID    string            `json:"task_id"`
	Name      string            `json:"name,omitempty"`
	AgentID   string            `json:"agent_id"`
	Resources Resources         `json:"resources"`
	Driver    string            `json:"driver"`
	Config    map[string]any    `json:"config,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	// Restart, when set, lets the agent restart the task in place; by
	// default a task that exits is done (its framework decides what next).
	Restart *RestartPolicy `json:"restart,omitempty"`
}

// CallDecline returns offers unused.
type CallDecline struct {
	OfferIDs []string `json:"offer_ids"`
	Filters  *Filters `json:"filters,omitempty"`
}

// CallKill stops a task.
type CallKill struct {
	TaskID  string `json:"task_id"`
	AgentID string `json:"agent_id,omitempty"`
}

// CallAcknowledge confirms an UPDATE (by its UUID), so it is not sent
// again when the framework subscribes again.
type CallAcknowledge struct {
	TaskID  string `json:"task_id"`
	AgentID string `json:"agent_id,omitempty"`
	UUID    string `json:"uuid"`
}

// CallReconcile asks for the state of tasks (none listed: every task of
// the framework); the answers come as UPDATE events without a UUID.
type CallReconcile struct {
	Tasks []ReconcileTask `json:"tasks,omitempty"`
}

// ReconcileTask names one task to reconcile.
type ReconcileTask struct {
	TaskID  string `json:"task_id"`
	AgentID string `json:"agent_id,omitempty"`
}

// FrameworkEvent is one line of the SUBSCRIBE stream. Exactly the part its
// Type names is set (HEARTBEAT has none).
type FrameworkEvent struct {
	Type       EventType        `json:"type"`
	Subscribed *EventSubscribed `json:"subscribed,omitempty"`
	Offers     *EventOffers     `json:"offers,omitempty"`
	Rescind    *EventRescind    `json:"rescind,omitempty"`
	Update     *EventUpdate     `json:"update,omitempty"`
	Failure    *EventFailure    `json:"failure,omitempty"`
	Error      *EventError      `json:"error,omitempty"`
}

// EventSubscribed answers SUBSCRIBE: the framework's ID (keep it to
// subscribe again) and how often to expect a HEARTBEAT.
type EventSubscribed struct {
	FrameworkID              string  `json:"framework_id"`
	HeartbeatIntervalSeconds float64 `json:"heartbeat_interval_seconds"`
}

// EventOffers carries new offers.
type EventOffers struct {
	Offers []Offer `json:"offers"`
}

// EventRescind withdraws an offer (node lost or drained, offer timed out,
// framework disconnected); an ACCEPT naming it is refused.
type EventRescind struct {
	OfferID string `json:"offer_id"`
	Reason  string `json:"reason,omitempty"`
}

// EventUpdate reports a task's new state.
type EventUpdate struct {
	Status TaskStatus `json:"status"`
}

// EventFailure reports a node lost with the framework's tasks on it.
type EventFailure struct {
	AgentID string `json:"agent_id"`
}

// EventError reports an error that ends the subscription.
type EventError struct {
	Message string `json:"message"`
}

// AcceptResponse answers ACCEPT with each task's launch outcome (the same
// statuses also arrive as UPDATE events).
type AcceptResponse struct {
	Tasks []TaskStatus `json:"tasks"`
}

// ErrInvalidCall wraps every error of DecodeFrameworkCall.
var ErrInvalidCall = errors.New("invalid framework call")

// DecodeFrameworkCall reads one call strictly (no unknown fields, exactly
// one JSON value, at most MaxCallBytes) and checks it (Validate).
func DecodeFrameworkCall(body []byte) (*FrameworkCall, error) {
	if len(body) > MaxCallBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidCall, len(body), MaxCallBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var c FrameworkCall
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty body; a JSON object is required", ErrInvalidCall)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidCall, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected data after the JSON object", ErrInvalidCall)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks a call: a known type with exactly its own part, IDs that
// are names, numbers in range, bounded lists. Every problem is reported
// as a FieldError of a *CallError.
func (c *FrameworkCall) Validate() error {
	e := &ValidationError{}
	parts := map[CallType]bool{
		CallTypeSubscribe: c.Subscribe != nil, CallTypeAccept: c.Accept != nil, CallTypeDecline: c.Decline != nil,
		CallTypeKill: c.Kill != nil, CallTypeAcknowledge: c.Acknowledge != nil, CallTypeReconcile: c.Reconcile != nil,
	}
	switch c.Type {
	case CallTypeSubscribe, CallTypeAccept, CallTypeDecline, CallTypeKill, CallTypeAcknowledge:
		if !parts[c.Type] {
			e.add(callField(c.Type), "is required for a %s call", c.Type)
		}
	case CallTypeReconcile, CallTypeRevive, CallTypeSuppress, CallTypeTeardown:
	case "":
		e.add("type", "is required")
	default:
		e.add("type", "unknown call type %q", c.Type)
	}
	for _, t := range []CallType{CallTypeSubscribe, CallTypeAccept, CallTypeDecline, CallTypeKill, CallTypeAcknowledge, CallTypeReconcile} {
		if parts[t] && t != c.Type {
			e.add(callField(t), "is only allowed in a %s call (this is %q)", t, c.Type)
		}
	}
	if c.Type == CallTypeSubscribe {
		if c.FrameworkID != "" {
			checkID(e, "framework_id", c.FrameworkID)
		}
	} else if c.Type != "" {
		if c.FrameworkID == "" {
			e.add("framework_id", "is required (from the SUBSCRIBED event)")
		} else {
			checkID(e, "framework_id", c.FrameworkID)
		}
	}
	c.validateParts(e)
	if len(e.Errors) > 0 {
		return &CallError{Fields: e.Errors}
	}
	return nil
}

// CallError lists every rule a call breaks; it wraps ErrInvalidCall.
type CallError struct {
	Fields []FieldError
}

func (e *CallError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return ErrInvalidCall.Error() + ": " + strings.Join(parts, "; ")
}

func (e *CallError) Unwrap() error { return ErrInvalidCall }

func (c *FrameworkCall) validateParts(e *ValidationError) {
	if s := c.Subscribe; s != nil {
		fi := s.FrameworkInfo
		checkName(e, "subscribe.framework_info.name", fi.Name)
		if fi.Role != "" && fi.Role != DefaultRole {
			checkName(e, "subscribe.framework_info.role", fi.Role)
		}
		if fi.ID != "" {
			checkID(e, "subscribe.framework_info.id", fi.ID)
			if c.FrameworkID != "" && c.FrameworkID != fi.ID {
				e.add("subscribe.framework_info.id", "must equal framework_id (%q, got %q)", c.FrameworkID, fi.ID)
			}
		}
		checkSeconds(e, "subscribe.framework_info.failover_timeout", fi.FailoverTimeout, MaxFailoverTimeout)
	}
	if a := c.Accept; a != nil {
		checkOfferIDs(e, "accept.offer_ids", a.OfferIDs)
		checkFilters(e, "accept.filters", a.Filters)
		tasks := 0
		seen := map[string]bool{}
		for i, op := range a.Operations {
			f := fmt.Sprintf("accept.operations[%d]", i)
			if op.Type != OperationLaunch {
				e.add(f+".type", "must be %q (got %q)", OperationLaunch, op.Type)
				continue
			}
			if op.Launch == nil {
				e.add(f+".launch", "is required for a LAUNCH operation")
				continue
			}
			for j, t := range op.Launch.TaskInfos {
				tasks++
				tf := fmt.Sprintf("%s.launch.task_infos[%d]", f, j)
				t.validate(e, tf)
				if seen[t.TaskID] {
					e.add(tf+".task_id", "%q is launched twice in this call", t.TaskID)
				}
				seen[t.TaskID] = true
			}
		}
		if tasks > MaxCallTasks {
			e.add("accept.operations", "launch at most %d tasks per call (got %d)", MaxCallTasks, tasks)
		}
	}
	if d := c.Decline; d != nil {
		checkOfferIDs(e, "decline.offer_ids", d.OfferIDs)
		checkFilters(e, "decline.filters", d.Filters)
	}
	if k := c.Kill; k != nil {
		checkName(e, "kill.task_id", k.TaskID)
	}
	if a := c.Acknowledge; a != nil {
		checkName(e, "acknowledge.task_id", a.TaskID)
		checkID(e, "acknowledge.uuid", a.UUID)
	}
	if r := c.Reconcile; r != nil {
		if len(r.Tasks) > MaxCallTasks {
			e.add("reconcile.tasks", "at most %d tasks per call (got %d)", MaxCallTasks, len(r.Tasks))
		} else {
			for i, t := range r.Tasks {
				checkName(e, fmt.Sprintf("reconcile.tasks[%d].task_id", i), t.TaskID)
			}
		}
	}
}

func (t *TaskInfo) validate(e *ValidationError, f string) {
	checkName(e, f+".task_id", t.TaskID)
	if t.AgentID == "" {
		e.add(f+".agent_id", "is required: the node of one of the accepted offers")
	} else {
		checkID(e, f+".agent_id", t.AgentID)
	}
	if t.Resources.CPU <= 0 || t.Resources.MemoryMB <= 0 {
		e.add(f+".resources", "cpu and memory_mb must be > 0 (got %s)", t.Resources)
	}
	if t.Driver == "" {
		e.add(f+".driver", "is required")
	}
	if t.Restart != nil && (t.Restart.Attempts < 0 || t.Restart.Delay < 0 || t.Restart.Interval < 0) {
		e.add(f+".restart", "attempts, delay and interval must be >= 0")
	}
}

func callField(t CallType) string {
	switch t {
	case CallTypeSubscribe:
		return "subscribe"
	case CallTypeAccept:
		return "accept"
	case CallTypeDecline:
		return "decline"
	case CallTypeKill:
		return "kill"
	case CallTypeAcknowledge:
		return "acknowledge"
	case CallTypeReconcile:
		return "reconcile"
	}
	return string(t)
}

// checkName checks a framework name, role or task ID: what a job name
// may hold (task IDs become part of a job's ID).
func checkName(e *ValidationError, field, v string) {
	switch {
	case v == "":
		e.add(field, "is required")
	case len(v) > maxIDLen:
		e.add(field, "must be at most %d characters (got %d)", maxIDLen, len(v))
	case !nameRE.MatchString(v):
		e.add(field, "must start with a letter or digit and contain only letters, digits, '_', '-' and '.' (got %q)", v)
	}
}

// checkID checks an ID the server issued (framework, offer, node, UUID).
func checkID(e *ValidationError, field, v string) {
	checkName(e, field, v)
}

func checkOfferIDs(e *ValidationError, field string, ids []string) {
	if len(ids) > MaxCallOffers {
		e.add(field, "at most %d offers per call (got %d)", MaxCallOffers, len(ids))
		return
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		checkID(e, fmt.Sprintf("%s[%d]", field, i), id)
		if seen[id] {
			e.add(fmt.Sprintf("%s[%d]", field, i), "offer %q is listed twice", id)
		}
		seen[id] = true
	}
}

func checkFilters(e *ValidationError, field string, f *Filters) {
	if f != nil && f.RefuseSeconds != nil {
		checkSeconds(e, field+".refuse_seconds", *f.RefuseSeconds, MaxRefuseSeconds)
	}
}

func checkSeconds(e *ValidationError, field string, v, most float64) {
	if math.IsNaN(v) || v < 0 || v > most {
		e.add(field, "must be between 0 and %g seconds (got %g)", most, v)
	}
}
