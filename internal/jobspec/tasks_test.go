package jobspec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestParseTasks: a group of tasks with lifecycle hooks and volumes reads
// the same from YAML and JSON, a one-task document is unchanged (no tasks,
// no volumes), and broken ones are refused naming the field and its line.
func TestParseTasks(t *testing.T) {
	job, err := parseAndValidate([]byte(tasksYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Tasks) != 3 || job.Tasks[0].Hook() != structs.HookPrestart || !job.Tasks[1].Lifecycle.Sidecar ||
		job.Tasks[2].Hook() != structs.HookPoststop || job.Tasks[0].Config["args"].([]any)[1] != "migrate up" {
		t.Fatalf("tasks = %+v", job.Tasks)
	}
	if got, want := job.TotalResources(), (structs.Resources{CPU: 710, MemoryMB: 360}); got != want {
		t.Fatalf("total resources %v, want %v", got, want)
	}
	if v := job.Volumes["cache"]; v.Type != structs.VolumeTypeDocker || !v.ReadOnly || v.Source != "db-cache" {
		t.Fatalf("volumes = %+v", job.Volumes)
	}
	asJSON := `{"name": "db", "driver": "exec", "config": {"command": "/bin/sh", "args": ["-c", "exec server --data $GANTRY_VOLUME_DATA"]},
	  "resources": {"cpu": 500, "memory_mb": 256},
	  "volumes": {"data": {"type": "host", "source": "pgdata"}, "cache": {"type": "docker", "source": "db-cache", "read_only": true}},
	  "volume_mounts": [{"volume": "data", "destination": "/var/lib/db"}],
	  "tasks": [
	    {"name": "migrate", "driver": "exec", "config": {"command": "/bin/sh", "args": ["-c", "migrate up"]},
	     "resources": {"cpu": 100, "memory_mb": 64}, "lifecycle": {"hook": "prestart"},
	     "volume_mounts": [{"volume": "data", "destination": "/var/lib/db"}]},
	    {"name": "proxy", "driver": "docker", "config": {"image": "busybox:local"}, "resources": {"cpu": 100, "memory_mb": 32},
	     "lifecycle": {"hook": "prestart", "sidecar": true}, "volume_mounts": [{"volume": "cache", "destination": "/cache", "read_only": true}]},
	    {"name": "report", "driver": "mock", "resources": {"cpu": 10, "memory_mb": 8}, "lifecycle": {"hook": "poststop"}}]}`
	j2, err := parseAndValidate([]byte(asJSON), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(job, j2) {
		t.Fatalf("YAML and JSON differ:\n%+v\n%+v", job, j2)
	}

	const head = "name: web\ndriver: exec\nresources: {cpu: 100, memory_mb: 32}\n"
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"one task", "", nil},
		{"empty blocks", "tasks: []\nvolumes: {}\nvolume_mounts: []\n", nil},
		{"unknown task field", "tasks:\n  - {name: a, driver: exec, resources: {cpu: 1, memory_mb: 1}, hook: prestart}\n",
			[]string{`line 5: tasks[0].hook: unknown field`}},
		{"bad hook", "tasks:\n  - name: a\n    driver: exec\n    resources: {cpu: 1, memory_mb: 1}\n    lifecycle: {hook: prestop}\n",
			[]string{`line 8: tasks[0].lifecycle.hook: must be "prestart", "poststart" or "poststop" (got "prestop")`}},
		{"poststop sidecar", "tasks:\n  - {name: a, driver: exec, resources: {cpu: 1, memory_mb: 1}, lifecycle: {hook: poststop, sidecar: true}}\n",
			[]string{`line 5: tasks[0].lifecycle.sidecar: a poststop task runs once the main task has ended`}},
		{"task named as the job", "tasks:\n  - {name: web, driver: exec, resources: {cpu: 1, memory_mb: 1}}\n",
			[]string{`line 5: tasks[0].name: "web" is the job's name`}},
		{"task twice", "tasks:\n  - {name: a, driver: exec, resources: {cpu: 1, memory_mb: 1}}\n  - {name: a, driver: exec, resources: {cpu: 1, memory_mb: 1}}\n",
			[]string{`line 6: tasks[1].name: "a" is given twice`}},
		{"task without driver and resources", "tasks:\n  - {name: a}\n",
			[]string{`line 5: tasks[0].resources.cpu: must be > 0`, `line 5: tasks[0].resources.memory_mb: must be > 0`, `line 5: tasks[0].driver: is required`}},
		{"volume without type", "volumes:\n  data: {source: d}\n",
			[]string{`line 5: volumes.data.type: is required`}},
		{"volume bad type", "volumes:\n  data: {type: nfs, source: d}\n",
			[]string{`line 5: volumes.data.type: must be "host" or "docker" (got "nfs")`}},
		{"volume bad name", "volumes:\n  my-data: {type: host, source: d}\n",
			[]string{`line 5: volumes.my-data: a volume name must start with a letter`}},
		{"undeclared volume", "volume_mounts:\n  - {volume: data, destination: /d}\n",
			[]string{`line 5: volume_mounts[0].volume: "data" is not declared under volumes`}},
		{"relative destination", "volumes:\n  data: {type: host, source: d}\nvolume_mounts:\n  - {volume: data, destination: d}\n",
			[]string{`line 7: volume_mounts[0].destination: must be an absolute path`}},
		{"docker volume in exec task", "volumes:\n  data: {type: docker, source: d}\nvolume_mounts:\n  - {volume: data, destination: /d}\n",
			[]string{`line 7: volume_mounts[0].volume: "data" is a docker volume; only docker tasks can mount it`}},
		{"mount in extra task", "volumes:\n  data: {type: host, source: d}\ntasks:\n  - name: a\n    driver: exec\n    resources: {cpu: 1, memory_mb: 1}\n    volume_mounts: [{volume: dat, destination: /d}]\n",
			[]string{`line 10: tasks[0].volume_mounts[0].volume: "dat" is not declared under volumes (declared: data)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAndValidate([]byte(head+tc.doc), nil)
			wantProblems(t, err, tc.want)
		})
	}
}

// wantProblems checks a document's error lists the wanted problems in
// order, each as a prefix; no wanted problem means no error.
func wantProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Problems) != len(want) {
		t.Fatalf("err %v, want %d problems: %q", err, len(want), want)
	}
	for i, w := range want {
		if got := pe.Problems[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d = %q, want prefix %q", i, got, w)
		}
	}
}
