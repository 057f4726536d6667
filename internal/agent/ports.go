package agent

import (
	"maps"
	"net"
	"strconv"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

// addPorts gives a task the host ports the scheduler picked for its
// allocation: as environment variables (GANTRY_PORT_<LABEL> the port the
// task listens on, its `to` when set, else the host port;
// GANTRY_HOST_PORT_<LABEL> the host port; GANTRY_IP_<LABEL> and
// GANTRY_ADDR_<LABEL> where other hosts reach it) and as port mappings,
// which drivers with their own network (docker) publish.
func (a *Agent) addPorts(cfg *driver.TaskConfig, alloc *structs.Allocation) {
	if len(alloc.Ports) == 0 {
		return
	}
	ip := a.portIP()
	env := make(map[string]string, len(cfg.Env)+4*len(alloc.Ports))
	maps.Copy(env, cfg.Env)
	for _, p := range alloc.Ports {
		inside := p.Value
		if p.To > 0 {
			inside = p.To
		}
		env[structs.PortEnvName("GANTRY_PORT_", p.Label)] = strconv.Itoa(inside)
		env[structs.PortEnvName("GANTRY_HOST_PORT_", p.Label)] = strconv.Itoa(p.Value)
		env[structs.PortEnvName("GANTRY_IP_", p.Label)] = ip
		env[structs.PortEnvName("GANTRY_ADDR_", p.Label)] = net.JoinHostPort(ip, strconv.Itoa(p.Value))
		cfg.Ports = append(cfg.Ports, driver.PortMapping{Label: p.Label, HostPort: p.Value, ContainerPort: p.To})
	}
	cfg.Env = env
}

// portIP is the address tasks are told their ports are reachable at: the
// setting, else the host the agent advertises to the servers (its first
// non-loopback address when it listens on a wildcard).
func (a *Agent) portIP() string {
	if a.cfg.PortIP != "" {
		return a.cfg.PortIP
	}
	addr := a.cfg.HTTPAddr
	if a.node != nil {
		a.mu.Lock()
		if a.node.HTTPAddr != "" {
			addr = a.node.HTTPAddr
		}
		a.mu.Unlock()
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && !ip.IsUnspecified() {
		return host
	}
	return "127.0.0.1"
}
