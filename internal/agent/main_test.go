package agent

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gantry-project/gantry/internal/driver/shim"
)

// The test binary doubles as the exec driver's task shim.
func TestMain(m *testing.M) {
	if os.Getenv(shim.EnvMarker) == "1" {
		os.Exit(shim.Main())
	}
	goleak.VerifyTestMain(m)
}
