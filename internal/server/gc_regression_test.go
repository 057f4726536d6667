package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/structs"
)

// TestSystemGCCollectsCrashLoop: a copy that fails again and again leaves
// a failed allocation per failure; POST /v1/system/gc deletes them all but
// what the scheduler still reads, through Raft, and the job goes on.
func TestSystemGCCollectsCrashLoop(t *testing.T) {
	s, c := startServer(t, testConfig(t))
	if _, err := c.RegisterNode(bg, fakeNode("n1", 2000, 2048)); err != nil {
		t.Fatal(err)
	}
	job := mockJob("web", 1)
	job.Reschedule = api.ReschedulePolicy{Unlimited: true, Delay: api.Duration(time.Millisecond)}
	if _, err := c.RegisterJob(bg, job); err != nil {
		t.Fatal(err)
	}
	const failures = 25
	for i := range failures {
		live := waitLive(t, c, "web", 1)
		if _, err := c.UpdateAllocations(bg, "n1", []*api.AllocClientUpdate{{ID: live[0].ID, ClientStatus: structs.AllocClientFailed}}); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	waitLive(t, c, "web", 1)
	allocs, _, err := c.JobAllocations(bg, "web", nil)
	if err != nil || len(allocs) != failures+1 {
		t.Fatalf("%d allocations before collecting (%v), want %d", len(allocs), err, failures+1)
	}

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://"+s.HTTPAddr()+"/v1/system/gc", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/system/gc: %s: %s", resp.Status, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	allocs, _, err = c.JobAllocations(bg, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	terminal := 0
	for _, a := range allocs {
		if a.Terminal() {
			terminal++
		}
	}
	// The newest failed copy may still head its index (its replacement
	// not placed yet); every other one is gone.
	if terminal > 1 || fmt.Sprint(out["allocations"]) != fmt.Sprint(failures-terminal) {
		t.Fatalf("after collecting: %d terminal allocations kept, answer %s; want at most 1 and the rest counted", terminal, body)
	}
	waitLive(t, c, "web", 1)
}
