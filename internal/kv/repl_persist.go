package kv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/durable"
)

// replStateName is the file in the data directory that keeps the
// replication ID and offset across a clean restart, so a restarted
// replica (or a primary whose replicas were in sync) continues with a
// partial resync instead of a full one, as Redis does with the
// replication fields of the RDB it saves at shutdown.
const replStateName = "repl-state"

// saveReplState runs in Close after the log is flushed and fsynced: the
// log then holds exactly the writes below the offset. Without an
// append-only log (or before any replica) there is nothing to continue
// from, and an old file is removed.
func (s *Server) saveReplState() error {
	path := filepath.Join(s.cfg.DataDir, replStateName)
	if s.aof == nil || !s.aof.enabled() || !s.repl.active.Load() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	r := s.repl
	r.mu.Lock()
	body := "gantry-repl 1\n" + r.replid + " " + strconv.FormatInt(r.bl.end, 10) + "\n"
	r.mu.Unlock()
	return durable.WriteFile(path, []byte(body), 0o644)
}

// loadReplState reads and removes the file (it describes the data only
// until the first write after the restart) and resumes the replication
// ID and offset it names.
func (s *Server) loadReplState() error {
	path := filepath.Join(s.cfg.DataDir, replStateName)
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
	if err := durable.SyncDir(s.cfg.DataDir); err != nil {
		return err
	}
	id, off, err := parseReplState(string(data))
	if err != nil {
		s.logger.Printf("%s: %v (ignored: replicas will full-sync)", path, err)
		return nil
	}
	r := s.repl
	r.mu.Lock()
	r.replid = id
	r.bl.reset(off)
	r.mu.Unlock()
	r.active.Store(true)
	s.logger.Printf("replication: resumed id %s at offset %d", id, off)
	return nil
}

func parseReplState(body string) (string, int64, error) {
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "gantry-repl 1" {
		return "", 0, errors.New("unknown format")
	}
	f := strings.Fields(lines[1])
	if len(f) != 2 || !validReplID(f[0]) {
		return "", 0, fmt.Errorf("bad line %q", trunc([]byte(lines[1]), 100))
	}
	off, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || off < 0 {
		return "", 0, fmt.Errorf("bad offset %q", trunc([]byte(f[1]), 30))
	}
	return f[0], off, nil
}
