package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/testutil"
)

// buildImage builds the static gantry binary and an image FROM scratch
// holding it, tagged image; the image is removed when the test ends.
func buildImage(t *testing.T, image string) string {
	t.Helper()
	dir := t.TempDir()
	// The same flags as test/ha's build, so the two share the build cache.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "gantry"), "../../cmd/gantry")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building static gantry: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY gantry /gantry\nENTRYPOINT [\"/gantry\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := docker(context.Background(), "build", "-q", "-t", image, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = docker(context.Background(), "rmi", "-f", image) })
	return image
}

// createNetwork creates a private /24 network (172.30.X.0/24, X drawn
// again while it clashes with the machine's networks) and returns its name
// and the subnet's first three octets. The network is removed when the test
// ends; cleanups run last-in first-out, so containers whose cleanup is
// registered later are gone by then.
func createNetwork(t *testing.T, name string) (string, string) {
	t.Helper()
	for try := 0; ; try++ {
		subnet := fmt.Sprintf("172.30.%d", 100+rand.IntN(150))
		_, err := docker(context.Background(), "network", "create", "--subnet", subnet+".0/24", name)
		if err == nil {
			t.Cleanup(func() { _, _ = docker(context.Background(), "network", "rm", name) })
			return name, subnet
		}
		if try == 5 {
			t.Fatalf("creating network %s: %v", name, err)
		}
	}
}

// removeContainers removes the named containers when the test ends,
// logging the tail of each one's output first if the test failed.
func removeContainers(t *testing.T, names []string) {
	t.Cleanup(func() {
		for _, name := range names {
			if t.Failed() {
				logs, _ := docker(context.Background(), "logs", "--tail", "80", name)
				t.Logf("--- logs of %s ---\n%s", name, logs)
			}
			_, _ = docker(context.Background(), "rm", "-f", name)
		}
	})
}

// waitFor polls cond every 100 ms until it holds, failing the test after
// limit with cond's last explanation.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.WaitFor(t, limit, 100*time.Millisecond, what, cond)
}
