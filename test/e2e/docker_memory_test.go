package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/testutil"
)

// TestDockerAgentMemory measures the docker agent's resident memory idle
// and with GANTRY_HEALTH_COPIES (default 50) copies of
// examples/two-tier/web.yaml running, each a container with an HTTP check
// every second. It runs only when asked, as a measurement:
//
//	GANTRY_AGENT_MEM=1 go test -count=1 -run TestDockerAgentMemory -v ./test/e2e/
//
// GANTRY_AGENT_MEM may instead list agent binaries (comma-separated) to
// compare, each run GANTRY_AGENT_MEM_ROUNDS times (default 1), taking turns,
// so that they share the machine's load; the servers are the tree's
// binary. Copy the binaries with cp before comparing them: how many of a
// binary's pages the kernel maps (the file-backed part of RSS) depends on
// how the file sits in the page cache, and a freshly linked one may hold
// large folios that are mapped whole (docs/agent.md, "Memory,
// start-to-healthy and DNS figures"). GANTRY_AGENT_MEM_PROFILES=DIR saves
// each agent's heap profile (idle and with the copies) there, for go tool
// pprof.
func TestDockerAgentMemory(t *testing.T) {
	bins := os.Getenv("GANTRY_AGENT_MEM")
	if bins == "" {
		t.Skip("a measurement: GANTRY_AGENT_MEM=1 (or a list of agent binaries) runs it")
	}
	d := newDockerEnv(t)
	copies := 50
	if n, err := strconv.Atoi(os.Getenv("GANTRY_HEALTH_COPIES")); err == nil && n > 0 {
		copies = n
	}
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("GANTRY_AGENT_MEM_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	agents := []string{gantryBin}
	if bins != "1" {
		agents = strings.Split(bins, ",")
	}
	profiles := os.Getenv("GANTRY_AGENT_MEM_PROFILES")
	type result struct {
		bin                 string
		idle, busy, busyHWM int // KiB
	}
	var results []result
	for r := range rounds {
		for i, bin := range agents {
			name := fmt.Sprintf("round%d-agent%d", r+1, i)
			t.Run(name, func(t *testing.T) {
				res := result{bin: bin}
				res.idle, res.busy, res.busyHWM = measureAgentMemory(t, d, bin, copies, profiles, name)
				results = append(results, res)
			})
		}
	}
	for _, res := range results {
		t.Logf("agent %s: idle VmRSS %.1f MiB; with %d containers VmRSS %.1f MiB, VmHWM %.1f MiB",
			res.bin, float64(res.idle)/1024, copies, float64(res.busy)/1024, float64(res.busyHWM)/1024)
	}
}

// measureAgentMemory runs a server and one agent (binary bin), and returns
// the agent's VmRSS idle, and its VmRSS and VmHWM once copies web copies
// are healthy, each after a settling time.
func measureAgentMemory(t *testing.T, d dockerEnv, bin string, copies int, profiles, name string) (idle, busy, busyHWM int) {
	c := newCluster(t)
	c.startServer()
	pprofAddr := testutil.FreeAddr(t)
	agent := testutil.StartProc(t, bin, "agent", "agent",
		"--servers", fmt.Sprintf("127.0.0.1:%d", c.httpPort),
		"--data-dir", filepath.Join(c.dir, "agent"),
		"--name", "docker-1", "--cpu", "8000", "--memory", "8192",
		"--http-addr", "127.0.0.1:0",
		"--dns-addr", testutil.FreeAddr(t),
		"--pprof", pprofAddr)
	c.waitReadyNodes(1)
	const settle = 30 * time.Second
	sample := func(what string) int {
		cpu0 := procCPU(agent.Cmd.Process.Pid)
		time.Sleep(settle)
		cpu := procCPU(agent.Cmd.Process.Pid) - cpu0
		m, err := procMemKB(agent.Cmd.Process.Pid, "VmRSS", "VmHWM", "RssAnon", "RssFile")
		if err != nil {
			t.Fatal(err)
		}
		stats := heapStats(t, pprofAddr, profiles, name+"-"+what)
		t.Logf("%s: VmRSS %.1f MiB (anonymous %.1f, file %.1f), VmHWM %.1f MiB; %s; CPU %.2fs in %s (load %s)", what,
			float64(m["VmRSS"])/1024, float64(m["RssAnon"])/1024, float64(m["RssFile"])/1024,
			float64(m["VmHWM"])/1024, stats, cpu.Seconds(), settle, loadAvg())
		busyHWM = m["VmHWM"]
		return m["VmRSS"]
	}
	idle = sample("idle")

	c.runExample(d.image, "two-tier/web.yaml", copies)
	firstHealthy := map[string]time.Time{}
	c.waitFor(600*time.Second, fmt.Sprintf("%d healthy web copies", copies), func() (bool, string) {
		web, why := healthyInstances(c.client, "web")
		now := time.Now()
		for _, in := range web {
			if _, ok := firstHealthy[in.AllocID]; !ok {
				firstHealthy[in.AllocID] = now
			}
		}
		return len(web) == copies, why
	})
	logStartToHealthy(t, c.liveAllocs("web"), firstHealthy)
	busy = sample(fmt.Sprintf("%d containers", copies))

	if out, err := c.gantry("job", "stop", "web"); err != nil {
		t.Fatalf("job stop: %v\n%s", err, out)
	}
	c.waitFor(180*time.Second, "no web instances left", func() (bool, string) {
		ins, _, err := c.client.Service(context.Background(), "web", &api.ServiceQuery{All: true}, nil)
		return err == nil && len(ins) == 0, fmt.Sprint(len(ins), err)
	})
	waitNoContainers(c, d, 180*time.Second)
	return idle, busy, busyHWM
}

// heapStats reads the agent's heap profile (saving it under dir when dir
// is set) and returns the runtime's memory figures it ends with.
func heapStats(t *testing.T, addr, dir, name string) string {
	get := func(url string) []byte {
		resp, err := http.Get(url)
		if err != nil {
			t.Logf("pprof: %v", err)
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return b
	}
	if dir != "" {
		if b := get("http://" + addr + "/debug/pprof/heap"); b != nil {
			_ = os.WriteFile(filepath.Join(dir, name+".heap.pprof"), b, 0o644)
		}
	}
	b := get("http://" + addr + "/debug/pprof/heap?debug=1")
	want := []string{"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "Stack", "Sys", "NumGC"}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if ok {
			v, _, _ = strings.Cut(v, " / ") // Stack = in use / from the OS
			got[k] = v
		}
	}
	mib := func(k string) string {
		n, err := strconv.ParseFloat(got[k], 64)
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f", n/(1<<20))
	}
	var parts []string
	for _, k := range want[:len(want)-1] {
		parts = append(parts, k+" "+mib(k))
	}
	goroutines := bytes.Count(get("http://"+addr+"/debug/pprof/goroutine?debug=2"), []byte("\ngoroutine "))
	return fmt.Sprintf("MiB: %s; NumGC %s, goroutines %d", strings.Join(parts, ", "), got["NumGC"], goroutines+1)
}

// procCPU is the user and system CPU time a process has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (in parentheses, which may hold spaces):
	// utime and stime are the 14th and 15th fields, in clock ticks (100/s).
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
