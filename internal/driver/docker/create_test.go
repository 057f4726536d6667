package docker

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs"
)

func testConfig(t *testing.T, config map[string]any) *driver.TaskConfig {
	return &driver.TaskConfig{AllocID: "a1", JobID: "web", AllocIndex: 2, JobType: structs.JobTypeService,
		Config: config, Env: map[string]string{"B": "2", "A": "1"}, AllocDir: t.TempDir(),
		Resources: structs.Resources{CPU: 500, MemoryMB: 64}}
}

func TestCreateOptions(t *testing.T) {
	d := &Driver{opts: Options{NodeID: "n1"}}
	cfg := testConfig(t, map[string]any{"image": "busybox", "command": "sh", "args": []any{"-c", "echo"},
		"labels": map[string]any{"team": "a"}, "ports": map[string]any{"127.0.0.1:8080": "80"},
		"volumes": []any{"data:/data", "./cache:/cache:ro"}, "network_mode": "bridge", "kill_signal": "SIGINT"})
	cfg.Ports = []driver.PortMapping{{Label: "admin", HostPort: 20000, ContainerPort: 9000}}
	s, errs := parseSpec(cfg.Config)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	o, err := d.createOptions(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	c, h := o.Config, o.HostConfig
	if o.Name != "gantry-a1" {
		t.Errorf("name %q", o.Name)
	}
	if !slices.Equal(c.Cmd, []string{"sh", "-c", "echo"}) || c.Entrypoint != nil {
		t.Errorf("cmd %q entrypoint %q", c.Cmd, c.Entrypoint)
	}
	if want := []string{"A=1", "B=2", "GANTRY_ALLOC_ID=a1", "GANTRY_JOB=web", "GANTRY_ALLOC_INDEX=2"}; !slices.Equal(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	for k, v := range map[string]string{"team": "a", LabelManaged: "true", LabelNode: "n1", LabelAlloc: "a1", LabelJob: "web"} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if c.StopSignal != "SIGINT" {
		t.Errorf("stop signal %q", c.StopSignal)
	}
	// 500 millicores: half of Docker's CPU weight, and half a period.
	if h.CPUShares != 512 || h.CPUPeriod != 100000 || h.CPUQuota != 50000 {
		t.Errorf("cpu shares %d period %d quota %d", h.CPUShares, h.CPUPeriod, h.CPUQuota)
	}
	if h.Memory != 64<<20 || h.MemorySwap != 64<<20 {
		t.Errorf("memory %d swap %d", h.Memory, h.MemorySwap)
	}
	if h.RestartPolicy.Name != container.RestartPolicyDisabled || h.NetworkMode != "bridge" {
		t.Errorf("restart %v network %q", h.RestartPolicy, h.NetworkMode)
	}
	if h.LogConfig.Type != "json-file" || h.LogConfig.Config["max-size"] != "10m" {
		t.Errorf("log config %+v", h.LogConfig)
	}
	p80, p9000 := network.MustParsePort("80/tcp"), network.MustParsePort("9000/tcp")
	if b := h.PortBindings[p80]; len(b) != 1 || b[0].HostPort != "8080" || b[0].HostIP.String() != "127.0.0.1" {
		t.Errorf("80/tcp bindings %+v", b)
	}
	if b := h.PortBindings[p9000]; len(b) != 1 || b[0].HostPort != "20000" || b[0].HostIP.IsValid() {
		t.Errorf("agent port bindings %+v", b)
	}
	if _, ok := c.ExposedPorts[p9000]; !ok {
		t.Error("agent port not exposed")
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "data", Target: "/data"},
		{Type: mount.TypeBind, Source: filepath.Join(cfg.AllocDir, "cache"), Target: "/cache", ReadOnly: true},
	}
	if !slices.Equal(h.Mounts, want) {
		t.Errorf("mounts %+v, want %+v", h.Mounts, want)
	}
	if st, err := os.Stat(filepath.Join(cfg.AllocDir, "cache")); err != nil || !st.IsDir() {
		t.Errorf("alloc-relative mount source not created: %v", err)
	}
}

func TestCreateOptionsLimitsAndBinds(t *testing.T) {
	tests := []struct {
		name      string
		cpu       int64
		hostBinds bool
		volumes   []any
		shares    int64
		quota     int64
		err       string
	}{
		{"tiny cpu keeps kernel minimums", 5, false, nil, 5, 1000, ""},
		{"two cores", 2000, false, nil, 2048, 200000, ""},
		{"host bind refused by default", 100, false, []any{"/etc:/e:ro"}, 0, 0, "does not allow host paths"},
		{"host bind allowed", 100, true, []any{"/etc:/e:ro"}, 102, 10000, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &Driver{opts: Options{NodeID: "n1", AllowHostBinds: tc.hostBinds}}
			cfg := testConfig(t, map[string]any{"image": "x", "volumes": tc.volumes})
			cfg.Resources.CPU = tc.cpu
			s, errs := parseSpec(cfg.Config)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			o, err := d.createOptions(cfg, s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.HostConfig.CPUShares != tc.shares || o.HostConfig.CPUQuota != tc.quota {
				t.Errorf("shares %d quota %d, want %d %d", o.HostConfig.CPUShares, o.HostConfig.CPUQuota, tc.shares, tc.quota)
			}
		})
	}
}

// TestCreateOptionsJobVolumes: volumes the job claims become a bind mount
// (host volume, allowed without --docker-allow-host-binds since the agent
// declared it) and a volume mount (docker volume), read-only as asked; an
// extra task's container carries its name.
func TestCreateOptionsJobVolumes(t *testing.T) {
	d := &Driver{opts: Options{NodeID: "n1"}}
	cfg := testConfig(t, map[string]any{"image": "x"})
	cfg.TaskName = "side"
	cfg.Mounts = []driver.Mount{
		{Volume: "data", Kind: driver.MountHost, Source: "/srv/data", Target: "/data", ReadOnly: true},
		{Volume: "cache", Kind: driver.MountDockerVolume, Source: "web-cache", Target: "/cache"},
	}
	s, errs := parseSpec(cfg.Config)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	o, err := d.createOptions(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "web-cache", Target: "/cache"},
	}
	if !reflect.DeepEqual(o.HostConfig.Mounts, want) {
		t.Fatalf("mounts %+v, want %+v", o.HostConfig.Mounts, want)
	}
	if o.Name != ContainerName(cfg.AllocID)+"-side" || o.Config.Labels[LabelTask] != "side" {
		t.Fatalf("name %q labels %v", o.Name, o.Config.Labels)
	}
	cfg.Mounts = []driver.Mount{{Volume: "x", Kind: "nfs", Source: "a", Target: "/x"}}
	if _, err := d.createOptions(cfg, s); err == nil || !strings.Contains(err.Error(), `unknown mount kind "nfs"`) {
		t.Fatalf("err %v", err)
	}
}
