package structs

import (
	"net"
	"sort"
	"strings"
)

// The service catalog: instances of services derived from allocation
// state, never stored on their own. An instance is one running copy's
// service: the node's address, the host port of the service's label and
// the copy's health.

// NodeAttrNetworkIP is the node attribute holding the address the node's
// tasks are reached at (the agent's GANTRY_IP_<LABEL>).
const NodeAttrNetworkIP = "network.ip"

// ServiceInstance is one copy's instance of a service.
type ServiceInstance struct {
	Service   string   `json:"service"`
	Namespace string   `json:"namespace"`
	JobID     string   `json:"job_id"`
	AllocID   string   `json:"alloc_id"`
	AllocName string   `json:"alloc_name"`
	NodeID    string   `json:"node_id"`
	NodeName  string   `json:"node_name,omitempty"`
	Address   string   `json:"address"`
	Port      int      `json:"port,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Healthy   bool     `json:"healthy"`
	// Checks are the copy's check statuses (every check of the copy, as
	// the agent reports them).
	Checks []CheckStatus `json:"checks,omitempty"`
}

// ServiceSummary is one service in GET /v1/services.
type ServiceSummary struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	Tags      []string `json:"tags,omitempty"`
	Instances int      `json:"instances"`
	Healthy   int      `json:"healthy"`
}

// NodeAddress is where a node's tasks are reached: its network.ip
// attribute, else the host of its agent's address.
func NodeAddress(n *Node) string {
	if n == nil {
		return ""
	}
	if ip := n.Attributes[NodeAttrNetworkIP]; ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(n.HTTPAddr)
	if err != nil {
		return ""
	}
	return host
}

// ServiceInstances returns the instances of a's services. Only copies the
// servers want running and whose task runs have instances.
func ServiceInstances(a *Allocation, node *Node) []ServiceInstance {
	if a == nil || a.DesiredStatus != AllocDesiredRun || a.ClientStatus != AllocClientRunning {
		return nil
	}
	j := a.GroupJob() // the services of the copy's group
	if j == nil || len(j.Services) == 0 {
		return nil
	}
	addr := NodeAddress(node)
	healthy := a.Health != nil && a.Health.Healthy
	var checks []CheckStatus
	if a.Health != nil {
		checks = a.Health.Checks
	}
	out := make([]ServiceInstance, 0, len(j.Services))
	for _, s := range j.Services {
		port := 0
		for _, p := range a.Ports {
			if s.Port != "" && strings.EqualFold(p.Label, s.Port) {
				port = p.Value
			}
		}
		out = append(out, ServiceInstance{Service: s.Name, Namespace: JobNamespace(a.JobID), JobID: a.JobID,
			AllocID: a.ID, AllocName: a.Name, NodeID: a.NodeID, NodeName: a.NodeName, Address: addr, Port: port,
			Tags: s.Tags, Healthy: healthy, Checks: checks})
	}
	return out
}

// SortInstances orders instances by service, namespace, then allocation
// name, so equal catalogs read equal.
func SortInstances(in []ServiceInstance) {
	sort.Slice(in, func(i, j int) bool {
		a, b := in[i], in[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.AllocName != b.AllocName {
			return a.AllocName < b.AllocName
		}
		return a.AllocID < b.AllocID
	})
}

// HasTag reports whether the instance carries tag.
func (s *ServiceInstance) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
