package structs

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func testGroup(name string, count int) TaskGroup {
	return TaskGroup{Name: name, Count: count, Driver: "mock", Resources: Resources{CPU: 100, MemoryMB: 64}}
}

func testGroupsJob(groups ...TaskGroup) *Job {
	return &Job{Name: "shop", Groups: groups}
}

// TestValidateGroups: the rules of jobs with groups, each failure naming
// its field.
func TestValidateGroups(t *testing.T) {
	many := make([]TaskGroup, MaxGroups+1)
	for i := range many {
		many[i] = testGroup(fmt.Sprintf("g%d", i), 1)
	}
	tests := []struct {
		name  string
		job   *Job
		field string // "" = valid
		rule  string // a part of the rule
	}{
		{"two groups", testGroupsJob(testGroup("web", 3), testGroup("cache", 1)), "", ""},
		{"one group", testGroupsJob(testGroup("web", 3)), "", ""},
		{"duplicate names", testGroupsJob(testGroup("web", 3), testGroup("web", 1)), "groups[1].name", "given twice"},
		{"no name", testGroupsJob(testGroup("", 3)), "groups[0].name", "required"},
		{"bad name", testGroupsJob(testGroup("a b", 3)), "groups[0].name", "letters"},
		{"no tasks", testGroupsJob(TaskGroup{Name: "web", Count: 1}), "groups[0]", "no tasks"},
		{"too many groups", testGroupsJob(many...), "groups", "at most 32"},
		{"negative count", testGroupsJob(testGroup("web", -1)), "groups[0].count", "between"},
		{"group's resources", testGroupsJob(TaskGroup{Name: "web", Count: 1, Driver: "mock"}), "groups[0].resources.cpu", "> 0"},
		{"top-level driver with groups", func() *Job {
			j := testGroupsJob(testGroup("web", 1))
			j.Driver = "mock"
			return j
		}(), "driver", "move driver into the groups"},
		{"top-level tasks with groups", func() *Job {
			j := testGroupsJob(testGroup("web", 1))
			j.Tasks = []Task{{Name: "x", Driver: "mock", Resources: Resources{CPU: 1, MemoryMB: 1}}}
			return j
		}(), "tasks", "move tasks into the groups"},
		{"update with groups", func() *Job {
			j := testGroupsJob(testGroup("web", 1))
			j.Update = &UpdateStrategy{MaxParallel: 1}
			return j
		}(), "update", "not supported"},
		{"update in a group", func() *Job {
			g := testGroup("web", 1)
			g.Migrate = &MigrateStrategy{MaxParallel: 1}
			return testGroupsJob(g)
		}(), "groups[0].update", "not supported"},
		{"system job with groups", func() *Job {
			j := testGroupsJob(testGroup("web", 0))
			j.Type = JobTypeSystem
			return j
		}(), "groups", "system"},
		{"task named as its group", func() *Job {
			g := testGroup("web", 1)
			g.Tasks = []Task{{Name: "web", Driver: "mock", Resources: Resources{CPU: 1, MemoryMB: 1}}}
			return testGroupsJob(g)
		}(), "groups[0].tasks[0].name", "group's name"},
		{"group's mount of an undeclared volume", func() *Job {
			g := testGroup("web", 1)
			g.VolumeMounts = []VolumeMount{{Volume: "data", Destination: "/data"}}
			return testGroupsJob(g)
		}(), "groups[0].volume_mounts[0].volume", "not declared"},
		{"group's bad constraint", func() *Job {
			g := testGroup("web", 1)
			g.Constraints = []Constraint{{Label: "zone", Operator: "~"}}
			return testGroupsJob(g)
		}(), "groups[0].constraints[0].op", "must be one of"},
		{"group's bad restart", func() *Job {
			g := testGroup("web", 1)
			g.Restart = RestartPolicy{Attempts: -1, Delay: Duration(1)}
			return testGroupsJob(g)
		}(), "groups[0].restart.attempts", ">= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.job.Canonicalize()
			err := tt.job.Validate(nil)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("valid job refused: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError on %s", err, tt.field)
			}
			for _, fe := range ve.Errors {
				if fe.Field == tt.field && strings.Contains(fe.Rule, tt.rule) {
					return
				}
			}
			t.Fatalf("no error on %s containing %q: %v", tt.field, tt.rule, err)
		})
	}
}

