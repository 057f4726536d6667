package jobspec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestParseGroups: documents with groups parse in YAML and JSON to the same
// job, and their mistakes are reported with the group's field and line.
func TestParseGroups(t *testing.T) {
	job, err := ParseAndValidate([]byte(groupsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Groups) != 2 || job.Groups[0].Name != "web" || job.Groups[1].Name != "cache" || job.Count != 4 {
		t.Fatalf("groups = %+v, count %d", job.Groups, job.Count)
	}
	web, cache := job.GroupView("web"), job.GroupView("cache")
	if web.Count != 3 || !web.HasPorts() || len(web.Tasks) != 1 || len(web.Services) != 1 || len(web.Constraints) != 1 {
		t.Fatalf("web view = %+v", web)
	}
	if cache.Count != 1 || cache.Resources.CPU != 200 || len(cache.Constraints) != 2 || cache.Logs.MaxFiles != 2 || cache.Logs.MaxFileSizeMB != structs.DefaultLogMaxFileSizeMB {
		t.Fatalf("cache view = %+v", cache)
	}

	jsonDoc := `{"name": "shop", "groups": [
	  {"name": "web", "count": 3, "driver": "mock", "config": {"run_for": "1h"}, "resources": {"cpu": 100, "memory_mb": 64}},
	  {"name": "cache", "count": 1, "driver": "mock", "resources": {"cpu": 200, "memory_mb": 128}}]}`
	yamlDoc := `name: shop
groups:
  - {name: web, count: 3, driver: mock, config: {run_for: 1h}, resources: {cpu: 100, memory_mb: 64}}
  - {name: cache, count: 1, driver: mock, resources: {cpu: 200, memory_mb: 128}}
`
	a, err := Parse([]byte(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("JSON and YAML differ:\n%+v\n%+v", a, b)
	}

	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"duplicate group", "name: x\ngroups:\n  - {name: a, driver: mock, resources: {cpu: 1, memory_mb: 1}}\n  - {name: a, driver: mock, resources: {cpu: 1, memory_mb: 1}}\n",
			[]string{`groups[1].name: group "a" is given twice`}},
		{"group without tasks", "name: x\ngroups:\n  - name: a\n    count: 2\n",
			[]string{"line 3: groups[0]: a group with no tasks"}},
		{"group's field with its line", "name: x\ngroups:\n  - name: a\n    driver: mock\n    resources:\n      cpu: 0\n      memory_mb: 1\n",
			[]string{"line 6: groups[0].resources.cpu: must be > 0"}},
		{"unknown field in a group", "name: x\ngroups:\n  - name: a\n    cont: 1\n",
			[]string{"line 4: groups[0].cont: unknown field", `did you mean "count"?`}},
		{"top-level task fields with groups", "name: x\ndriver: mock\ngroups:\n  - {name: a, driver: mock, resources: {cpu: 1, memory_mb: 1}}\n",
			[]string{"line 2: driver: a job with groups describes its tasks in each group"}},
		{"update with groups", "name: x\nupdate: {max_parallel: 1}\ngroups:\n  - {name: a, driver: mock, resources: {cpu: 1, memory_mb: 1}}\n",
			[]string{"update: rolling updates and migrate blocks are not supported for jobs with groups yet"}},
		{"group field is server-managed", "name: x\ngroup: a\n", []string{"group: unknown field"}},
		{"groups not a list", "name: x\ngroups: {a: 1}\n", []string{"groups: expected a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAndValidate([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains("\n"+err.Error(), w) {
					t.Fatalf("error message\n%s\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
