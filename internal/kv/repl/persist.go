package repl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/durable"
	"github.com/gantry-project/gantry/internal/kv/command"
)

// replStateName is the file in the data directory that keeps the
// replication ID and offset across a clean restart, so a restarted
// replica (or a primary whose replicas were in sync) continues with a
// partial resync instead of a full one, as Redis does with the
// replication fields of the RDB it saves at shutdown.
const replStateName = "repl-state"

// SaveState runs when the server closes, after its append-only log in dir
// is flushed and fsynced (logged: the log holds exactly the writes below
// the offset). Without such a log (or before any replica) there is
// nothing to continue from, and an old file is removed.
func (r *State) SaveState(dir string, logged bool) error {
	path := filepath.Join(dir, replStateName)
	if !logged || !r.active.Load() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	r.mu.Lock()
	body := "gantry-repl 1\n" + r.replid + " " + strconv.FormatInt(r.bl.end, 10) + "\n"
	r.mu.Unlock()
	return durable.WriteFile(path, []byte(body), 0o644)
}

// LoadState reads and removes the file of dir (it describes the data only
// until the first write after the restart) and resumes the replication
// ID and offset it names; the server calls it after loading the log of
// dir, before serving.
func (r *State) LoadState(dir string) error {
	path := filepath.Join(dir, replStateName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	id, off, err := parseReplState(string(data))
	if err != nil {
		r.cfg.Logger.Printf("%s: %v (ignored: replicas will full-sync)", path, err)
		return nil
	}
	r.mu.Lock()
	r.replid = id
	r.bl.reset(off)
	r.mu.Unlock()
	r.active.Store(true)
	r.cfg.Logger.Printf("replication: resumed id %s at offset %d", id, off)
	return nil
}

func parseReplState(body string) (string, int64, error) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "gantry-repl 1" {
		return "", 0, errors.New("unknown format")
	}
	f := strings.Fields(lines[1])
	if len(f) != 2 || !validReplID(f[0]) {
		return "", 0, fmt.Errorf("bad line %q", command.Trunc([]byte(lines[1]), 100))
	}
	off, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || off < 0 {
		return "", 0, fmt.Errorf("bad offset %q", command.Trunc([]byte(f[1]), 30))
	}
	return f[0], off, nil
}
