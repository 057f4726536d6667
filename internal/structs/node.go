package structs

// NodeStatus is the server's view of a node's liveness.
type NodeStatus string

const (
	// NodeStatusReady nodes heartbeat within their TTL and receive work.
	NodeStatusReady NodeStatus = "ready"
	// NodeStatusDown nodes missed their heartbeat TTL; their allocations
	// are lost and replaced elsewhere.
	NodeStatusDown NodeStatus = "down"
)

// Node is a worker machine running a gantry agent.
type Node struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Datacenter string `json:"datacenter,omitempty"`
	// HTTPAddr is the agent's own API (host:port), used by the server to
	// proxy task logs.
	HTTPAddr string            `json:"http_addr,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// Attributes are fingerprinted facts (os, arch, cpu.cores ...).
	Attributes map[string]string `json:"attributes,omitempty"`
	// Capacity is what the scheduler may hand out on this node.
	Capacity Resources  `json:"capacity"`
	Status   NodeStatus `json:"status"`
	// Drain stops new placements and moves the node's allocations away.
	Drain bool `json:"drain"`
	// DrainDeadline is when a drain stops waiting for copies to move in
	// waves and stops the rest (unix ns; 0: no deadline).
	DrainDeadline int64 `json:"drain_deadline,omitempty"`
	// Ineligible, when set, is why the node itself refuses new placements
	// (its agent found its data disk full). Its allocations stay; the agent
	// clears it, registering again, once the condition passes.
	Ineligible string `json:"ineligible,omitempty"`
	// StatusUpdatedAt is unix nanoseconds, chosen by the proposer.
	StatusUpdatedAt int64  `json:"status_updated_at"`
	CreateIndex     uint64 `json:"create_index"`
	ModifyIndex     uint64 `json:"modify_index"`
}

// Ready reports whether the node may receive new placements.
func (n *Node) Ready() bool { return n.Status == NodeStatusReady && !n.Drain && n.Ineligible == "" }

// Copy returns a deep copy.
func (n *Node) Copy() *Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Labels = copyMap(n.Labels)
	c.Attributes = copyMap(n.Attributes)
	return &c
}

// Label returns a label or attribute value by name. Labels win; attributes
// are reachable as "attr.<name>" so constraints can target fingerprints.
func (n *Node) Label(name string) (string, bool) {
	if v, ok := n.Labels[name]; ok {
		return v, true
	}
	const p = "attr."
	if len(name) > len(p) && name[:len(p)] == p {
		v, ok := n.Attributes[name[len(p):]]
		return v, ok
	}
	return "", false
}

// DriverAttrPrefix starts the attribute a node sets for each task driver
// it runs ("driver.docker" = "true").
const DriverAttrPrefix = "driver."

// HasDriver reports whether the node runs the task driver whose attribute
// key is attr (DriverAttrPrefix + name; passed in so that checking
// thousands of nodes builds the key once). A set value other than "",
// "0" and "false" means yes. A node that sets no driver attribute at all
// was registered by an agent from before drivers were advertised; every
// such agent ran exec and mock.
func (n *Node) HasDriver(attr string) bool {
	if v, ok := n.Attributes[attr]; ok {
		return v != "" && v != "0" && v != "false"
	}
	for k := range n.Attributes {
		if len(k) > len(DriverAttrPrefix) && k[:len(DriverAttrPrefix)] == DriverAttrPrefix {
			return false
		}
	}
	name := attr[min(len(DriverAttrPrefix), len(attr)):]
	return name == "exec" || name == "mock"
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
