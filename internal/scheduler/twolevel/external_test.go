package twolevel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/scheduler/schedtest"
	"github.com/gantry-project/gantry/internal/structs"
)

// fakeLauncher writes task jobs into the harness's state and places them
// through its planner, as the server does through its job writer and plan
// applier.
type fakeLauncher struct {
	h *schedtest.Harness
	s *Scheduler

	mu       sync.Mutex
	launched []string // job IDs, placed or not
}

func (l *fakeLauncher) Launch(ctx context.Context, job *structs.Job, alloc *structs.Allocation) (*structs.PlanResult, error) {
	j := job.Copy()
	j.Canonicalize()
	if err := j.Validate(nil); err != nil {
		return nil, err
	}
	j.Version = 1
	l.h.State.UpsertJob(j)
	a := alloc.Copy()
	a.Job, a.JobVersion = j, 1
	res, err := l.h.Planner.SubmitPlan(ctx, &structs.Plan{JobID: j.ID, Priority: j.Priority, Placements: []*structs.Allocation{a}})
	if err != nil || !slices.Contains(res.Placed, a.ID) {
		l.h.State.PurgeJob(j.ID)
	}
	l.mu.Lock()
	l.launched = append(l.launched, j.ID)
	l.mu.Unlock()
	return res, err
}

func (l *fakeLauncher) Stop(_ context.Context, jobID string) error {
	j := l.h.State.Snapshot().JobByID(jobID)
	if j == nil {
		return fmt.Errorf("job %s not found", jobID)
	}
	c := j.Copy()
	c.Stop = true
	l.h.State.UpsertJob(c)
	l.s.Enqueue(jobID, c.Priority)
	return nil
}

func startExternal(t *testing.T, mod func(*Config)) (*schedtest.Harness, *Scheduler, *fakeLauncher) {
	t.Helper()
	h := schedtest.NewHarness(t)
	s := newTwoLevel(t, h, mod)
	l := &fakeLauncher{h: h, s: s}
	s.SetLauncher(l)
	return h, s, l
}

// subscribe subscribes once the architecture runs.
func subscribe(t *testing.T, h *schedtest.Harness, s *Scheduler, info structs.FrameworkInfo) *Subscription {
	t.Helper()
	var sub *Subscription
	h.WaitUntil("subscribed", func() bool {
		var err error
		sub, err = s.Subscribe(info)
		if err != nil && !errors.Is(err, ErrNotRunning) {
			t.Fatalf("subscribe: %v", err)
		}
		return err == nil
	})
	return sub
}

// next returns the subscription's next event of type typ, skipping others.
func next(t *testing.T, sub *Subscription, typ structs.EventType) structs.FrameworkEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-sub.Events():
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", typ)
		}
	}
}

// nextUpdate returns the next UPDATE of a task.
func nextUpdate(t *testing.T, sub *Subscription, taskID string) structs.TaskStatus {
	t.Helper()
	for {
		ev := next(t, sub, structs.EventTypeUpdate)
		if ev.Update.Status.TaskID == taskID {
			return ev.Update.Status
		}
	}
}

func launchCall(fwID string, offers []string, refuse float64, tasks ...structs.TaskInfo) *structs.FrameworkCall {
	return &structs.FrameworkCall{FrameworkID: fwID, Type: structs.CallTypeAccept, Accept: &structs.CallAccept{
		OfferIDs:   offers,
		Operations: []structs.OfferOperation{{Type: structs.OperationLaunch, Launch: &structs.LaunchOperation{TaskInfos: tasks}}},
		Filters:    &structs.Filters{RefuseSeconds: &refuse},
	}}
}

func taskInfo(id, agent string, cpu, mem int64) structs.TaskInfo {
	return structs.TaskInfo{TaskID: id, AgentID: agent, Resources: res(cpu, mem), Driver: "mock"}
}

