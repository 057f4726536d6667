package docker

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// Labels gantry puts on every container it creates. The node label scopes
// cleanup to one agent (several agents may share a daemon, as gantry dev's
// do); the alloc label ties a container to its allocation.
const (
	LabelManaged = "gantry.managed"
	LabelNode    = "gantry.node"
	LabelAlloc   = "gantry.alloc"
	LabelJob     = "gantry.job"
	LabelTask    = "gantry.task" // an extra task's name (task groups)
	labelPrefix  = "gantry."
)

// schema is what the docker driver accepts in a job's config block. The
// Check functions run on the server at submit time, so a malformed port or
// volume is refused there, not discovered on a node.
var schema = driverschema.Schema{Driver: "docker", Options: []driverschema.Option{
	{Name: "image", Kind: driverschema.KindString, Required: true, Doc: `the image to run, e.g. "redis:7" (local, or pulled when a registry is reachable)`},
	{Name: "force_pull", Kind: driverschema.KindBool, Doc: "pull the image even when it is present locally"},
	{Name: "command", Kind: driverschema.KindString, Doc: "replaces the image's command (CMD)"},
	{Name: "args", Kind: driverschema.KindStringList, Doc: "arguments after the command"},
	{Name: "entrypoint", Kind: driverschema.KindStringList, Doc: "replaces the image's ENTRYPOINT"},
	{Name: "work_dir", Kind: driverschema.KindString, Check: checkAbs, Doc: "working directory inside the container"},
	{Name: "labels", Kind: driverschema.KindStringMap, Check: checkLabels, Doc: "container labels (gantry.* is reserved)"},
	{Name: "ports", Kind: driverschema.KindStringMap, Check: checkPorts, Doc: `static port mappings "[host_ip:]host_port": "container_port[/tcp|udp]"`},
	{Name: "volumes", Kind: driverschema.KindStringList, Check: checkVolumes, Doc: `mounts "source:target[:ro]": a named volume, a path in the allocation directory ("./data") or, where the agent allows it, an absolute host path`},
	{Name: "network_mode", Kind: driverschema.KindString, Check: checkNetworkMode, Doc: `"bridge" (default), "host", "none", "container:<name>" or a network's name`},
	{Name: "kill_signal", Kind: driverschema.KindString, Check: checkSignal, Doc: "the signal that asks the task to stop (default SIGTERM)"},
	{Name: "kill_timeout", Kind: driverschema.KindDuration, Doc: "the wait between kill_signal and SIGKILL (default: the agent's)"},
}}

func init() { driverschema.Register(schema) }

// spec is a validated config block, read back through the schema.
type spec struct {
	Image       string
	ForcePull   bool
	Command     string
	Args        []string
	Entrypoint  []string
	WorkDir     string
	Labels      map[string]string
	Ports       []driver.PortMapping
	Volumes     []volume
	NetworkMode string
	KillSignal  string
	KillTimeout time.Duration
}

// volume is one "source:target[:ro]" entry.
type volume struct {
	Source   string
	Target   string
	ReadOnly bool
	Kind     volumeKind
}

type volumeKind uint8

const (
	volumeNamed    volumeKind = iota + 1 // a Docker named volume
	volumeAllocDir                       // a path inside the allocation directory
	volumeHost                           // an absolute host path
)

func parseSpec(config map[string]any) (*spec, []structs.FieldError) {
	if errs := schema.Validate(config); len(errs) > 0 {
		return nil, errs
	}
	s := &spec{
		Image:       driverschema.String(config, "image"),
		ForcePull:   driverschema.Bool(config, "force_pull"),
		Command:     driverschema.String(config, "command"),
		Args:        driverschema.Strings(config, "args"),
		Entrypoint:  driverschema.Strings(config, "entrypoint"),
		WorkDir:     driverschema.String(config, "work_dir"),
		Labels:      driverschema.StringMap(config, "labels"),
		NetworkMode: driverschema.String(config, "network_mode"),
		KillSignal:  driverschema.String(config, "kill_signal"),
		KillTimeout: driverschema.Duration(config, "kill_timeout"),
	}
	if s.KillSignal == "" {
		s.KillSignal = "SIGTERM"
	}
	s.KillSignal = normalizeSignal(s.KillSignal)
	// Validated above: the parsers cannot fail here.
	s.Ports, _ = parsePorts(driverschema.StringMap(config, "ports"))
	for _, v := range driverschema.Strings(config, "volumes") {
		vol, _ := parseVolume(v)
		s.Volumes = append(s.Volumes, vol)
	}
	return s, nil
}

