package structs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Ports: a job's copy (its task group) asks for host ports by label; the
// scheduler picks the values per node (static ones as written, dynamic
// ones from the node's range) so that no two live copies on one node hold
// the same port, and the agent passes them to the task as environment
// variables and Docker port mappings.

// Dynamic port range of an agent that sets none: Nomad's.
const (
	DefaultMinDynamicPort = 20000
	DefaultMaxDynamicPort = 32000
	// MaxPortsPerJob bounds the ports one copy may ask for.
	MaxPortsPerJob = 64
	// NodeAttrDynamicPorts is the node attribute holding the agent's
	// dynamic port range, "20000-32000".
	NodeAttrDynamicPorts = "network.dynamic_ports"
)

// Network is a copy's network ask.
type Network struct {
	Ports []Port `json:"ports,omitempty" yaml:"ports,omitempty"`
}

// Port asks for one host port. Static is a fixed host port; without it
// the scheduler picks a free one from the node's dynamic range. To is the
// port inside the task's network namespace (Docker's container port); 0
// means the same as the host port.
type Port struct {
	Label  string `json:"label" yaml:"label"`
	Static int    `json:"static,omitempty" yaml:"static,omitempty"`
	To     int    `json:"to,omitempty" yaml:"to,omitempty"`
}

// AllocPort is a port the scheduler gave one allocation.
type AllocPort struct {
	Label string `json:"label"`
	// Value is the host port.
	Value int `json:"value"`
	// To is the port inside the task's network (0 = Value).
	To int `json:"to,omitempty"`
}

// HasPorts reports whether the job asks for host ports.
func (j *Job) HasPorts() bool { return j.Network != nil && len(j.Network.Ports) > 0 }

// portLabelRE keeps labels usable in environment variable names
// (GANTRY_PORT_<LABEL>).
var portLabelRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// validateNetwork checks the job's ports: labels unique and usable in an
// environment variable name, static ports unique and in range.
func (j *Job) validateNetwork(e *ValidationError) {
	if j.Network == nil {
		return
	}
	ports := j.Network.Ports
	if len(ports) > MaxPortsPerJob {
		e.add("network.ports", "at most %d ports per copy (got %d)", MaxPortsPerJob, len(ports))
		return
	}
	labels := map[string]bool{}
	statics := map[int]string{}
	for i, p := range ports {
		f := fmt.Sprintf("network.ports[%d]", i)
		switch {
		case p.Label == "":
			e.add(f+".label", "is required")
		case len(p.Label) > 64 || !portLabelRE.MatchString(p.Label):
			e.add(f+".label", "must start with a letter and hold only letters, digits and '_', at most 64 characters (it names the variable GANTRY_PORT_<LABEL>; got %q)", p.Label)
		case labels[strings.ToUpper(p.Label)]:
			e.add(f+".label", "%q is given twice (labels are compared ignoring case, as their variables are)", p.Label)
		}
		labels[strings.ToUpper(p.Label)] = true
		if p.Static < 0 || p.Static > 65535 {
			e.add(f+".static", "must be a port number, 1-65535 (got %d)", p.Static)
		} else if p.Static > 0 {
			if other, dup := statics[p.Static]; dup {
				e.add(f+".static", "port %d is also asked for by %q", p.Static, other)
			}
			statics[p.Static] = p.Label
		}
		switch {
		case p.To < 0 || p.To > 65535:
			e.add(f+".to", "must be a port number, 1-65535 (got %d)", p.To)
		case p.To > 0 && j.Driver == "exec":
			e.add(f+".to", "needs a driver that gives the task its own network (docker); an exec task shares the host's and listens on the host port")
		}
	}
}

// PortRange is a node's dynamic port range, inclusive.
type PortRange struct{ Min, Max int }

// DynamicPortRange returns the node's dynamic port range: its agent's
// setting (NodeAttrDynamicPorts), or the default for a node that
// advertises none or an unreadable one.
func (n *Node) DynamicPortRange() PortRange {
	def := PortRange{DefaultMinDynamicPort, DefaultMaxDynamicPort}
	v, ok := n.Attributes[NodeAttrDynamicPorts]
	if !ok {
		return def
	}
	r, err := ParsePortRange(v)
	if err != nil {
		return def
	}
	return r
}

// ParsePortRange reads "min-max" (1 <= min <= max <= 65535).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %q: want MIN-MAX, e.g. 20000-32000", s)
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("port range %q: want MIN-MAX with 1 <= MIN <= MAX <= 65535", s)
	}
	return PortRange{a, b}, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// PortEnvName is the variable a port label's value is passed in:
// GANTRY_PORT_HTTP for "http". The IP and address variables use the
// prefixes GANTRY_IP_ and GANTRY_ADDR_.
func PortEnvName(prefix, label string) string { return prefix + strings.ToUpper(label) }
