package server

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

// TestScaleGroup: scale takes a group for a job with groups (optional when
// there is one), and keeps the job's count the groups' sum.
func TestScaleGroup(t *testing.T) {
	g := func(name string, count int) structs.TaskGroup {
		return structs.TaskGroup{Name: name, Count: count, Driver: "mock", Resources: structs.Resources{CPU: 1, MemoryMB: 1}}
	}
	two := &structs.Job{ID: "shop", Name: "shop", Groups: []structs.TaskGroup{g("web", 3), g("cache", 1)}, Count: 4}
	one := &structs.Job{ID: "shop", Name: "shop", Groups: []structs.TaskGroup{g("web", 3)}, Count: 3}
	flat := &structs.Job{ID: "web", Name: "web", Driver: "mock", Count: 2}
	tests := []struct {
		name   string
		job    *structs.Job
		group  string
		count  int
		err    string // part of the error; "" = ok
		counts []int  // groups' counts after, or the job's count for flat
		total  int
	}{
		{"named group", two, "cache", 5, "", []int{3, 5}, 8},
		{"no group with several", two, "", 5, "name the group", nil, 0},
		{"unknown group", two, "db", 5, `no group "db"`, nil, 0},
		{"the only group by default", one, "", 0, "", []int{0}, 0},
		{"job without groups", flat, "", 7, "", nil, 7},
		{"job without groups by its name", flat, "web", 7, "", nil, 7},
		{"job without groups, another name", flat, "db", 7, "its one group is named after the job", nil, 0},
		{"negative", two, "web", -1, "between 0 and", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := tt.job.Copy()
			err := scaleGroup(j, tt.group, tt.count)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range tt.counts {
				if j.Groups[i].Count != c {
					t.Fatalf("group %s count %d, want %d", j.Groups[i].Name, j.Groups[i].Count, c)
				}
			}
			if j.Count != tt.total {
				t.Fatalf("job count %d, want %d", j.Count, tt.total)
			}
		})
	}
}
