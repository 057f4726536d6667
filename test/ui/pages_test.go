package ui

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// uiJob prints a line the test looks for in the live log, then keeps
// running.
const uiJob = `name: ui-test
type: service
count: 2
resources: {cpu: 10, memory_mb: 8}
driver: exec
config:
  command: /bin/sh
  args: ["-c", "echo line-from-the-ui-test $GANTRY_ALLOC_INDEX; exec sleep 300"]
`

// startDev runs `gantry dev` with two agents and returns its API address.
func startDev(t *testing.T) (string, *api.Client) {
	t.Helper()
	addr := testutil.FreeAddr(t)
	testutil.StartProc(t, gantryBin, "dev", "dev", "--agents", "2", "--data-dir", filepath.Join(t.TempDir(), "data"), "--http-addr", addr)
	c, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, 100*time.Millisecond, "two ready nodes", func() (bool, string) {
		nodes, _, err := c.ListNodes(context.Background(), nil)
		if err != nil {
			return false, err.Error()
		}
		return len(nodes) == 2, fmt.Sprintf("%d nodes", len(nodes))
	})
	return "http://" + addr, c
}

// TestPages opens every page of a dev cluster, runs a job from the Jobs
// page, watches its allocations turn running, reads a line its task
// printed in the live log, and stops it; each page is checked for
// keyboard access and labels and saved as a screenshot.
func TestPages(t *testing.T) {
	chromiumPath(t)
	base, c := startDev(t)
	b := newBrowser(t, base)

	// / sends a browser to the UI.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/" || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / ended at %s with %d, want the UI", resp.Request.URL, resp.StatusCode)
	}

	b.open("#/overview", "Overview")
	b.wait("the heat map", `document.documentElement.dataset.overviewNodes === '2'`)
	b.wait("the servers", `document.querySelector('#main table')?.innerText.includes('leader')`)
	b.checkKeyboard("overview")
	b.shot("overview")

	// Token entry: stored in this browser, sent with every request.
	b.do("enter a token", chromedp.SetValue("#token-input", "s3cr3t"), chromedp.Click("#token-form button[type=submit]"))
	if got := eval[string](b, `localStorage.getItem('gantry.token')`); got != "s3cr3t" {
		t.Fatalf("stored token %q", got)
	}
	b.do("clear the token", chromedp.Click("#token-clear"))
	if got := eval[bool](b, `localStorage.getItem('gantry.token') === null`); !got {
		t.Fatal("token not cleared")
	}

	// Run a job from the page.
	b.open("#/jobs", "Jobs")
	b.do("open the run form", chromedp.Click("details.card > summary"))
	b.checkKeyboard("jobs")
	b.do("run the job", chromedp.SetValue("details.card textarea", uiJob), chromedp.Click("details.card button[type=submit]"))
	b.wait("the job page", `location.hash === '#/job/ui-test'`)
	b.wait("two copies running", `document.getElementById('main').innerText.includes('2 of 2 copies of version 1 running')`)
	b.checkKeyboard("job")
	b.shot("job")
	allocs, _, err := c.JobAllocations(context.Background(), "ui-test", nil)
	if err != nil || len(allocs) != 2 {
		t.Fatalf("allocations of ui-test: %v %v", allocs, err)
	}
	b.open("#/jobs", "Jobs")
	b.wait("the job in the list", `document.querySelector('.vlist')?.innerText.includes('ui-test')`)
	b.shot("jobs")

	// An allocation and its live log.
	b.open("#/job/ui-test", "Job")
	b.wait("the allocation links", `document.querySelectorAll('a[href^="#/allocation/"]').length === 2`)
	b.do("open an allocation", chromedp.Click(`a[href^="#/allocation/"]`))
	b.wait("the allocation page", `location.hash.startsWith('#/allocation/') && document.querySelector('main h1').textContent.includes('ui-test[')`)
	b.wait("the task's line in the live log", `document.querySelector('pre.logs').textContent.includes('line-from-the-ui-test')`)
	b.wait("the log still following", `document.querySelector('[role=status]') !== null && document.getElementById('main').innerText.includes('Following')`)
	b.checkKeyboard("allocation")
	b.shot("allocation")

	b.open("#/allocations", "Allocations")
	b.wait("two allocations listed", `document.querySelectorAll('.vlist .row').length === 2`)
	b.do("filter by status", chromedp.SetValue(".filters select", "failed"), chromedp.Evaluate[chromedp.Void](`document.querySelector('.filters select').dispatchEvent(new Event('change'))`))
	b.wait("no failed allocation", `document.querySelectorAll('.vlist .row').length === 0 && document.querySelector('.vlist + p').textContent.startsWith('0 rows')`)
	b.checkKeyboard("allocations")
	b.shot("allocations")

	// Nodes, a node, drain on and off from the page.
	b.open("#/nodes", "Nodes")
	b.wait("two nodes listed", `document.querySelectorAll('.vlist .row').length === 2`)
	b.checkKeyboard("nodes")
	b.shot("nodes")
	b.do("open a node with the keyboard", chromedp.Focus(".vlist"), chromedp.KeyEvent("\r"))
	b.wait("the node page", `location.hash.startsWith('#/node/') && document.getElementById('main').innerText.includes('Attributes')`)
	b.wait("its attributes", `document.getElementById('main').innerText.includes('cpu.cores')`)
	b.checkKeyboard("node")
	b.shot("node")
	b.do("drain", chromedp.Click(`button[aria-pressed]`))
	b.wait("draining", `document.querySelector('button[aria-pressed]').getAttribute('aria-pressed') === 'true'`)
	b.do("stop draining", chromedp.Click(`button[aria-pressed]`))
	b.wait("not draining", `document.querySelector('button[aria-pressed]').getAttribute('aria-pressed') === 'false'`)

	b.open("#/scheduler", "Scheduler")
	b.wait("the architecture and a few samples", `document.getElementById('main').innerText.includes('monolithic') && document.querySelector('canvas').getAttribute('aria-label').includes(':')`)
	b.checkKeyboard("scheduler")
	b.shot("scheduler")

	b.open("#/peers", "Peers")
	b.checkKeyboard("peers")
	b.shot("peers")

	// Scale, then stop the job from its page.
	b.open("#/job/ui-test", "Job")
	b.wait("the job's status", `document.getElementById('main').innerText.includes('copies of version')`)
	b.do("scale to 1", chromedp.SetValue(`main input[type=number]`, "1"), chromedp.Click(`main form button[type=submit]`))
	b.wait("one copy", `document.getElementById('main').innerText.includes('1 of 1 copies of version 1 running')`)
	b.do("stop", chromedp.Click(`button.danger`))
	b.wait("the stop to ask again", `document.querySelector('button.danger').textContent === 'Confirm stop'`)
	b.do("confirm the stop", chromedp.Click(`button.danger`))
	b.wait("the job dead", `document.getElementById('main').innerText.includes('Stopped: done')`)
	testutil.WaitFor(t, 60*time.Second, 100*time.Millisecond, "the job stopped", func() (bool, string) {
		j, _, err := c.Job(context.Background(), "ui-test", nil)
		if err != nil {
			return false, err.Error()
		}
		return j.Stop && j.Status == "dead", string(j.Status)
	})
	b.wait("the page to show it", `document.querySelector('.kv .badge')?.textContent === 'dead'`)
	b.shot("job-stopped")

	// The overview's recent events came from the stream.
	b.open("#/overview", "Overview")
	b.do("stop the job's last copy", chromedp.Evaluate[chromedp.Void](`fetch('/v1/job/ui-test', {method: 'DELETE', headers: {}}).then(() => true)`))
	if _, err := c.RegisterJob(context.Background(), &api.Job{Name: "events-probe", Count: 1, Driver: "mock", Resources: api.Resources{CPU: 10, MemoryMB: 8}}); err != nil {
		t.Fatal(err)
	}
	b.wait("a recent event", `document.querySelector('ol.events')?.innerText.includes('JobRegistered')`)
	if s := eval[string](b, `document.querySelector('ol.events').innerText`); !strings.Contains(s, "events-probe") {
		t.Fatalf("recent events %q lack the job registered", s)
	}
	b.shot("overview-events")
}
