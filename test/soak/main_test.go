// Package soak runs a built `gantry peer` for about a minute under mixed
// load with a tight maxmemory, slow clients, clients that never read their
// replies and a full disk injected and cleared, then restarts it and checks
// that every acknowledged write survived and that the process's RSS stayed
// within a stated bound (docs/kv.md, "Soak test").
package soak

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/testutil"
)

// gantryBin is the binary under test, built once in TestMain.
var gantryBin string

func TestMain(m *testing.M) {
	code := testutil.MainWithGantry(m, "soak", &gantryBin)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
