package jobspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzParse checks that no input panics the parser, and that every job it
// accepts survives a round trip: written back as YAML or as JSON, it parses
// to the same job. Plain `go test` runs the seeds below.
func FuzzParse(f *testing.F) {
	seeds := []string{
		webYAML, webJSON, "", "name: x\n", "---\nname: a\n---\nname: b\n",
		"{}", "[]", "null", "{\"name\": 1}", "name: [\n", "config: {a: {b: [1, 2.5, true, null, x]}}\n",
		"restart: {delay: 3, interval: 1h}\n", "env: {A: 1, B: true, C: ~}\n",
		"constraints: [{label: zone, op: in, values: [a, b]}]\n", "count: 1.0\n",
		"a: &x 1\nb: *x\n", "config: {1: x}\n", "name: !!binary aGVsbG8=\n", "{\"config\": {\"x\": 1e400}}",
		"resources: {cpu: 1e3}\n", "config: {x: 1e400}\n", "\xef\xbb\xbf{\"name\":\"x\"}",
		// Job types, periodic and parameterized blocks, meta.
		"type: system\nmeta: {team: web}\n", "type: sysbatch\ncount: 2\n",
		"type: batch\nperiodic: {cron: \"*/5 * * * *\", time_zone: Europe/Paris, prohibit_overlap: true}\n",
		"periodic: {cron: \"@every 1m\"}\n", "periodic: {cron: \"CRON_TZ=UTC 0 * * * *\"}\n",
		"type: batch\nparameterized: {payload: required, meta_required: [a], meta_optional: [b]}\n",
		"parameterized: {meta_required: a}\n", "meta: {\"\": x, a=b: y}\n", "payload: aGk=\n", "parent_id: x\n",
		// Ports.
		"network: {ports: [{label: http, static: 8080}, {label: db, to: 5432}]}\n",
		"network: {ports: [{label: http, static: 8080}, {label: HTTP, static: 8080}]}\n",
		"network: {ports: []}\n", "network: {}\n", "network: [1]\n", "network: {ports: [{label: a, static: 1.5}]}\n",
		"{\"network\": {\"ports\": [{\"label\": \"x\", \"static\": 70000, \"to\": -1}]}}",
		"network: {ports: [{label: a, stat: 1}]}\n", "network: {ports: [{label: a, static: \"80\"}]}\n",
		// Task groups: extra tasks with lifecycle hooks, volumes and mounts.
		tasksYAML, "tasks: []\nvolumes: {}\nvolume_mounts: []\n", "tasks: {}\n", "tasks: [1]\n",
		"tasks: [{name: a, lifecycle: {}}]\n", "tasks: [{name: a, lifecycle: {hook: prestart, sidecar: yes}}]\n",
		"tasks: [{name: a, lifecycle: {hook: poststop, sidecar: true}, config: {x: [1, 2.5]}, env: {}}]\n",
		"tasks: [{name: a, lifecycle: {hooks: prestart}}]\n", "tasks: [{name: a, lifecycle: prestart}]\n",
		"tasks: [{name: a}, {name: a}]\n", "tasks: [{name: a, resources: {cpu: 1.5}}]\n",
		"volumes: {data: {type: host, source: data, read_only: true}}\nvolume_mounts: [{volume: data, destination: /d}]\n",
		"volumes: {data: {type: nfs}}\n", "volumes: {\"\": {}}\n", "volumes: [a]\n", "volumes: {a: {source: [x]}}\n",
		"volume_mounts: [{volume: nope, destination: rel, read_only: 1}]\n", "volume_mounts: [{volume: a, dest: /x}]\n",
		"{\"tasks\": [{\"name\": \"a\", \"lifecycle\": {\"hook\": \"prestart\"}, \"volume_mounts\": [{\"volume\": \"v\", \"destination\": \"/v\"}]}], \"volumes\": {\"v\": {\"type\": \"docker\", \"source\": \"v\"}}}",
		// Update and migrate blocks.
		"update: {max_parallel: 2, min_healthy_time: 10s, healthy_deadline: 5m, progress_deadline: 10m, stagger: 30s, canary: 1, auto_promote: true, auto_revert: true}\n",
		"update: {}\n", "update: {max_parallel: -1, canary: x}\n", "update: {min_healthy_time: 1h, healthy_deadline: 1m}\n",
		"update: [1]\n", "update: {auto_promote: maybe}\n", "migrate: {max_parallel: 1, min_healthy_time: 5s, healthy_deadline: 1m}\n",
		"migrate: {max_parallel: 0}\n", "type: system\nupdate: {max_parallel: 1}\n", "{\"update\": {\"max_parallel\": 2, \"min_healthy_time\": 1000000}}",
		// Services and checks.
		"network: {ports: [{label: http}]}\nservices: [{name: web, port: http, tags: [v1], checks: [{type: http, path: /health, interval: 1s, timeout: 500ms, success_threshold: 2, failure_threshold: 3, initial_delay: 1s, check_restart: {limit: 3, grace: 5s}}]}]\n",
		"services: [{name: db, checks: [{type: script, command: /bin/true, args: [a, b]}, {type: tcp, port: x}]}]\n",
		"services: [{name: Web}, {name: web}, {}]\n", "services: {name: web}\n", "services: [{checks: [{}]}]\n",
		"services: [{name: a, checks: [{type: http, interval: -1s, check_restart: {limit: -1}}]}]\n",
		"{\"services\": [{\"name\": \"a\", \"checks\": [{\"type\": \"tcp\", \"interval\": 100}]}]}",
		"services: []\n", "services: [{name: a, tags: [], checks: []}]\n", "services: [{name: a, checks: [{type: script, command: x, args: []}]}]\n",
		// Several task groups.
		groupsYAML, "groups: []\n", "groups: {}\n", "groups: [1]\n", "groups: [{}]\n", "groups: [{name: a}, {name: a}]\n",
		"groups: [{name: a, count: 1.5}]\n", "groups: [{name: a, tasks: [{name: a}]}]\n", "groups: [{name: a, group: b}]\n",
		"driver: mock\ngroups: [{name: a, driver: mock, resources: {cpu: 1, memory_mb: 1}}]\n",
		"groups: [{name: a, update: {max_parallel: 1}, migrate: {}, restart: {}, logs: {max_files: 2}}]\n",
		"groups: [{name: a, network: {}, volumes: {}, volume_mounts: [], env: {}, config: {}, constraints: []}]\n",
		"{\"groups\": [{\"name\": \"a\", \"count\": 2, \"config\": {\"x\": [1, 2.5]}, \"network\": {\"ports\": [{\"label\": \"h\"}]}}]}",
		"group: x\n",
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("../../examples/*/*.yaml") // two-tier: services and checks
	if files = append(files, more...); len(files) > 0 {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// Validation must not panic either, whatever Parse let through.
		c := job.Copy()
		c.Canonicalize()
		_ = c.Validate(nil)

		y, err := yaml.Marshal(job)
		if err != nil {
			t.Fatalf("yaml.Marshal of a parsed job: %v", err)
		}
		again, err := Parse(y)
		if err != nil {
			t.Fatalf("re-parsing the YAML form failed: %v\n%s", err, y)
		}
		if !reflect.DeepEqual(job, again) {
			t.Fatalf("YAML round trip changed the job:\n was %#v\n now %#v\n doc %s", job, again, y)
		}

		// The JSON form of the document: the YAML form's tree as JSON.
		var tree map[string]any
		if err := yaml.Unmarshal(y, &tree); err != nil {
			t.Fatalf("yaml.Unmarshal of the YAML form: %v", err)
		}
		j, err := json.Marshal(tree)
		if err != nil {
			t.Fatalf("json.Marshal of the document tree: %v", err)
		}
		again, err = Parse(j)
		if err != nil {
			t.Fatalf("re-parsing the JSON form failed: %v\n%s", err, j)
		}
		if !reflect.DeepEqual(job, again) {
			t.Fatalf("JSON round trip changed the job:\n was %#v\n now %#v\n doc %s", job, again, j)
		}
	})
}

