package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-project/gantry/internal/durable"
)

// Store keeps a node's State across restarts. The Cluster calls it from
// its owner goroutine only: Load once before the node starts, then Save
// one call at a time, in the order the states were produced, and sends
// nothing that depends on a state before its Save has returned. So a Store
// needs no lock and does no ordering of its own; it must only not return
// from Save before st is durable.
type Store interface {
	// Load returns the saved state; ok is false when there is none.
	Load() (st State, ok bool, err error)
	// Save replaces the saved state with st, durably.
	Save(st State) error
}

// FileStore keeps the State as nodes.json in a directory, replaced
// atomically and durably (internal/durable: temp file, fsync, rename,
// fsync of the directory), so a crash leaves the old or the new view,
// never half of one.
type FileStore struct {
	path string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns the store of dir/nodes.json; dir must exist.
func NewFileStore(dir string) *FileStore {
	return &FileStore{path: filepath.Join(dir, "nodes.json")}
}

// Path returns the file's path.
func (f *FileStore) Path() string { return f.path }

// Load implements Store.
func (f *FileStore) Load() (State, bool, error) {
	var st State
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load cluster state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("load cluster state %s: %w", f.path, err)
	}
	return st, true, nil
}

// Save implements Store.
func (f *FileStore) Save(st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster state: %w", err)
	}
	if err := durable.WriteFile(f.path, b, 0o644); err != nil {
		return fmt.Errorf("save cluster state: %w", err)
	}
	return nil
}
