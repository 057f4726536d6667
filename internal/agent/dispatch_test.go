package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func TestJobEnvAndPayload(t *testing.T) {
	plain := &structs.Job{Env: map[string]string{"A": "1"}}
	if env := jobEnv(plain); len(env) != 1 || env["A"] != "1" {
		t.Fatalf("plain job env %v", env)
	}
	child := &structs.Job{ParentID: "resize", Payload: []byte("image"),
		Meta: map[string]string{"size": "s", "cost.center": "7"}, Env: map[string]string{"GANTRY_META_SIZE": "mine"}}
	env := jobEnv(child)
	want := map[string]string{"GANTRY_META_SIZE": "mine", "GANTRY_META_COST_CENTER": "7",
		"GANTRY_PARENT_JOB": "resize", "GANTRY_PAYLOAD": PayloadFile}
	for k, v := range want {
		if env[k] != v {
			t.Fatalf("env %v, want %v", env, want)
		}
	}
	dir := t.TempDir()
	if err := writePayload(dir, child); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, PayloadFile)); err != nil || string(b) != "image" {
		t.Fatalf("payload %q %v", b, err)
	}
	if err := writePayload(dir, plain); err != nil {
		t.Fatal(err)
	}
}
