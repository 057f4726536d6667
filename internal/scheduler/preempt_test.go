package scheduler_test

import (
	"slices"
	"testing"

	"github.com/gantry-project/gantry/internal/scheduler"
	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// occupant is a running allocation of its own job with the given priority.
type occupant struct {
	id       string
	node     string
	priority int
	cpu      int64
}

func (o occupant) alloc() (*structs.Job, *structs.Allocation) {
	j := schedtest.Job(o.id, 1, o.cpu, 256)
	j.Priority = o.priority
	a := schedtest.Alloc(j, 0, o.node)
	a.ID = o.id
	return j, a
}

func TestPreemption(t *testing.T) {
	tests := []struct {
		name      string
		nodes     []string // each 4000m / 4096 MiB
		occupants []occupant
		priority  int
		cpu       int64
		want      []string // evicted allocation IDs, sorted; nil = no preemption
		placedOn  string   // "" = not placed
	}{
		{
			name:      "evicts lower priority",
			nodes:     []string{"n1"},
			occupants: []occupant{{"low", "n1", 10, 4000}},
			priority:  80, cpu: 1000,
			want: []string{"low"}, placedOn: "n1",
		},
		{
			name:      "never evicts equal priority",
			nodes:     []string{"n1"},
			occupants: []occupant{{"same", "n1", 80, 4000}},
			priority:  80, cpu: 1000,
		},
		{
			name:      "never evicts higher priority",
			nodes:     []string{"n1"},
			occupants: []occupant{{"high", "n1", 90, 4000}},
			priority:  80, cpu: 1000,
		},
		{
			name:      "lowest priority first across nodes",
			nodes:     []string{"n1", "n2"},
			occupants: []occupant{{"p20", "n1", 20, 4000}, {"p10", "n2", 10, 4000}},
			priority:  80, cpu: 1000,
			want: []string{"p10"}, placedOn: "n2",
		},
		{
			name:  "fewest resources among equal priorities",
			nodes: []string{"n1", "n2"},
			occupants: []occupant{
				{"big", "n1", 10, 3000},
				{"small", "n2", 10, 1500}, {"keep", "n2", 90, 1500},
			},
			priority: 80, cpu: 2000,
			want: []string{"small"}, placedOn: "n2",
		},
		{
			name:  "evicts only what is needed",
			nodes: []string{"n1"},
			occupants: []occupant{
				{"a", "n1", 10, 1000}, {"b", "n1", 10, 1000}, {"c", "n1", 10, 1000}, {"d", "n1", 10, 1000},
			},
			priority: 80, cpu: 1000,
			want: []string{"a"}, placedOn: "n1",
		},
		{
			name:  "lower priority victims before bigger ones",
			nodes: []string{"n1"},
			occupants: []occupant{
				{"p30", "n1", 30, 2000}, {"p5a", "n1", 5, 1000}, {"p5b", "n1", 5, 1000},
			},
			priority: 80, cpu: 2000,
			want: []string{"p5a", "p5b"}, placedOn: "n1",
		},
		{
			name:      "not enough even after evicting everything lower",
			nodes:     []string{"n1"},
			occupants: []occupant{{"low", "n1", 10, 2000}, {"high", "n1", 90, 2000}},
			priority:  80, cpu: 3000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := schedtest.NewState()
			for _, n := range tt.nodes {
				st.UpsertNode(schedtest.Node(n, 4000, 4096))
			}
			for _, o := range tt.occupants {
				j, a := o.alloc()
				st.UpsertJob(j)
				st.UpsertAllocs(a)
			}
			job := schedtest.Job("urgent", 1, tt.cpu, 256)
			job.Priority = tt.priority
			st.UpsertJob(job)

			res, err := scheduler.ComputePlan(scheduler.Options{Rand: rng(1), Now: fixedNow}, st.Snapshot(), "urgent")
			if err != nil {
				t.Fatal(err)
			}
			plan := res.Plan
			var got []string
			for _, p := range plan.Preemptions {
				got = append(got, p.AllocID)
				if p.Desired != structs.AllocDesiredEvict || p.PreemptedBy != plan.Placements[0].ID ||
					p.Description != "preempted by urgent[0]" || p.NodeID != plan.Placements[0].NodeID {
					t.Fatalf("bad preemption %+v for placement %+v", p, plan.Placements[0])
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("evicted %v, want %v", got, tt.want)
			}
			if tt.placedOn == "" {
				if len(plan.Placements) != 0 || plan.Failure == nil {
					t.Fatalf("want a failure and no placement, got %+v", plan)
				}
				return
			}
			if len(plan.Placements) != 1 || plan.Placements[0].NodeID != tt.placedOn {
				t.Fatalf("placements %+v, want one on %s", plan.Placements, tt.placedOn)
			}
			if len(res.Victims) != len(tt.want) {
				t.Fatalf("victims %d, want %d", len(res.Victims), len(tt.want))
			}
			// The plan applies without over-committing.
			pl := schedtest.NewPlanner(st)
			pr, err := pl.SubmitPlan(t.Context(), plan)
			if err != nil || len(pr.RejectedNodes) != 0 {
				t.Fatalf("plan rejected: %v %+v", err, pr)
			}
			if err := st.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.want {
				if a := st.Alloc(id); a.DesiredStatus != structs.AllocDesiredEvict || a.PreemptedBy == "" {
					t.Fatalf("victim %s not evicted: %+v", id, a)
				}
			}
		})
	}
}
