// Package redissuite runs Redis's own Tcl test suite (Redis 7.0.15, kept
// beside the repository in ../shared/redis-tests) in external mode against
// a real `gantry peer` process: the units listed in units.txt, which pass
// fully. See docs/kv.md, "Redis's test suite".
package redissuite

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/testutil"
)

// gantryBin is the binary under test, built once in TestMain.
var gantryBin string

func TestMain(m *testing.M) { os.Exit(testutil.MainWithGantry(m, "redissuite", &gantryBin)) }

// suiteDir is where the suite lives: ../shared/redis-tests from the
// repository root, here and in CI; REDIS_TESTS_DIR overrides it.
func suiteDir() string {
	if d := os.Getenv("REDIS_TESTS_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "redis-tests")
}

// readUnits reads a list of units (units.txt): one unit a line, #
// comments.
func readUnits(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var units []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			units = append(units, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return units
}

// unitResult is one unit's line of run-units.sh's summary.
type unitResult struct {
	unit                       string
	passed, failed, exceptions int
	ignored, skipped           int
	problems                   []string // its [err] and [exception] lines
}

var unitLine = regexp.MustCompile(`^(\S+)\s+passed=(\d+)\s+failed=(\d+)\s+exceptions=(\d+)\s+ignored=(\d+)\s+skipped=(\d+)`)

// parseSummary reads the per-unit lines of run-units.sh's output.
func parseSummary(out string) []unitResult {
	var res []unitResult
	for _, line := range strings.Split(out, "\n") {
		if m := unitLine.FindStringSubmatch(line); m != nil {
			n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
			res = append(res, unitResult{unit: m[1], passed: n(2), failed: n(3), exceptions: n(4), ignored: n(5), skipped: n(6)})
			continue
		}
		trimmed := strings.TrimSpace(line)
		if len(res) > 0 && (strings.HasPrefix(trimmed, "[err]") || strings.HasPrefix(trimmed, "[exception]")) {
			res[len(res)-1].problems = append(res[len(res)-1].problems, trimmed)
		}
	}
	return res
}

func TestParseSummary(t *testing.T) {
	out := `note: DEBUG is disabled
unit/type/string             passed=67   failed=3   exceptions=1  ignored=0   skipped=2     11s rc=1
    [err]: SETRANGE against integer-encoded key in tests/unit/type/string.tcl
    [exception]: Executing test client: ERR unknown command 'LCS'
  restored config x=1
unit/type/hash               passed=69   failed=0   exceptions=0  ignored=1   skipped=0      7s rc=0
SUMMARY 127.0.0.1:17411 units=2 passed=136 failed=3 exceptions=1 ignored=1 skipped=2 time=27s logs=/tmp/x
`
	got := parseSummary(out)
	if len(got) != 2 {
		t.Fatalf("got %d units, want 2: %+v", len(got), got)
	}
	if u := got[0]; u.unit != "unit/type/string" || u.passed != 67 || u.failed != 3 || u.exceptions != 1 || u.skipped != 2 || len(u.problems) != 2 {
		t.Errorf("first unit: %+v", u)
	}
	if u := got[1]; u.unit != "unit/type/hash" || u.passed != 69 || u.failed != 0 || u.ignored != 1 || len(u.problems) != 0 {
		t.Errorf("second unit: %+v", u)
	}
}

// TestRedisSuite starts a standalone peer and runs the units of units.txt
// against it: every one must end with 0 failed and 0 exceptions. DEBUG
// is off, Redis 7's default: the suite skips the tests tagged
// needs:debug.
func TestRedisSuite(t *testing.T) {
	runSuite(t, "units.txt", false)
}

// TestRedisSuiteDebug runs the units of units-debug.txt against a peer
// started with --enable-debug-command yes, so that their tests tagged
// needs:debug (DEBUG SLEEP, SET-ACTIVE-EXPIRE, LOADAOF...) run too.
func TestRedisSuiteDebug(t *testing.T) {
	runSuite(t, "units-debug.txt", true)
}

// runSuite starts a standalone peer (allowing DEBUG when debug is set)
// and runs the units of the file list against it: every one must end
// with 0 failed and 0 exceptions.
func runSuite(t *testing.T, list string, debug bool) {
	dir := suiteDir()
	if _, err := os.Stat(filepath.Join(dir, "run-units.sh")); err != nil {
		t.Skipf("Redis's test suite not found at %s (REDIS_TESTS_DIR): %v", dir, err)
	}
	if _, err := exec.LookPath("tclsh"); err != nil {
		t.Skip("tclsh not installed (Debian package tcl): Redis's test suite is Tcl")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (Debian package redis-tools): run-units.sh uses it")
	}
	units := readUnits(t, list)
	if len(units) == 0 {
		t.Skipf("%s lists no unit", list)
	}
	port := testutil.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"peer", "--port", strconv.Itoa(port), "--data-dir", t.TempDir()}
	if debug {
		args = append(args, "--enable-debug-command", "yes")
	}
	testutil.StartProc(t, gantryBin, "peer", args...)
	testutil.WaitFor(t, 20*time.Second, 50*time.Millisecond, "the peer answers", func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	// The suite calls FUNCTION FLUSH before every unit: without it
	// nothing past its set-up runs.
	if out, _ := exec.Command("redis-cli", "-p", strconv.Itoa(port), "command", "info", "function").Output(); !strings.Contains(string(out), "function") {
		t.Skip("this peer has no FUNCTION command yet: the suite's set-up calls FUNCTION FLUSH before every unit")
	}
	// run-units.sh skips the tests tagged needs:debug when DEBUG is
	// refused: the pass with DEBUG must not pass by skipping them
	if debug {
		if out, err := exec.Command("redis-cli", "-p", strconv.Itoa(port), "debug", "help").CombinedOutput(); err != nil || !strings.Contains(string(out), "LOADAOF") {
			t.Fatalf("the peer started with --enable-debug-command yes refuses DEBUG: %v %s", err, out)
		}
	}
	logs := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// no --singledb: a standalone peer has Redis's 16 databases and the
	// suite runs in database 9; --ignore-encoding: gantry's collections
	// have their own layouts (docs/kv.md, "Redis's test suite")
	args = append([]string{"127.0.0.1", strconv.Itoa(port)}, units...)
	args = append(args, "--", "--ignore-encoding")
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "run-units.sh"), args...)
	// TIMEOUT is runtest's limit on a time without progress: geo's fuzz
	// tests run long single tests, over 120 s on a loaded machine
	cmd.Env = append(os.Environ(), "LOGDIR="+logs, "TIMEOUT=600", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	results := parseSummary(string(out))
	for _, r := range results {
		t.Logf("%-28s passed=%d failed=%d exceptions=%d ignored=%d skipped=%d", r.unit, r.passed, r.failed, r.exceptions, r.ignored, r.skipped)
		if r.failed > 0 || r.exceptions > 0 {
			t.Errorf("%s: %d failed, %d exceptions:\n  %s", r.unit, r.failed, r.exceptions, strings.Join(r.problems, "\n  "))
		}
	}
	if len(results) != len(units) {
		t.Errorf("run-units.sh reported %d of %d units", len(results), len(units))
	}
	if err != nil && !t.Failed() {
		t.Errorf("run-units.sh: %v", err)
	}
	if t.Failed() {
		t.Logf("run-units.sh output:\n%s", testutil.Tail(string(out), 8000))
		logUnitErrors(t, logs)
	}
}

// logUnitErrors logs the assertion messages of failed tests from the
// per-unit logs.
func logUnitErrors(t *testing.T, logs string) {
	entries, _ := os.ReadDir(logs)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(logs, e.Name()))
		if err != nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "err]") || strings.Contains(l, "exception]") || strings.HasPrefix(l, "Expected") ||
				strings.Contains(l, "TIMEOUT") || strings.Contains(l, "timed out") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			t.Log(fmt.Sprintf("%s:\n", e.Name()) + testutil.Tail(strings.Join(lines, "\n"), 4000))
		}
	}
}
