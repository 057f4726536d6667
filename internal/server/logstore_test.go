package server

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/gantry-project/gantry/api"
)

// storeKind names the log store a running server opened.
func storeKind(t *testing.T, s *Server) string {
	t.Helper()
	switch s.logStore.(type) {
	case *walStore:
		return LogStoreWAL
	case *raftboltdb.BoltStore:
		return LogStoreBoltDB
	}
	t.Fatalf("unknown log store %T", s.logStore)
	return ""
}

// TestLogStoreRestart starts a server on each log store, writes, then
// restarts it twice: after a clean shutdown, and from a copy of its data
// dir taken with Raft stopped but the store never closed (what kill -9
// leaves: everything written, nothing the close would have done; the WAL's
// tail segment unsealed). Both times every job, node and allocation is
// there and nothing is placed again.
func TestLogStoreRestart(t *testing.T) {
	for _, kind := range []string{LogStoreWAL, LogStoreBoltDB} {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.RaftLogStore = kind
			s, c := startServer(t, cfg)
			if got := storeKind(t, s); got != kind {
				t.Fatalf("store %s, want %s", got, kind)
			}
			if _, err := c.RegisterNode(bg, fakeNode("n1", 4000, 4096)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.RegisterJob(bg, mockJob("web", 3)); err != nil {
				t.Fatal(err)
			}
			before := allocIDs(waitLive(t, c, "web", 3))
			dump := dumpState(t, s.State())

			// Clean restart.
			if err := s.Shutdown(); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			s, c = startServer(t, cfg)
			checkRestarted(t, s, c, dump, before)
			if got := storeKind(t, s); got != kind {
				t.Fatalf("store after restart %s, want %s", got, kind)
			}
			if _, err := c.RegisterJob(bg, mockJob("later", 0)); err != nil {
				t.Fatal(err)
			}
			dump = dumpState(t, s.State())

			// Crash: Raft stops writing, the store stays open.
			if err := s.raft.Shutdown().Error(); err != nil {
				t.Fatalf("raft shutdown: %v", err)
			}
			crashed := cfg
			crashed.DataDir = t.TempDir()
			copyDir(t, cfg.DataDir, crashed.DataDir)
			// The config does not name the store: the data dir decides.
			crashed.RaftLogStore = ""
			s2, c2 := startServer(t, crashed)
			checkRestarted(t, s2, c2, dump, before)
			if got := storeKind(t, s2); got != kind {
				t.Fatalf("store after crash %s, want %s", got, kind)
			}
		})
	}
}

// checkRestarted waits for the restarted leader to reconcile and checks
// that its state is dump and the web job's allocations are before.
func checkRestarted(t *testing.T, s *Server, c *api.Client, dump string, before []string) {
	t.Helper()
	waitFor(t, 10*time.Second, "scheduler to reconcile after restart", func() (bool, string) {
		st := s.sched.Status()
		return st.Evaluations >= 1 && st.QueueDepth == 0, "busy"
	})
	if got := dumpState(t, s.State()); got != dump {
		t.Fatalf("state changed across restart:\nbefore %s\nafter  %s", dump, got)
	}
	if after := allocIDs(liveAllocs(t, c, "web")); !slices.Equal(after, before) {
		t.Fatalf("allocations changed across restart: before %v after %v", before, after)
	}
}

// copyDir copies the regular files under src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// TestLogStoreChoice checks which store a data dir gets: a new one the
// configured store (or the default), an existing one its own whatever the
// default, and a configured store other than the existing one an error
// that names both.
func TestLogStoreChoice(t *testing.T) {
	tests := []struct {
		name     string
		existing string // store the data dir was created with ("" = new dir)
		want     string // Config.RaftLogStore
		got      string // store opened ("" = error)
	}{
		{"new default", "", "", DefaultLogStore},
		{"new wal", "", LogStoreWAL, LogStoreWAL},
		{"new boltdb", "", LogStoreBoltDB, LogStoreBoltDB},
		{"bolt kept unset", LogStoreBoltDB, "", LogStoreBoltDB},
		{"bolt kept named", LogStoreBoltDB, LogStoreBoltDB, LogStoreBoltDB},
		{"wal kept unset", LogStoreWAL, "", LogStoreWAL},
		{"bolt to wal", LogStoreBoltDB, LogStoreWAL, ""},
		{"wal to bolt", LogStoreWAL, LogStoreBoltDB, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tc.existing != "" {
				cfg.RaftLogStore = tc.existing
				s, _ := startServer(t, cfg)
				if err := s.Shutdown(); err != nil {
					t.Fatal(err)
				}
			}
			cfg.RaftLogStore = tc.want
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start()
			t.Cleanup(func() { _ = s.Shutdown() })
			if tc.got == "" {
				if err == nil || !strings.Contains(err.Error(), "raft_log_store") || !strings.Contains(err.Error(), tc.existing) {
					t.Fatalf("err %v, want one naming raft_log_store and %s", err, tc.existing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := storeKind(t, s); got != tc.got {
				t.Fatalf("store %s, want %s", got, tc.got)
			}
		})
	}
}

// TestLogStoreBoth refuses a data dir holding both stores.
func TestLogStoreBoth(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, walDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{boltLogFile, filepath.Join(walDir, walMetaFile)} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := existingLogStore(dir); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("err %v, want one about both stores", err)
	}
}
