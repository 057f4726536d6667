package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/scheduler/architecture"
	"github.com/gantry-project/gantry/internal/structs"
)

func twoLevelConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.Scheduler.Architecture = architecture.TwoLevel
	return cfg
}

// nextEvent reads the stream until an event of type typ.
func nextEvent(t *testing.T, s *api.FrameworkStream, typ structs.EventType) *api.FrameworkEvent {
	t.Helper()
	for {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

// TestTwoLevelServer runs the two-level architecture in a real server:
// built-in frameworks place jobs, a job that fits no offer says why it
// waits, and an external framework subscribes over HTTP, launches a task
// through the plan applier and kills it.
func TestTwoLevelServer(t *testing.T) {
	_, c := startServer(t, twoLevelConfig(t))
	for _, id := range []string{"n1", "n2"} {
		if _, err := c.RegisterNode(bg, fakeNode(id, 4000, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterJob(bg, mockJob("web", 2)); err != nil {
		t.Fatal(err)
	}
	etl := mockJob("etl", 1)
	etl.Type = structs.JobTypeBatch
	if _, err := c.RegisterJob(bg, etl); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "web", 2)
	waitLive(t, c, "etl", 1)

	bad := mockJob("odd", 1)
	bad.Framework = "queue"
	if _, err := c.RegisterJob(bg, bad); apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "framework") {
		t.Fatalf("a job naming an external framework: %v, want 400 naming the field", err)
	}

	huge := mockJob("huge", 1)
	huge.Resources.CPU = 100000
	if _, err := c.RegisterJob(bg, huge); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "huge waiting for offers", func() (bool, string) {
		st, _, err := c.JobStatus(bg, "huge", nil)
		if err != nil {
			return false, err.Error()
		}
		ok := strings.HasPrefix(st.WaitingForOffers, "waiting for offers: framework service holds") &&
			st.PlacementFailure != nil && st.PlacementFailure.Message == "waiting for offers from framework service"
		return ok, st.WaitingForOffers
	})

	stream, err := c.SubscribeFramework(bg, api.FrameworkInfo{Name: "queue", FailoverTimeout: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fw := nextEvent(t, stream, structs.EventTypeSubscribed).Subscribed.FrameworkID
	if fw == "" || fw != stream.FrameworkID || stream.StreamID == "" {
		t.Fatalf("subscribed as %q (header %q, stream %q)", fw, stream.FrameworkID, stream.StreamID)
	}
	of := nextEvent(t, stream, structs.EventTypeOffers).Offers.Offers[0]
	refuse := 0.0
	launch := &api.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeAccept, Accept: &api.CallAccept{
		OfferIDs: []string{of.ID},
		Operations: []api.OfferOperation{{Type: structs.OperationLaunch, Launch: &api.LaunchOperation{TaskInfos: []api.TaskInfo{
			{TaskID: "t1", AgentID: of.AgentID, Resources: api.Resources{CPU: 100, MemoryMB: 64}, Driver: "mock"},
		}}}},
		Filters: &api.Filters{RefuseSeconds: &refuse},
	}}
	if _, err := c.CallFramework(bg, "not-the-stream", launch); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("a call on another stream: %v, want 403", err)
	}
	res, err := c.CallFramework(bg, stream.StreamID, launch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tasks) != 1 || res.Tasks[0].State != structs.TaskStaging {
		t.Fatalf("launch: %+v", res)
	}
	live := waitLive(t, c, "queue.t1", 1)
	if live[0].ID != res.Tasks[0].AllocID || live[0].NodeID != of.AgentID {
		t.Fatalf("t1's allocation %+v, launch said %+v", live[0], res.Tasks[0])
	}
	if _, err := c.ScaleJob(bg, "queue.t1", 3); apiStatus(err) != http.StatusConflict {
		t.Fatalf("a user scaling a framework's task: %v, want 409", err)
	}
	if _, err := c.CallFramework(bg, stream.StreamID, &api.FrameworkCall{FrameworkID: fw, Type: "LAUNCH_GROUP"}); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("an unknown call: %v, want 400", err)
	}

	fws, err := c.Frameworks(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(fws) != 3 || fws[2].Name != "queue" || !fws[2].Connected || fws[2].Tasks != 1 {
		t.Fatalf("frameworks %+v", fws)
	}
	d, err := c.Framework(bg, "queue")
	if err != nil || len(d.Tasks) != 1 || d.Tasks[0].TaskID != "t1" {
		t.Fatalf("framework queue: %+v %v", d, err)
	}
	st, err := c.SchedulerStatus(bg)
	if err != nil || st.Architecture != architecture.TwoLevel || st.OffersSent == 0 || len(st.Frameworks) != 3 || st.JobsWaiting != 1 {
		t.Fatalf("scheduler status %+v %v", st, err)
	}

	if _, err := c.CallFramework(bg, stream.StreamID, &api.FrameworkCall{FrameworkID: fw, Type: structs.CallTypeKill, Kill: &api.CallKill{TaskID: "t1"}}); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, "queue.t1", 0)
	for {
		ev := nextEvent(t, stream, structs.EventTypeUpdate)
		if s := ev.Update.Status; s.TaskID == "t1" && s.State.Terminal() {
			if s.State != structs.TaskKilled {
				t.Fatalf("t1 after kill: %+v", s)
			}
			break
		}
	}
}

// TestFrameworksNeedTwoLevel: a server running another architecture
// refuses the framework API with a message naming the flag.
func TestFrameworksNeedTwoLevel(t *testing.T) {
	_, c := startServer(t, testConfig(t))
	_, err := c.SubscribeFramework(bg, api.FrameworkInfo{Name: "queue"})
	if apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "--scheduler two-level") {
		t.Fatalf("subscribe on monolithic: %v", err)
	}
}