// TestExternalFrameworkLifecycle walks a framework through the API:
// subscribe, offers, launches (valid, on a used offer, too big, a task ID
// reused), status updates and acknowledgements, reconciliation, a kill,
// a disconnection within its failover timeout (tasks kept) and one past
// it (tasks killed, framework removed).
func TestExternalFrameworkLifecycle(t *testing.T) {
	h, s, _ := startExternal(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 2000, 2048))
	h.State.UpsertNode(schedtest.Node("n2", 2000, 2048))
	h.Run(s)
	sub := subscribe(t, h, s, structs.FrameworkInfo{Name: "queue", FailoverTimeout: 60})
	fw := next(t, sub, structs.EventTypeSubscribed).Subscribed.FrameworkID
	offers := next(t, sub, structs.EventTypeOffers).Offers.Offers
	if len(offers) != 2 {
		t.Fatalf("offers %+v, want one per node", offers)
	}
	o1, o2 := offers[0], offers[1]
	ctx := context.Background()

	got, err := s.Accept(ctx, sub.StreamID, launchCall(fw, []string{o1.ID}, 0,
		taskInfo("t1", o1.AgentID, 500, 256), taskInfo("t2", o1.AgentID, 500, 256), taskInfo("t3", o2.AgentID, 100, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != structs.TaskStaging || got[1].State != structs.TaskStaging || got[2].State != structs.TaskError {
		t.Fatalf("launch statuses %+v: want t1, t2 staging and t3 refused (its node's offer was not accepted)", got)
	}
	t1, t2 := got[0].AllocID, got[1].AllocID
	if a := h.State.Alloc(t1); a == nil || a.JobID != "queue.t1" || a.NodeID != o1.AgentID {
		t.Fatalf("t1's allocation %+v", a)
	}
	// The offer is used: launching on it again drops the tasks.
	got, _ = s.Accept(ctx, sub.StreamID, launchCall(fw, []string{o1.ID}, 0, taskInfo("t4", o1.AgentID, 100, 64)))
	if got[0].State != structs.TaskDropped {
		t.Fatalf("launch on a used offer: %+v, want TASK_DROPPED", got[0])
	}
	// More than the offer holds, and a task ID already used.
	got, _ = s.Accept(ctx, sub.StreamID, launchCall(fw, []string{o2.ID}, 0, taskInfo("t5", o2.AgentID, 3000, 64)))
	if got[0].State != structs.TaskError {
		t.Fatalf("launch beyond the offer: %+v, want TASK_ERROR", got[0])
	}
	o3 := next(t, sub, structs.EventTypeOffers).Offers.Offers[0]
	got, _ = s.Accept(ctx, sub.StreamID, launchCall(fw, []string{o3.ID}, 0, taskInfo("t1", o3.AgentID, 100, 64)))
	if got[0].State != structs.TaskError {
		t.Fatalf("a task ID used twice: %+v, want TASK_ERROR", got[0])
	}

	// The agent runs t1: an UPDATE to acknowledge.
	if err := h.State.SetClientStatus(t1, structs.AllocClientRunning); err != nil {
		t.Fatal(err)
	}
	s.AllocsReported([]structs.AllocClientUpdateRequest{{NodeID: o1.AgentID, Updates: []*structs.AllocClientUpdate{{ID: t1, ClientStatus: structs.AllocClientRunning}}}})
	up := nextUpdate(t, sub, "t1")
	if up.State == structs.TaskError { // the refused launch of a second t1
		up = nextUpdate(t, sub, "t1")
	}
	if up.State != structs.TaskRunning || up.UUID == "" {
		t.Fatalf("update %+v, want TASK_RUNNING with a UUID", up)
	}
	ack := &structs.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeAcknowledge, Acknowledge: &structs.CallAcknowledge{TaskID: "t1", UUID: up.UUID}}
	if err := s.Call(ctx, sub.StreamID, ack); err != nil {
		t.Fatal(err)
	}

	// Reconciliation of every task.
	if err := s.Call(ctx, sub.StreamID, &structs.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeReconcile, Reconcile: &structs.CallReconcile{}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]structs.FrameworkTaskState{}
	for len(seen) < 2 {
		st := next(t, sub, structs.EventTypeUpdate).Update.Status
		if st.Reason == "reconciliation" {
			if st.UUID != "" {
				t.Fatalf("reconciliation update %+v carries a UUID", st)
			}
			seen[st.TaskID] = st.State
		}
	}
	if seen["t1"] != structs.TaskRunning || seen["t2"] != structs.TaskStaging {
		t.Fatalf("reconciled %v", seen)
	}

	// KILL t2: its job and allocation stop.
	kill := &structs.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeKill, Kill: &structs.CallKill{TaskID: "t2"}}
	if err := s.Call(ctx, sub.StreamID, kill); err != nil {
		t.Fatal(err)
	}
	if up := nextUpdate(t, sub, "t2"); up.State != structs.TaskKilled {
		t.Fatalf("t2 after kill: %+v", up)
	}
	if a := h.State.Alloc(t2); a.DesiredStatus != structs.AllocDesiredStop {
		t.Fatalf("t2's allocation %+v not stopped", a)
	}

	// Away within the failover timeout: tasks kept, same ID, the
	// unacknowledged update sent again.
	sub.Close()
	if f := frameworkNamed(s, "queue"); f.Connected || f.Tasks != 1 {
		t.Fatalf("after disconnect: %+v", f)
	}
	sub = subscribe(t, h, s, structs.FrameworkInfo{ID: fw, Name: "queue", FailoverTimeout: 60})
	if got := next(t, sub, structs.EventTypeSubscribed).Subscribed.FrameworkID; got != fw {
		t.Fatalf("resubscribed as %s, want %s", got, fw)
	}
	if up := nextUpdate(t, sub, "t2"); up.State != structs.TaskKilled {
		t.Fatalf("unacknowledged update not resent: %+v", up)
	}
	if len(h.State.LiveAllocs("queue.t1")) != 1 {
		t.Fatal("t1 did not survive the framework's reconnection")
	}

	// Away past the failover timeout: its tasks are killed.
	sub.Close()
	fireTimer(t, h, 60*time.Second)
	h.WaitUntil("t1 killed", func() bool { return len(h.State.LiveAllocs("queue.t1")) == 0 })
	if _, err := s.Subscribe(structs.FrameworkInfo{ID: fw, Name: "queue"}); !errors.Is(err, ErrFrameworkRemoved) {
		t.Fatalf("subscribe after removal: %v, want ErrFrameworkRemoved", err)
	}
	invariants(t, s, h)
}

