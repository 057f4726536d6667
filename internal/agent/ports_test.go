package agent

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestTaskGetsItsPorts: an exec task of an allocation with host ports
// finds them in its environment, and can listen on the port it is told.
func TestTaskGetsItsPorts(t *testing.T) {
	fs := newFakeServer(t)
	a := startAgent(t, fs, t.TempDir(), func(c *Config) { c.PortIP = "10.1.2.3" })
	al := testAlloc(a.NodeID(), structs.JobTypeBatch, "exec",
		sh(`echo "$GANTRY_PORT_HTTP $GANTRY_HOST_PORT_HTTP $GANTRY_IP_HTTP $GANTRY_ADDR_HTTP $GANTRY_PORT_ADMIN_UI"`))
	al.Ports = []structs.AllocPort{{Label: "http", Value: 23456}, {Label: "admin_ui", Value: 23457, To: 80}}
	fs.addAlloc(al)
	fs.waitStatus(al.ID, structs.AllocClientComplete)
	if got := fs.node(a.NodeID()).Attributes[structs.NodeAttrDynamicPorts]; got != "20000-32000" {
		t.Fatalf("node attribute %s = %q", structs.NodeAttrDynamicPorts, got)
	}
	b, _ := tasklog.ReadAll(filepath.Join(a.cfg.DataDir, "allocs", al.ID), driver.StdoutFile)
	if want := "23456 23456 10.1.2.3 10.1.2.3:23456 80\n"; string(b) != want {
		t.Fatalf("stdout = %q, want %q", b, want)
	}
}

func TestAddPorts(t *testing.T) {
	tests := []struct {
		name, httpAddr, portIP, wantIP string
	}{
		{"port ip set", "127.0.0.1:0", "192.0.2.7", "192.0.2.7"},
		{"http addr host", "192.0.2.8:4647", "", "192.0.2.8"},
		{"wildcard", "0.0.0.0:4647", "", "127.0.0.1"},
		{"ipv6", "[2001:db8::1]:4647", "", "2001:db8::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{cfg: Config{HTTPAddr: tc.httpAddr, PortIP: tc.portIP}}
			cfg := &driver.TaskConfig{Env: map[string]string{"A": "1"}}
			job := map[string]string{"A": "1"}
			a.addPorts(cfg, &structs.Allocation{Ports: []structs.AllocPort{{Label: "web", Value: 20001, To: 8080}}})
			want := map[string]string{
				"A": "1", "GANTRY_PORT_WEB": "8080", "GANTRY_HOST_PORT_WEB": "20001",
				"GANTRY_IP_WEB": tc.wantIP, "GANTRY_ADDR_WEB": net.JoinHostPort(tc.wantIP, "20001"),
			}
			if fmt.Sprint(cfg.Env) != fmt.Sprint(want) {
				t.Fatalf("env = %v, want %v", cfg.Env, want)
			}
			if len(job) != 1 {
				t.Fatal("the job's env map was changed")
			}
			if len(cfg.Ports) != 1 || cfg.Ports[0] != (driver.PortMapping{Label: "web", HostPort: 20001, ContainerPort: 8080}) {
				t.Fatalf("ports = %+v", cfg.Ports)
			}
			if strings.Contains(cfg.Env["GANTRY_ADDR_WEB"], "[") != strings.Contains(tc.wantIP, ":") {
				t.Fatalf("address %q", cfg.Env["GANTRY_ADDR_WEB"])
			}
		})
	}
}
