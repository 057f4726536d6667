package jobspec

import (
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestParseServices: services and checks read from YAML, and broken ones
// are refused naming the field and its line.
func TestParseServices(t *testing.T) {
	const head = "name: web\ndriver: mock\nresources: {cpu: 100, memory_mb: 32}\nnetwork: {ports: [{label: http}]}\n"
	job, err := parseAndValidate([]byte(head+`services:
  - name: web
    port: http
    tags: [v1, blue]
    checks:
      - type: http
        path: /health
        interval: 5s
        timeout: 1s
        failure_threshold: 3
        check_restart: {limit: 3, grace: 10s}
      - {type: tcp, name: conn}
      - {type: script, command: /bin/check, args: [-q]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Services) != 1 || len(job.Services[0].Checks) != 3 {
		t.Fatalf("services = %+v", job.Services)
	}
	c := job.Services[0].Checks[0]
	if c.Interval.D() != 5*time.Second || c.FailureThreshold != 3 || c.CheckRestart == nil || c.CheckRestart.Grace.D() != 10*time.Second {
		t.Fatalf("check = %+v", c)
	}

	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"bad name", "services: [{name: Web_1}]\n", []string{`line 5: services[0].name: must be a DNS label`}},
		{"unknown port", "services: [{name: web, port: admin}]\n", []string{`line 5: services[0].port: names no port`}},
		{"twice", "services: [{name: a}, {name: a}]\n", []string{`line 5: services[1].name: service "a" is declared twice`}},
		{"bad tag", "services: [{name: a, tags: [\"x y\"]}]\n", []string{`line 5: services[0].tags[0]: must be a DNS label`}},
		{"unknown check type", "services: [{name: a, port: http, checks: [{type: grpc}]}]\n", []string{`line 5: services[0].checks[0].type: must be`}},
		{"http without port", "services: [{name: a, checks: [{type: http}]}]\n", []string{`line 5: services[0].checks[0].port: a http check needs a port`}},
		{"script without command", "services: [{name: a, checks: [{type: script}]}]\n", []string{`line 5: services[0].checks[0].command: is required`}},
		{"interval too short", "services: [{name: a, port: http, checks: [{type: tcp, interval: 1ms}]}]\n", []string{`line 5: services[0].checks[0].interval: must be at least`}},
		{"bad path", "services: [{name: a, port: http, checks: [{type: http, path: health}]}]\n", []string{`line 5: services[0].checks[0].path: must start with '/'`}},
		{"check_restart limit", "services: [{name: a, port: http, checks: [{type: tcp, check_restart: {limit: 0}}]}]\n", []string{`line 5: services[0].checks[0].check_restart.limit: must be between 1`}},
		{"duplicate check", "services: [{name: a, port: http, checks: [{type: tcp, name: c}, {type: tcp, name: c}]}]\n", []string{`line 5: services[0].checks[1].name: check "c" is declared twice`}},
		{"unknown field", "services: [{name: a, chekcs: []}]\n", []string{`line 5: services[0].chekcs: unknown field`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAndValidate([]byte(head+tc.doc), nil)
			wantProblems(t, err, tc.want)
		})
	}
}

func TestServicesChangeTheSpec(t *testing.T) {
	a := &structs.Job{Driver: "mock", Services: []structs.Service{{Name: "web"}}}
	b := a.Copy()
	if structs.SpecChanged(a, b) {
		t.Fatal("a copy changed the spec")
	}
	b.Services[0].Tags = []string{"v2"}
	if !structs.SpecChanged(a, b) {
		t.Fatal("a new tag did not change the spec")
	}
}
