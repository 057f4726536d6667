//go:build !unix

package aof

import (
	"os"
	"path/filepath"
)

// lockDir creates dir/LOCK; without flock there is no exclusion.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
}
