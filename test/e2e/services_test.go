package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gantry-project/gantry/api"
)

// lookupDNS asks an agent's DNS server; it returns the A addresses or the
// SRV "port target" pairs of the answer.
func lookupDNS(addr, name string, qtype uint16) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %s", v.Port, v.Target))
		}
	}
	return out, nil
}

// healthyInstances lists a service's healthy instances, or explains why not.
func healthyInstances(c *api.Client, name string) ([]api.ServiceInstance, string) {
	ins, _, err := c.Service(context.Background(), name, nil, nil)
	if err != nil {
		return nil, err.Error()
	}
	return ins, fmt.Sprintf("%d healthy", len(ins))
}

// TestHealthCheckRestartsAndCatalogFollows: an exec service (busybox
// httpd) with an HTTP check and check_restart. When /health starts to
// fail, the catalog and the agent's DNS drop the copy and the agent
// restarts its task (an Unhealthy event); when it answers again, the copy
// is back in both.
func TestHealthCheckRestartsAndCatalogFollows(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox on the host (Debian's busybox-static) to serve HTTP from an exec task")
	}
	c := newCluster(t)
	c.startServer()
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.startAgentArgs("n1", "--cpu", "2000", "--memory", "2048", "--dns-addr", dnsAddr)
	c.waitReadyNodes(1)

	www := filepath.Join(c.dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	health := filepath.Join(www, "health")
	if err := os.WriteFile(health, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: flaky
count: 1
resources: {cpu: 20, memory_mb: 16}
restart: {attempts: 20, interval: 10m, delay: 100ms}
driver: exec
config:
  command: /bin/sh
  args: ["-c", "exec %s httpd -f -p $GANTRY_PORT_HTTP -h %s"]
network:
  ports: [{label: http}]
services:
  - name: flaky
    port: http
    checks:
      - type: http
        path: /health
        interval: 200ms
        timeout: 1s
        check_restart: {limit: 3, grace: 1s}
`, busybox, www)
	file := filepath.Join(c.dir, "flaky.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.gantry("job", "run", "--detach", file); err != nil {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	alloc := c.waitRunning("flaky", 1)[0]
	port := alloc.Ports[0].Value
	c.waitFor(60*time.Second, "the copy healthy in the catalog", func() (bool, string) {
		ins, why := healthyInstances(c.client, "flaky")
		return len(ins) == 1 && ins[0].Port == port && ins[0].Address == "127.0.0.1", why
	})
	c.waitFor(30*time.Second, "the copy in DNS", func() (bool, string) {
		a, err := lookupDNS(dnsAddr, "flaky.service.gantry", dns.TypeA)
		srv, _ := lookupDNS(dnsAddr, "flaky.service.gantry", dns.TypeSRV)
		return err == nil && len(a) == 1 && a[0] == "127.0.0.1" && len(srv) == 1 && strings.HasPrefix(srv[0], strconv.Itoa(port)+" "), fmt.Sprint(a, srv, err)
	})
	if out, err := c.gantry("service", "info", "flaky"); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("service info: %v\n%s", err, out)
	}

	// /health fails: dropped from the catalog, then the task restarts.
	if err := os.Remove(health); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	c.waitFor(30*time.Second, "the failing copy dropped from the catalog", func() (bool, string) {
		ins, why := healthyInstances(c.client, "flaky")
		return len(ins) == 0, why
	})
	t.Logf("catalog dropped the failing copy %s after /health broke (check interval 200ms, load %s)", time.Since(broke).Round(time.Millisecond), loadAvg())
	c.waitFor(30*time.Second, "no DNS answer for the failing copy", func() (bool, string) {
		a, err := lookupDNS(dnsAddr, "flaky.service.gantry", dns.TypeA)
		return err == nil && len(a) == 0, fmt.Sprint(a, err)
	})
	c.waitFor(60*time.Second, "a restart for the failing check", func() (bool, string) {
		a, _, err := c.client.Allocation(context.Background(), alloc.ID, nil)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range a.TaskState.Events {
			if e.Type == "Unhealthy" && a.TaskState.Restarts >= 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("restarts %d, events %v", a.TaskState.Restarts, a.TaskState.Events)
	})

	// /health answers again: back in the catalog and DNS.
	if err := os.WriteFile(health, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	c.waitFor(60*time.Second, "the copy back in the catalog", func() (bool, string) {
		ins, why := healthyInstances(c.client, "flaky")
		return len(ins) == 1, why
	})
	t.Logf("catalog listed the copy again %s after /health healed", time.Since(healed).Round(time.Millisecond))
	c.waitFor(30*time.Second, "the copy back in DNS", func() (bool, string) {
		a, err := lookupDNS(dnsAddr, "flaky.service.gantry", dns.TypeA)
		return err == nil && len(a) == 1, fmt.Sprint(a, err)
	})
	out, err := c.gantry("alloc", "status", alloc.ID)
	if err != nil || !strings.Contains(out, "Checks") || !strings.Contains(out, "flaky-http-0") {
		t.Fatalf("alloc status: %v\n%s", err, out)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
