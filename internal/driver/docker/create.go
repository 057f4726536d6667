package docker

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
)

// CPU limits: Docker's default weight for one CPU, and the CFS period the
// quota is expressed in (the exec driver's cgroup cpu.max uses the same).
const (
	sharesPerCPU = 1024
	cfsPeriod    = 100_000 // µs
	minCFSQuota  = 1_000   // µs; the kernel refuses less
)

// createOptions turns a task into the container to create. It is pure
// (the allocation directory aside, where alloc-relative mounts are made),
// so the mapping is tested without a daemon.
func (d *Driver) createOptions(cfg *driver.TaskConfig, s *spec) (client.ContainerCreateOptions, error) {
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelNode] = d.opts.NodeID
	labels[LabelAlloc] = cfg.AllocID
	labels[LabelJob] = cfg.JobID

	c := &container.Config{
		Image:      s.Image,
		Env:        taskEnv(cfg),
		Labels:     labels,
		WorkingDir: s.WorkDir,
		StopSignal: s.KillSignal,
	}
	if s.Command != "" {
		c.Cmd = append([]string{s.Command}, s.Args...)
	} else if len(s.Args) > 0 {
		c.Cmd = s.Args
	}
	if len(s.Entrypoint) > 0 {
		c.Entrypoint = s.Entrypoint
	}

	lc := cfg.Logs.WithDefaults()
	h := &container.HostConfig{
		NetworkMode: container.NetworkMode(s.NetworkMode),
		// The agent applies the job's restart policy; Docker restarting
		// the container on its own would hide exits from it.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		// The daemon keeps the output until the agent has copied it into
		// the task's logs; bounded like them, so an agent that is down for
		// long loses only what the task's own logs would have rotated away.
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": strconv.Itoa(lc.MaxFileSizeMB) + "m",
			"max-file": strconv.Itoa(max(lc.MaxFiles, 2)),
		}},
	}
	if mem := cfg.Resources.MemoryMB; mem > 0 {
		h.Memory = mem << 20
		h.MemorySwap = h.Memory // no swap: beyond the limit the task is OOM-killed, as the scheduler assumed
	}
	if cpu := cfg.Resources.CPU; cpu > 0 {
		h.CPUShares = max(2, cpu*sharesPerCPU/1000)
		h.CPUPeriod = cfsPeriod
		h.CPUQuota = max(minCFSQuota, cpu*cfsPeriod/1000)
	}

	ports := append(append([]driver.PortMapping(nil), s.Ports...), cfg.Ports...)
	if len(ports) > 0 {
		c.ExposedPorts = network.PortSet{}
		h.PortBindings = network.PortMap{}
		for _, p := range ports {
			cp := p.ContainerPort
			if cp == 0 {
				cp = p.HostPort
			}
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			port, err := network.ParsePort(fmt.Sprintf("%d/%s", cp, proto))
			if err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("port %q: %w", p.Label, err)
			}
			b := network.PortBinding{HostPort: strconv.Itoa(p.HostPort)}
			if p.HostIP != "" {
				if b.HostIP, err = netip.ParseAddr(p.HostIP); err != nil {
					return client.ContainerCreateOptions{}, fmt.Errorf("port %d: host IP %q: %w", p.HostPort, p.HostIP, err)
				}
			}
			c.ExposedPorts[port] = struct{}{}
			h.PortBindings[port] = append(h.PortBindings[port], b)
		}
	}

	for _, v := range s.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Kind {
		case volumeNamed:
			m.Type, m.Source = mount.TypeVolume, v.Source
		case volumeAllocDir:
			src := filepath.Join(cfg.AllocDir, filepath.FromSlash(v.Source))
			if err := os.MkdirAll(src, 0o755); err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("volume %q: %w", v.Source, err)
			}
			m.Type, m.Source = mount.TypeBind, src
		case volumeHost:
			if !d.opts.AllowHostBinds {
				return client.ContainerCreateOptions{}, fmt.Errorf("volume %s:%s: this agent does not allow host paths in docker volumes (start it with --docker-allow-host-binds); use a named volume or a path in the allocation directory", v.Source, v.Target)
			}
			m.Type, m.Source = mount.TypeBind, v.Source
		}
		h.Mounts = append(h.Mounts, m)
	}
	for _, v := range cfg.Mounts {
		// Volumes the job claims (volumes + volume_mounts): a host volume
		// is a directory the agent's operator declared, so it needs no
		// --docker-allow-host-binds; a docker volume is created by the
		// Engine when missing and outlives the container.
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly, Source: v.Source}
		switch v.Kind {
		case driver.MountHost:
			m.Type = mount.TypeBind
		case driver.MountDockerVolume:
			m.Type = mount.TypeVolume
		default:
			return client.ContainerCreateOptions{}, fmt.Errorf("volume %q: unknown mount kind %q", v.Volume, v.Kind)
		}
		h.Mounts = append(h.Mounts, m)
	}
	if cfg.TaskName != "" {
		labels[LabelTask] = cfg.TaskName
	}
	return client.ContainerCreateOptions{Name: taskContainerName(cfg), Config: c, HostConfig: h}, nil
}
