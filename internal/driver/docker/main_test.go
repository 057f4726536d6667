package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/docker/dockertest"
	"github.com/gantry-project/gantry/internal/structs"
)

// testImage is the busybox image built once for this test binary; skip
// says why the docker tests cannot run when it is empty.
var testImage, skip string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			testImage, err = dockertest.Build(context.Background(), cli)
		}
	}
	if err != nil {
		skip = fmt.Sprintf("docker tests skipped: %v", err)
	}
	code := m.Run()
	if testImage != "" {
		_ = dockertest.Remove(cli, testImage)
	}
	if cli != nil {
		_ = cli.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

func needDocker(t testing.TB) {
	t.Helper()
	if testImage == "" {
		t.Skip(skip)
	}
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newDriver returns a driver for a node of its own; the containers it
// leaves are removed when the test ends.
func newDriver(t testing.TB, mod ...func(*Options)) *Driver {
	t.Helper()
	needDocker(t)
	o := Options{NodeID: "test-" + randomID(), LogCursorInterval: 20 * time.Millisecond, StopWait: time.Minute}
	for _, f := range mod {
		f(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := d.Cleanup(context.Background(), func(string) bool { return false }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = d.Close()
	})
	return d
}

// taskConfig is a task of the test image running script in sh.
func taskConfig(t testing.TB, script string, mod ...func(*driver.TaskConfig)) *driver.TaskConfig {
	t.Helper()
	cfg := &driver.TaskConfig{AllocID: "alloc-" + randomID(), JobID: "job", JobType: structs.JobTypeBatch,
		Config:    map[string]any{"image": testImage, "command": "sh", "args": []any{"-c", script}},
		Resources: structs.Resources{CPU: 100, MemoryMB: 64}, AllocDir: t.TempDir()}
	for _, f := range mod {
		f(cfg)
	}
	return cfg
}

// waitExit waits (generously: the machine is shared) for the task to end.
func waitExit(t testing.TB, task driver.Task) driver.ExitResult {
	t.Helper()
	select {
	case <-task.Exited():
		return task.Result()
	case <-time.After(2 * time.Minute):
		t.Fatal("task did not exit")
	}
	return driver.ExitResult{}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
