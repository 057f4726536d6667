package docker

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/structs/driverschema"
)

// TestSchemaRegistered: linking the driver registers its schema, and the
// registry's answer is the driver's.
func TestSchemaRegistered(t *testing.T) {
	d := &Driver{}
	for _, config := range []map[string]any{nil, {"image": "x"}, {"image": "x", "ports": map[string]any{"80": "x"}}} {
		got, known := driverschema.Default.CheckConfig("docker", config)
		if !known || !slices.Equal(got, d.Validate(config)) {
			t.Errorf("%v: registry %v (known %v), driver %v", config, got, known, d.Validate(config))
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]any
		want   []string // "field: rule prefix", in order
	}{
		{"minimal", map[string]any{"image": "busybox"}, nil},
		{"everything", map[string]any{"image": "busybox:1", "command": "sh", "args": []any{"-c", "x"},
			"entrypoint": []any{"/bin/env"}, "work_dir": "/tmp", "labels": map[string]any{"team": "a", "n": 1},
			"ports":   map[string]any{"8080": 80, "127.0.0.1:53": "53/udp", "[::1]:9000": "9000/tcp"},
			"volumes": []any{"data:/data", "./cache:/cache:ro", "/etc/hosts:/h:ro"}, "network_mode": "host",
			"kill_signal": "INT", "kill_timeout": "30s", "force_pull": true}, nil},
		{"image required", map[string]any{}, []string{"image: is required"}},
		{"typo refused", map[string]any{"image": "x", "comand": "sh"}, []string{"comand: unknown option"}},
		{"reserved label", map[string]any{"image": "x", "labels": map[string]any{"gantry.alloc": "1"}}, []string{`labels: "gantry.alloc": labels starting with "gantry." are set by gantry`}},
		{"bad host port", map[string]any{"image": "x", "ports": map[string]any{"http": "80"}}, []string{`ports: "http": host port "http" is not a port number`}},
		{"port out of range", map[string]any{"image": "x", "ports": map[string]any{"8080": "70000"}}, []string{`ports: "8080": container port "70000" is not a port number`}},
		{"bad protocol", map[string]any{"image": "x", "ports": map[string]any{"8080": "80/icmp"}}, []string{`ports: "8080": protocol "icmp" is not tcp, udp or sctp`}},
		{"bad host ip", map[string]any{"image": "x", "ports": map[string]any{"localhost:8080": "80"}}, []string{`ports: "localhost:8080": "localhost" is not an IP address`}},
		{"volume without target", map[string]any{"image": "x", "volumes": []any{"data"}}, []string{`volumes: "data": want source:target`}},
		{"relative target", map[string]any{"image": "x", "volumes": []any{"data:data"}}, []string{`volumes: "data:data": target "data" must be an absolute path`}},
		{"escaping alloc dir", map[string]any{"image": "x", "volumes": []any{"./../../etc:/e"}}, []string{`volumes: "./../../etc:/e": "./../../etc" leaves the allocation directory`}},
		{"bad mode", map[string]any{"image": "x", "volumes": []any{"data:/d:rx"}}, []string{`volumes: "data:/d:rx": mode "rx" is not ro or rw`}},
		{"bad network", map[string]any{"image": "x", "network_mode": "bridge mode"}, []string{`network_mode: "bridge mode" is not bridge`}},
		{"bad signal", map[string]any{"image": "x", "kill_signal": "SIGFOO"}, []string{`kill_signal: "SIGFOO" is not a signal gantry knows`}},
		{"signal number", map[string]any{"image": "x", "kill_signal": "99"}, []string{"kill_signal: 99 is not a signal number"}},
		{"relative work dir", map[string]any{"image": "x", "work_dir": "app"}, []string{`work_dir: "app" must be an absolute path`}},
		{"kill timeout kind", map[string]any{"image": "x", "kill_timeout": 30}, []string{"kill_timeout: must be a duration string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := schema.Validate(tc.config)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %v", errs, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	s, errs := parseSpec(map[string]any{"image": "busybox", "kill_signal": "int", "kill_timeout": "2s",
		"ports":   map[string]any{"9090": "90/udp", "127.0.0.1:8080": 80.0},
		"volumes": []any{"data:/data", "./a/../b:/b:ro", "/srv:/srv:rw"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if s.KillSignal != "SIGINT" || s.KillTimeout != 2*time.Second {
		t.Errorf("kill = %s %s", s.KillSignal, s.KillTimeout)
	}
	wantPorts := []driver.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostPort: 9090, ContainerPort: 90, Protocol: "udp"},
	}
	if !slices.Equal(s.Ports, wantPorts) {
		t.Errorf("ports = %+v, want %+v", s.Ports, wantPorts)
	}
	wantVols := []volume{
		{Source: "data", Target: "/data", Kind: volumeNamed},
		{Source: "b", Target: "/b", ReadOnly: true, Kind: volumeAllocDir},
		{Source: "/srv", Target: "/srv", Kind: volumeHost},
	}
	if !slices.Equal(s.Volumes, wantVols) {
		t.Errorf("volumes = %+v, want %+v", s.Volumes, wantVols)
	}
	if d, _ := parseSpec(map[string]any{"image": "x"}); d.KillSignal != "SIGTERM" {
		t.Errorf("default kill signal %q", d.KillSignal)
	}
}
