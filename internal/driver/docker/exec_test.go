package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/driver"
)

// TestExecSignalAndAgentPorts: docker exec runs commands in the task's
// container (stdin, stdout and stderr apart, exit code; a terminal merges
// them), signals reach the container's process, and the agent's port
// mappings (TaskConfig.Ports, from the scheduler) are published.
func TestExecSignalAndAgentPorts(t *testing.T) {
	d := newDriver(t)
	port := freePort(t)
	cfg := taskConfig(t, `trap 'echo got HUP' HUP; echo ready; mkdir -p /www; echo hi > /www/index.html; httpd -p 8080 -h /www; while true; do sleep 0.05; done`,
		func(c *driver.TaskConfig) {
			c.Env = map[string]string{"GREETING": "from env"}
			c.Ports = []driver.PortMapping{{Label: "http", HostIP: "127.0.0.1", HostPort: port, ContainerPort: 8080}}
		})
	task, err := d.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = task.Stop(0) }()
	eventually(t, "ready", func() bool { return readLog(t, cfg.AllocDir, driver.StdoutFile) == "ready\n" })

	ex := task.(driver.Execer)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := ex.Exec(ctx, driver.ExecRequest{
		Cmd:   []string{"sh", "-c", `read x; echo "$x $GREETING"; echo oops >&2; exit 4`},
		Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errb,
	})
	if err != nil || code != 4 || out.String() != "hello from env\n" || errb.String() != "oops\n" {
		t.Fatalf("exec = %d %v, stdout %q stderr %q", code, err, out.String(), errb.String())
	}
	out.Reset()
	code, err = ex.Exec(ctx, driver.ExecRequest{Cmd: []string{"sh", "-c", "test -t 1 && echo tty >&2"}, TTY: true,
		Size: driver.TermSize{Width: 80, Height: 24}, Stdout: &out, Stderr: io.Discard})
	if err != nil || code != 0 || !strings.Contains(out.String(), "tty") {
		t.Fatalf("exec on a terminal = %d %v %q", code, err, out.String())
	}

	if err := task.(driver.Signaler).Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the task trapped SIGHUP", func() bool {
		return strings.Contains(readLog(t, cfg.AllocDir, driver.StdoutFile), "got HUP")
	})

	eventually(t, "the published port answers", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == "hi\n"
	})

	if err := task.Stop(0); err != nil {
		t.Fatal(err)
	}
	waitExit(t, task)
	if _, err := ex.Exec(ctx, driver.ExecRequest{Cmd: []string{"true"}, Stdout: io.Discard, Stderr: io.Discard}); err == nil {
		t.Fatal("exec in a stopped task succeeded")
	}
}
