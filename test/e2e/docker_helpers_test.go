package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver/docker/dockertest"
)

// dockerEnv is what the Docker tests share: a client of the local daemon
// and the busybox test image (built for the test, removed after it). It
// skips the test, saying why, where Docker or a static busybox is missing.
type dockerEnv struct {
	cli   *client.Client
	image string
}

func newDockerEnv(t *testing.T) dockerEnv {
	t.Helper()
	cli := dockertest.Client(t)
	return dockerEnv{cli: cli, image: dockertest.Image(t, cli)}
}

// runExample runs examples/<example> with the test image in place of
// gantry-busybox:local and, when count > 0, that many copies in place of
// the file's "count: 3"; it returns the file it submitted.
func (c *cluster) runExample(image, example string, count int) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", example))
	if err != nil {
		c.t.Fatal(err)
	}
	spec := strings.ReplaceAll(string(b), "gantry-busybox:local", image)
	if count > 0 {
		spec = strings.Replace(spec, "count: 3\n", fmt.Sprintf("count: %d\n", count), 1)
	}
	file := filepath.Join(c.dir, filepath.Base(example))
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if out, err := c.gantry("job", "run", "--detach", file); err != nil {
		c.t.Fatalf("job run %s: %v\n%s", example, err, out)
	}
	return file
}

// waitNoContainers waits until no container of image is left (stopped
// jobs' containers go a little after the catalog drops them).
func waitNoContainers(c *cluster, d dockerEnv, limit time.Duration) {
	c.t.Helper()
	c.waitFor(limit, "the jobs' containers removed", func() (bool, string) {
		list, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
			Filters: make(client.Filters).Add("ancestor", d.image)})
		return err == nil && len(list.Items) == 0, fmt.Sprint(len(list.Items), " containers ", err)
	})
}

// procMemKB returns fields of /proc/<pid>/status in KiB (VmRSS, VmHWM, ...).
func procMemKB(pid int, fields ...string) (map[string]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, f := range fields {
			if k == f {
				if kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err == nil {
					out[f] = kb
				}
			}
		}
	}
	return out, nil
}

// logRSS logs a process's resident memory, with what it is measured
// under and the load.
func logRSS(t *testing.T, p *proc, what string) {
	t.Helper()
	m, err := procMemKB(p.Cmd.Process.Pid, "VmRSS", "VmHWM")
	if err != nil {
		t.Logf("%s: %v", what, err)
		return
	}
	t.Logf("%s: VmRSS %.1f MiB, VmHWM %.1f MiB (load %s)", what, float64(m["VmRSS"])/1024, float64(m["VmHWM"])/1024, loadAvg())
}