func frameworkNamed(s *Scheduler, name string) structs.FrameworkStatus {
	for _, f := range s.Frameworks() {
		if f.Name == name {
			return f
		}
	}
	return structs.FrameworkStatus{}
}

// TestNodeLostFailsTasks: a node going down rescinds its offer, sends
// FAILURE to frameworks with tasks there, and their tasks are lost.
func TestNodeLostFailsTasks(t *testing.T) {
	h, s, _ := startExternal(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 2000, 2048))
	h.Run(s)
	sub := subscribe(t, h, s, structs.FrameworkInfo{Name: "queue"})
	fw := next(t, sub, structs.EventTypeSubscribed).Subscribed.FrameworkID
	o := next(t, sub, structs.EventTypeOffers).Offers.Offers[0]
	got, err := s.Accept(context.Background(), sub.StreamID, launchCall(fw, []string{o.ID}, 0, taskInfo("t1", o.AgentID, 500, 256)))
	if err != nil || got[0].State != structs.TaskStaging {
		t.Fatalf("launch: %+v %v", got, err)
	}
	o = next(t, sub, structs.EventTypeOffers).Offers.Offers[0] // the rest of n1
	if err := h.State.SetNodeStatus("n1", structs.NodeStatusDown); err != nil {
		t.Fatal(err)
	}
	s.Enqueue("queue.t1", 50) // the server enqueues the jobs of a node that went down
	// RESCIND before FAILURE; the task's update comes in its own time.
	var rescind, failure, lost bool
	timeout := time.After(30 * time.Second)
	for !rescind || !failure || !lost {
		var ev structs.FrameworkEvent
		select {
		case ev = <-sub.Events():
		case <-timeout:
			t.Fatalf("RESCIND seen %v, FAILURE %v, TASK_LOST %v; want all", rescind, failure, lost)
		}
		switch {
		case ev.Type == structs.EventTypeRescind && ev.Rescind.OfferID == o.ID:
			rescind = true
		case ev.Type == structs.EventTypeFailure && ev.Failure.AgentID == "n1":
			if !rescind {
				t.Fatal("FAILURE before the node's offer was rescinded")
			}
			failure = true
		case ev.Type == structs.EventTypeUpdate && ev.Update.Status.TaskID == "t1":
			if ev.Update.Status.State != structs.TaskLost {
				t.Fatalf("t1: %+v, want TASK_LOST", ev.Update.Status)
			}
			lost = true
		}
	}
	got, _ = s.Accept(context.Background(), sub.StreamID, launchCall(fw, []string{o.ID}, 0, taskInfo("t2", o.AgentID, 100, 64)))
	if got[0].State != structs.TaskDropped {
		t.Fatalf("launch on a rescinded offer: %+v", got[0])
	}
}

