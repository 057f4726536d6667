package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/structs"
)

var now0 = time.Unix(1_800_000_000, 0)

// ra builds an allocation for reconcile tests: "id idx node version
// desired/client" with optional tweaks.
func ra(id string, idx int, node string, version uint64, desired, client string, tweaks ...func(*structs.Allocation)) *structs.Allocation {
	a := &structs.Allocation{
		ID: id, JobID: "web", Index: idx, NodeID: node, JobVersion: version,
		DesiredStatus: desired, ClientStatus: client, CreateIndex: uint64(10 + len(id)),
		Resources: structs.Resources{CPU: 100, MemoryMB: 100},
	}
	for _, f := range tweaks {
		f(a)
	}
	return a
}

const (
	run  = structs.AllocDesiredRun
	stop = structs.AllocDesiredStop
)

func TestReconcile(t *testing.T) {
	nodes := map[string]*structs.Node{
		"n1":    {ID: "n1", Status: structs.NodeStatusReady},
		"n2":    {ID: "n2", Status: structs.NodeStatusReady},
		"drain": {ID: "drain", Status: structs.NodeStatusReady, Drain: true},
		"down":  {ID: "down", Status: structs.NodeStatusDown},
	}
	service := func(count int, tweaks ...func(*structs.Job)) *structs.Job {
		j := &structs.Job{ID: "web", Name: "web", Count: count, Version: 1, Driver: "mock",
			Resources: structs.Resources{CPU: 100, MemoryMB: 100}}
		j.Canonicalize()
		for _, f := range tweaks {
			f(j)
		}
		return j
	}
	batch := func(j *structs.Job) { j.Type = structs.JobTypeBatch }
	version2 := func(j *structs.Job) { j.Version = 2 }
	resched := func(attempts int, unlimited bool, delay time.Duration) func(*structs.Job) {
		return func(j *structs.Job) {
			j.Reschedule = structs.ReschedulePolicy{Attempts: attempts, Unlimited: unlimited, Delay: structs.Duration(delay)}
		}
	}
	modified := func(ago time.Duration) func(*structs.Allocation) {
		return func(a *structs.Allocation) { a.ModifyTime = now0.Add(-ago).UnixNano() }
	}
	rescheduled := func(n int) func(*structs.Allocation) {
		return func(a *structs.Allocation) { a.RescheduleCount = n }
	}
	running := structs.AllocClientRunning

	tests := []struct {
		name    string
		job     *structs.Job
		allocs  []*structs.Allocation
		stops   []string // "allocID:description"
		place   []string // "index<-previous/rescheduleCount"
		retryIn time.Duration
	}{
		{name: "new job", job: service(3), place: []string{"0<-/0", "1<-/0", "2<-/0"}},
		{name: "steady", job: service(2),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n2", 1, run, structs.AllocClientPending)}},
		{name: "scale up", job: service(3),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n1", 1, run, running)},
			place:  []string{"2<-/0"}},
		{name: "scale down", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n1", 1, run, running), ra("a2", 2, "n2", 1, run, running)},
			stops:  []string{"a1:scaled down", "a2:scaled down"}},
		{name: "scale to zero ignores terminal", job: service(0),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("old", 0, "n1", 1, stop, structs.AllocClientComplete)},
			stops:  []string{"a0:scaled down"}},
		{name: "update replaces old version", job: service(2, version2),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n1", 2, run, running)},
			stops:  []string{"a0:job updated"}, place: []string{"0<-a0/0"}},
		{name: "update already replaced", job: service(1, version2),
			allocs: []*structs.Allocation{ra("old", 0, "n1", 1, stop, running), ra("new", 0, "n2", 2, run, running)}},
		{name: "stopped job", job: service(2, func(j *structs.Job) { j.Stop = true }),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("gone", 1, "n1", 1, stop, structs.AllocClientComplete)},
			stops:  []string{"a0:job stopped"}},
		{name: "purged job", job: nil,
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n1", 1, run, running)},
			stops:  []string{"a0:job stopped", "a1:job stopped"}},
		{name: "duplicate at one index", job: service(1),
			allocs: []*structs.Allocation{ra("a", 0, "n1", 1, run, running), ra("bb", 0, "n2", 1, run, running)},
			stops:  []string{"a:duplicate copy"}},
		{name: "drained node", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "drain", 1, run, running)},
			stops:  []string{"a0:node drained"}, place: []string{"0<-a0/0"}},
		{name: "down node not yet marked lost", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "down", 1, run, running)},
			stops:  []string{"a0:node down"}, place: []string{"0<-a0/0"}},
		{name: "lost service", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "down", 1, stop, structs.AllocClientLost, rescheduled(2))},
			place:  []string{"0<-a0/2"}},
		{name: "lost batch", job: service(1, batch),
			allocs: []*structs.Allocation{ra("a0", 0, "down", 1, stop, structs.AllocClientLost)},
			place:  []string{"0<-a0/0"}},
		{name: "batch complete never rerun", job: service(2, batch),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientComplete), ra("a1", 1, "n1", 1, run, running)}},
		{name: "batch complete then later lost copy still done", job: service(1, batch),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientComplete), ra("a00", 0, "down", 1, stop, structs.AllocClientLost)}},
		{name: "service complete replaced", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientComplete)},
			place:  []string{"0<-a0/0"}},
		{name: "failed rescheduled after delay", job: service(1, resched(2, false, time.Minute)),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientFailed, modified(2*time.Minute))},
			place:  []string{"0<-a0/1"}},
		{name: "failed waits for delay", job: service(1, resched(2, false, time.Minute)),
			allocs:  []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientFailed, modified(20*time.Second))},
			retryIn: 40 * time.Second},
		{name: "failed attempts exhausted", job: service(1, resched(2, false, 0)),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientFailed, rescheduled(2))}},
		{name: "failed no attempts", job: service(1, batch, resched(0, false, 0)),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientFailed)}},
		{name: "failed unlimited", job: service(1, resched(0, true, 0)),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, structs.AllocClientFailed, rescheduled(7))},
			place:  []string{"0<-a0/8"}},
		{name: "only the latest failure counts", job: service(1, resched(1, false, 0)),
			allocs: []*structs.Allocation{
				ra("first", 0, "n1", 1, run, structs.AllocClientFailed),
				ra("second", 0, "n1", 1, run, structs.AllocClientFailed, rescheduled(1), func(a *structs.Allocation) { a.CreateIndex = 99 }),
			}},
		{name: "preempted copy replaced", job: service(1),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, structs.AllocDesiredEvict, running)},
			place:  []string{"0<-a0/0"}},
		{name: "scaled down then up again", job: service(2),
			allocs: []*structs.Allocation{ra("a0", 0, "n1", 1, run, running), ra("a1", 1, "n1", 1, stop, structs.AllocClientComplete)},
			place:  []string{"1<-a1/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Reconcile(tt.job, tt.allocs, func(id string) *structs.Node { return nodes[id] }, now0)
			var stops, place []string
			for _, s := range r.Stops {
				if s.Desired != structs.AllocDesiredStop || s.NodeID == "" {
					t.Fatalf("bad stop %+v", s)
				}
				stops = append(stops, s.AllocID+":"+s.Description)
			}
			for _, p := range r.Place {
				place = append(place, fmt.Sprintf("%d<-%s/%d", p.Index, p.Previous, p.RescheduleCount))
			}
			slices.Sort(stops)
			if !slices.Equal(stops, tt.stops) {
				t.Errorf("stops = %v, want %v", stops, tt.stops)
			}
			if !slices.Equal(place, tt.place) {
				t.Errorf("place = %v, want %v", place, tt.place)
			}
			var retryIn time.Duration
			if !r.RetryAt.IsZero() {
				retryIn = r.RetryAt.Sub(now0)
			}
			if retryIn != tt.retryIn {
				t.Errorf("retry in %v, want %v", retryIn, tt.retryIn)
			}
		})
	}
}

// TestReconcileNeverPanicsOnOddData: negative indices and unknown statuses
// are handled, not crashed on.
func TestReconcileOddData(t *testing.T) {
	job := &structs.Job{ID: "web", Count: 1, Version: 1}
	allocs := []*structs.Allocation{
		ra("neg", -1, "n1", 1, run, structs.AllocClientRunning),
		ra("weird", 0, "nowhere", 1, run, "exploded"),
	}
	r := Reconcile(job, allocs, func(string) *structs.Node { return nil }, now0)
	got := fmt.Sprint(r.Stops)
	if !strings.Contains(got, "neg") || !strings.Contains(got, "weird") {
		t.Fatalf("stops = %v", r.Stops)
	}
}