// tasksYAML is a job with a group of tasks and volumes (docs/jobs.md).
const tasksYAML = `name: db
driver: exec
config: {command: /bin/sh, args: [-c, "exec server --data $GANTRY_VOLUME_DATA"]}
resources: {cpu: 500, memory_mb: 256}
volumes:
  data: {type: host, source: pgdata}
  cache: {type: docker, source: db-cache, read_only: true}
volume_mounts:
  - {volume: data, destination: /var/lib/db}
tasks:
  - name: migrate
    driver: exec
    config: {command: /bin/sh, args: [-c, "migrate up"]}
    resources: {cpu: 100, memory_mb: 64}
    lifecycle: {hook: prestart}
    volume_mounts: [{volume: data, destination: /var/lib/db}]
  - name: proxy
    driver: docker
    config: {image: "busybox:local"}
    resources: {cpu: 100, memory_mb: 32}
    lifecycle: {hook: prestart, sidecar: true}
    volume_mounts: [{volume: cache, destination: /cache, read_only: true}]
  - name: report
    driver: mock
    resources: {cpu: 10, memory_mb: 8}
    lifecycle: {hook: poststop}
`

// groupsYAML is a job with two task groups (docs/jobs.md).
const groupsYAML = `name: shop
constraints: [{label: attr.os, op: "=", value: linux}]
groups:
  - name: web
    count: 3
    driver: mock
    config: {run_for: 1h}
    resources: {cpu: 100, memory_mb: 64}
    network: {ports: [{label: http}]}
    services: [{name: web, port: http}]
    volumes: {data: {type: host, source: data}}
    volume_mounts: [{volume: data, destination: /data}]
    tasks:
      - {name: sidecar, driver: mock, resources: {cpu: 10, memory_mb: 8}, lifecycle: {hook: prestart, sidecar: true}}
  - name: cache
    count: 1
    constraints: [{label: zone, op: in, values: [a, b]}]
    driver: mock
    resources: {cpu: 200, memory_mb: 128}
    restart: {attempts: 1, delay: 1s}
    reschedule: {attempts: 2, delay: 5s}
    logs: {max_files: 2}
`