// TestSlowSubscriberDropped: a framework that does not read its events is
// dropped once its queue is full, without blocking the allocator.
func TestSlowSubscriberDropped(t *testing.T) {
	h, s, _ := startExternal(t, func(c *Config) { c.SubscriberBuffer = 16 })
	for i := range 40 {
		h.State.UpsertNode(schedtest.Node(fmt.Sprintf("n%02d", i), 1000, 1024))
	}
	h.Run(s)
	sub := subscribe(t, h, s, structs.FrameworkInfo{Name: "sleepy"})
	fw := next(t, sub, structs.EventTypeSubscribed).Subscribed.FrameworkID
	// Offers keep coming (each declined offer returns to the framework
	// in the next round) while nobody reads the events.
	for range 40 {
		s.mu.Lock()
		if s.fws[fw] == nil || s.fws[fw].sub == nil {
			s.mu.Unlock()
			break
		}
		ids := []string{}
		for id, o := range s.alloc.offers {
			if o.fw.id == fw {
				ids = append(ids, id)
			}
		}
		_ = s.alloc.Decline(fw, ids, 0, s.now())
		s.mu.Unlock()
		s.poke()
		time.Sleep(time.Millisecond)
	}
	select {
	case <-sub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a subscriber that reads nothing was not dropped")
	}
	if f := frameworkNamed(s, "sleepy"); f.Connected || f.OffersHeld != 0 {
		t.Fatalf("dropped framework %+v: want disconnected, its offers rescinded", f)
	}
}

// TestReconcileOrphanLaunch: a task job a lost leader registered but
// never placed is reported dropped (and stopped), not staging forever.
func TestReconcileOrphanLaunch(t *testing.T) {
	h, s, _ := startExternal(t, nil)
	h.State.UpsertNode(schedtest.Node("n1", 2000, 2048))
	const fw = "5f0c1c9e-0000-4000-8000-000000000001"
	h.State.UpsertJob(&structs.Job{ID: "queue.t1", Name: "queue.t1", Type: structs.JobTypeBatch, Count: 1, Priority: 50, Version: 1,
		Driver: "mock", Resources: res(100, 64), FrameworkTask: &structs.FrameworkTask{FrameworkID: fw, FrameworkName: "queue", TaskID: "t1"}})
	h.Run(s)
	sub := subscribe(t, h, s, structs.FrameworkInfo{ID: fw, Name: "queue"})
	next(t, sub, structs.EventTypeSubscribed)
	rec := &structs.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeReconcile, Reconcile: &structs.CallReconcile{Tasks: []structs.ReconcileTask{{TaskID: "t1"}, {TaskID: "t9"}}}}
	if err := s.Call(context.Background(), sub.StreamID, rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]structs.FrameworkTaskState{}
	for len(got) < 2 {
		st := next(t, sub, structs.EventTypeUpdate).Update.Status
		got[st.TaskID] = st.State
	}
	if got["t1"] != structs.TaskDropped || got["t9"] != structs.TaskUnknown {
		t.Fatalf("reconciled %v: want t1 dropped (never placed), t9 unknown", got)
	}
	h.WaitUntil("the orphan's job stopped", func() bool { return h.State.Snapshot().JobByID("queue.t1").Stop })
}
