package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestStateStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := &allocRecord{Alloc: &structs.Allocation{ID: "a1", Job: &structs.Job{ID: "j"}}, Phase: phaseRunning,
		TaskState: structs.TaskState{Events: []structs.TaskEvent{{Type: EventStarted}}}}
	if err := s.put(rec); err != nil {
		t.Fatal(err)
	}
	rec.TaskState.Events[0].Type = "mutated" // the store keeps its own copy
	s2, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := s2.get("a1")
	if got == nil || got.Phase != phaseRunning || got.TaskState.Events[0].Type != EventStarted {
		t.Fatalf("reloaded %+v", got)
	}
	if err := s2.delete("a1"); err != nil || s2.get("a1") != nil {
		t.Fatalf("delete: %v", err)
	}
}

func TestStateStoreCorrupt(t *testing.T) {
	cases := map[string]string{
		"not json":   "{",
		"id differs": `{"alloc":{"id":"b"}}`,
		"no alloc":   `{}`,
	}
	for name, content := range cases {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, stateDir), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, stateDir, "a.json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := openState(dir); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
	s, _ := openState(t.TempDir())
	if err := s.put(&allocRecord{Alloc: &structs.Allocation{ID: "../x"}}); err == nil {
		t.Error("stored a record whose ID escapes the state directory")
	}
}

// BenchmarkStatePut is the cost of saving one transition with 100
// allocations on the node.
func BenchmarkStatePut(b *testing.B) {
	s, err := openState(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	job := &structs.Job{ID: "j", Driver: "mock", Config: map[string]any{"run_for": "1h"}}
	for i := 0; i < 100; i++ {
		_ = s.put(&allocRecord{Alloc: &structs.Allocation{ID: fmt.Sprint(i), Job: job}, Phase: phaseRunning})
	}
	rec := &allocRecord{Alloc: &structs.Allocation{ID: "0", Job: job}, Phase: phaseRunning}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.put(rec); err != nil {
			b.Fatal(err)
		}
	}
}
