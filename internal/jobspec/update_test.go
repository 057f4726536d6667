package jobspec

import (
	"strings"
	"testing"
	"time"
)

const updateBase = "name: web\ncount: 6\nresources: {cpu: 100, memory_mb: 64}\ndriver: mock\n"

// TestParseUpdate: the update and migrate blocks take Nomad's defaults,
// and every broken rule names its field.
func TestParseUpdate(t *testing.T) {
	j, err := ParseAndValidate([]byte(updateBase + "update:\n  max_parallel: 2\n  canary: 1\n  auto_revert: true\nmigrate: {max_parallel: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := j.Update
	if u == nil || u.MaxParallel != 2 || u.Canary != 1 || !u.AutoRevert || u.MinHealthyTime.D() != 10*time.Second ||
		u.HealthyDeadline.D() != 5*time.Minute || u.ProgressDeadline.D() != 10*time.Minute || u.Stagger.D() != 30*time.Second {
		t.Fatalf("update %+v", u)
	}
	if m := j.Migrate; m == nil || m.MaxParallel != 3 || m.MinHealthyTime.D() != 10*time.Second {
		t.Fatalf("migrate %+v", m)
	}
	if !j.Rolls() {
		t.Fatal("a job with max_parallel 2 does not roll")
	}
	if j, err := ParseAndValidate([]byte(updateBase + "update: {}\n")); err != nil || j.Update.MaxParallel != 1 {
		t.Fatalf("empty update block: %v %+v", err, j)
	}
	for doc, want := range map[string]string{
		"update: {max_parallel: -1}\n":                                 "update.max_parallel: must be between 0 and 100000",
		"update: {canary: -2}\n":                                       "update.canary: must be between 0 and 100000",
		"update: {max_parallel: 1, auto_promote: true}\n":              "update.auto_promote: needs canary > 0",
		"update: {max_parallel: 0, canary: 1, healthy_deadline: 1m}\n": "update.canary: needs max_parallel > 0",
		"update: {min_healthy_time: 2m, healthy_deadline: 1m}\n":       "update.min_healthy_time: must be less than healthy_deadline",
		"update: {healthy_deadline: 10m, progress_deadline: 1m}\n":     "update.progress_deadline: must be 0 (none) or at least healthy_deadline",
		"update: {stagger: -1s}\n":                                     "update.stagger: must be >= 0",
		"update: {max_parallel: two}\n":                                "update.max_parallel: expected an integer",
		"update: {max_paralle: 2}\n":                                   "did you mean \"max_parallel\"",
		"type: batch\nupdate: {max_parallel: 1}\n":                     "update: only service jobs roll",
		"migrate: {max_parallel: -1}\n":                                "migrate.max_parallel: must be between 1 and 100000",
		"type: system\nmigrate: {max_parallel: 1}\n":                   "migrate: system and sysbatch copies do not move",
	} {
		_, err := ParseAndValidate([]byte(strings.Replace(updateBase, "count: 6\n", "count: 6\n"+doc, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", doc, err, want)
		}
	}
}