func checkAbs(v any) error {
	if p := v.(string); p != "" && !path.IsAbs(p) {
		return fmt.Errorf("%q must be an absolute path", p)
	}
	return nil
}

func checkLabels(v any) error {
	for _, k := range sortedKeys(v.(map[string]string)) {
		if strings.HasPrefix(k, labelPrefix) {
			return fmt.Errorf("%q: labels starting with %q are set by gantry", k, labelPrefix)
		}
		if k == "" {
			return errors.New("a label key is empty")
		}
	}
	return nil
}

func checkPorts(v any) error {
	_, err := parsePorts(v.(map[string]string))
	return err
}

// parsePorts reads "[host_ip:]host_port" -> "container_port[/proto]",
// sorted by host port for a stable container spec.
func parsePorts(m map[string]string) ([]driver.PortMapping, error) {
	var out []driver.PortMapping
	for _, host := range sortedKeys(m) {
		p := driver.PortMapping{Protocol: "tcp"}
		hostPort := host
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			ip := strings.Trim(host[:i], "[]")
			if _, err := netip.ParseAddr(ip); err != nil {
				return nil, fmt.Errorf("%q: %q is not an IP address", host, ip)
			}
			p.HostIP, hostPort = ip, host[i+1:]
		}
		n, err := parsePortNumber(hostPort)
		if err != nil {
			return nil, fmt.Errorf("%q: host port %w", host, err)
		}
		p.HostPort = n
		cport, proto, hasProto := strings.Cut(m[host], "/")
		if p.ContainerPort, err = parsePortNumber(cport); err != nil {
			return nil, fmt.Errorf("%q: container port %w", host, err)
		}
		if hasProto {
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return nil, fmt.Errorf("%q: protocol %q is not tcp, udp or sctp", host, proto)
			}
			p.Protocol = proto
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

func checkVolumes(v any) error {
	for _, s := range v.([]string) {
		if _, err := parseVolume(s); err != nil {
			return err
		}
	}
	return nil
}

var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// parseVolume reads "source:target[:ro|rw]". A source that is an absolute
// path is a host path; one with a slash or a leading dot is a path inside
// the allocation directory (it must stay inside); anything else names a
// Docker volume.
func parseVolume(s string) (volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return volume{}, fmt.Errorf("%q: want source:target or source:target:ro", s)
	}
	v := volume{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return volume{}, fmt.Errorf("%q: mode %q is not ro or rw", s, parts[2])
		}
	}
	if !path.IsAbs(v.Target) {
		return volume{}, fmt.Errorf("%q: target %q must be an absolute path in the container", s, v.Target)
	}
	switch {
	case v.Source == "":
		return volume{}, fmt.Errorf("%q: the source is empty", s)
	case path.IsAbs(v.Source):
		v.Kind = volumeHost
	case strings.HasPrefix(v.Source, ".") || strings.Contains(v.Source, "/"):
		clean := path.Clean(v.Source)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return volume{}, fmt.Errorf("%q: %q leaves the allocation directory", s, v.Source)
		}
		v.Source, v.Kind = clean, volumeAllocDir
	case volumeNameRE.MatchString(v.Source):
		v.Kind = volumeNamed
	default:
		return volume{}, fmt.Errorf("%q: %q is not a volume name (letters, digits, '_', '.', '-')", s, v.Source)
	}
	return v, nil
}

var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func checkNetworkMode(v any) error {
	m := v.(string)
	if m == "" {
		return nil
	}
	if c, ok := strings.CutPrefix(m, "container:"); ok {
		if !networkNameRE.MatchString(c) {
			return fmt.Errorf("%q: %q is not a container name", m, c)
		}
		return nil
	}
	if !networkNameRE.MatchString(m) {
		return fmt.Errorf("%q is not bridge, host, none, container:<name> or a network name", m)
	}
	return nil
}

// signals Docker accepts by name; numbers are accepted too.
var signals = []string{"SIGABRT", "SIGALRM", "SIGHUP", "SIGINT", "SIGKILL", "SIGPWR",
	"SIGQUIT", "SIGSTOP", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH"}

func normalizeSignal(s string) string {
	s = strings.ToUpper(s)
	if _, err := strconv.Atoi(s); err == nil {
		return s
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return s
}

func checkSignal(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("%d is not a signal number (1-64)", n)
		}
		return nil
	}
	if !slices.Contains(signals, normalizeSignal(s)) {
		return fmt.Errorf("%q is not a signal gantry knows (%s, or a number)", s, strings.Join(signals, ", "))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