// TestGroupView: a group's view carries the group's fields where a
// one-group job has them, with the job's constraints and policies as
// defaults.
func TestGroupView(t *testing.T) {
	web := testGroup("web", 3)
	web.Constraints = []Constraint{{Label: "zone", Operator: OpEqual, Value: "a"}}
	web.Network = &Network{Ports: []Port{{Label: "http"}}}
	web.Restart = RestartPolicy{Attempts: 9, Delay: Duration(1)}
	cache := testGroup("cache", 1)
	cache.Resources.CPU = 500
	j := testGroupsJob(web, cache)
	j.Constraints = []Constraint{{Label: "attr.os", Operator: OpEqual, Value: "linux"}}
	j.Canonicalize()
	if err := j.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if j.Count != 4 {
		t.Fatalf("count = %d, want the groups' sum 4", j.Count)
	}
	v := j.GroupView("web")
	if v.Group != "web" || v.Count != 3 || v.Groups != nil || v.MainTask() != "web" || !v.HasPorts() {
		t.Fatalf("web view = %+v", v)
	}
	if len(v.Constraints) != 2 || v.Constraints[0].Label != "attr.os" || v.Constraints[1].Label != "zone" {
		t.Fatalf("web constraints = %v, want the job's then the group's", v.Constraints)
	}
	if v.Restart.Attempts != 9 || v.Restart.DelayFunction != DelayConstant {
		t.Fatalf("web restart = %+v, want the group's", v.Restart)
	}
	c := j.GroupView("cache")
	if c.Resources.CPU != 500 || c.Restart != j.Restart || c.HasPorts() || len(c.Constraints) != 1 {
		t.Fatalf("cache view = %+v", c)
	}
	if j.GroupView("nope") != nil {
		t.Fatal("view of a missing group")
	}
	if v.GroupView("web") != v || v.GroupView("cache") != nil {
		t.Fatal("a view is its own view and no other group's")
	}
	one := &Job{Name: "web", Driver: "mock"}
	if one.GroupView("") != one || one.GroupView("web") != nil || one.MainTask() != "web" {
		t.Fatal("a job without groups is its own implicit group's view")
	}
	a := &Allocation{Job: j, Group: "cache"}
	if a.GroupJob().Resources.CPU != 500 {
		t.Fatal("Allocation.GroupJob")
	}
	if got := AllocGroupName("shop", "web", 2); got != "shop.web[2]" {
		t.Fatalf("AllocGroupName = %q", got)
	}
	if got := AllocGroupName("shop", "", 2); got != "shop[2]" {
		t.Fatalf("AllocGroupName implicit = %q", got)
	}
}

// TestGroupsSpecChanged: a group's count is no new version; anything else
// of a group is, and so is the move to or from groups.
func TestGroupsSpecChanged(t *testing.T) {
	base := testGroupsJob(testGroup("web", 3), testGroup("cache", 1))
	base.Canonicalize()
	scaled := base.Copy()
	scaled.Groups[0].Count = 7
	if SpecChanged(base, scaled) {
		t.Fatal("scaling a group changed the spec")
	}
	resized := base.Copy()
	resized.Groups[1].Resources.CPU = 200
	if !SpecChanged(base, resized) {
		t.Fatal("a group's resources did not change the spec")
	}
	if !GroupSpecChanged(base, resized, "cache") || GroupSpecChanged(base, resized, "web") {
		t.Fatal("GroupSpecChanged")
	}
	flat := &Job{Name: "shop", Driver: "mock", Resources: Resources{CPU: 100, MemoryMB: 64}, Count: 4}
	flat.Canonicalize()
	if !SpecChanged(flat, base) {
		t.Fatal("moving to groups did not change the spec")
	}
	// Copy is deep: changing the copy's group leaves the original.
	c := base.Copy()
	c.Groups[0].Env = map[string]string{"A": "1"}
	c.Groups[0].Name = "x"
	if base.Groups[0].Env != nil || base.Groups[0].Name != "web" || !reflect.DeepEqual(base.Copy(), base) {
		t.Fatal("Copy shares groups")
	}
}

// TestPlanBatchGroups: the plan codec carries an allocation's group, and
// derives its job.group[i] name; bodies without groups decode as before.
func TestPlanBatchGroups(t *testing.T) {
	job := testGroupsJob(testGroup("web", 2), testGroup("cache", 1))
	job.Canonicalize()
	job.ID = "shop"
	var allocs []*Allocation
	for i, g := range []string{"web", "web", "cache", ""} {
		a := testPlacement(i, "9b2c7e3a-0000-4000-8000-000000000001")
		a.JobID, a.Group, a.Job = "shop", g, job
		a.Name = AllocGroupName("shop", g, a.Index)
		allocs = append(allocs, a)
	}
	allocs[1].Name = "custom" // an inline name still wins
	req := &ApplyPlanBatchRequest{Plans: []*ApplyPlanRequest{{JobID: "shop", Allocs: allocs}}}
	body, err := EncodePlanBatch(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePlanBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		a, _ := json.Marshal(req)
		b, _ := json.Marshal(got)
		t.Fatalf("round trip changed the request:\n want %s\n got  %s", a, b)
	}
	// The names were derived, not written: the body is no bigger than
	// the same allocations' without names would need beyond the group.
	if strings.Contains(string(body), "shop.web[") {
		t.Fatal("derivable names written inline")
	}
}
