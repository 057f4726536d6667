package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/backup"
	"github.com/gantry-project/gantry/internal/structs"
)

// populated returns a store with a record of every kind.
func populated(t testing.TB) *Store {
	t.Helper()
	s, err := New()
	if err == nil {
		err = errors.Join(
			s.UpsertNode(1, testNode("n1", "one")),
			s.UpsertNode(2, testNode("n2", "two")),
			s.UpsertJob(3, testJob("web")),
			s.UpsertAllocs(4, []*structs.Allocation{testAlloc("a1", "web", "n1", 0), testAlloc("a2", "web", "n2", 1)}),
			s.UpsertPlacementFailure(5, &structs.PlacementFailure{JobID: "web", Unplaced: 1, NodesExhausted: map[string]int{"cpu": 2}}),
			s.UpsertServerMember(6, &structs.ServerMember{ID: "s1", Name: "one", RaftAddr: "10.0.0.1:4647", HTTPAddr: "10.0.0.1:4646"}))
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func backupOf(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().PersistBackup(&buf, 42); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBackupRoundTrip(t *testing.T) {
	src := populated(t)
	b := backupOf(t, src)
	for _, restore := range []struct {
		name string
		fn   func(*Store, []byte) error
	}{
		{"RestoreBackup", func(s *Store, b []byte) error { _, err := s.RestoreBackup(bytes.NewReader(b)); return err }},
		// The FSM's Restore reads backups too.
		{"Restore", func(s *Store, b []byte) error { return s.Restore(bytes.NewReader(b)) }},
	} {
		dst := newStore(t)
		must(t, restore.fn(dst, b))
		if a, b := dump(t, src), dump(t, dst); a != b {
			t.Fatalf("%s: restored state differs:\n%s\n---\n%s", restore.name, a, b)
		}
		if got := dst.Snapshot().ServerMember("s1"); got == nil {
			t.Fatalf("%s: servers table not restored", restore.name)
		}
	}

	info, err := newStore(t).RestoreBackup(bytes.NewReader(b))
	must(t, err)
	if info.Header.Index != 5 || info.Header.Time != 42 || info.Header.Format != backup.Format {
		t.Errorf("header %+v, want index 5 time 42 format %d", info.Header, backup.Format)
	}
	// The span is the bare stream Persist writes: what Raft installs.
	var bare bytes.Buffer
	must(t, src.Snapshot().Persist(&bare))
	if got := b[info.Offset : info.Offset+info.Length]; !bytes.Equal(got, bare.Bytes()) {
		t.Errorf("records span differs from the bare stream:\n%s\n---\n%s", got, bare.Bytes())
	}
	if want := uint64(bytes.Count(bare.Bytes(), []byte("\n"))); info.Records != want {
		t.Errorf("records %d, want %d", info.Records, want)
	}
}

// TestBackupRefusesIncomplete: every strict prefix of a backup, at a record
// boundary or not, and every altered byte is refused with an error naming
// the problem, and the store keeps its content.
func TestBackupRefusesIncomplete(t *testing.T) {
	b := backupOf(t, populated(t))
	dst := newStore(t)
	must(t, dst.UpsertJob(9, testJob("keep")))
	before := dump(t, dst)

	check := func(name string, in []byte, want string) {
		t.Helper()
		_, err := dst.RestoreBackup(bytes.NewReader(in))
		if err == nil {
			t.Fatalf("%s: restored without error", name)
		}
		if !errors.Is(err, backup.ErrInvalid) {
			t.Errorf("%s: %v does not wrap backup.ErrInvalid", name, err)
		}
		if want != "" && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", name, err, want)
		}
		if dump(t, dst) != before {
			t.Fatalf("%s: a refused backup changed the store", name)
		}
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty tail after the last newline
	// At every record boundary: header only, header and some records,
	// everything but the trailer.
	cut := 0
	for i, l := range lines[:len(lines)-1] {
		cut += len(l)
		check(fmt.Sprintf("cut after line %d", i+1), b[:cut], "without its trailer")
	}
	// Inside lines.
	for n := 1; n < len(b); n += 7 {
		if bytes.HasSuffix(b[:n], []byte("\n")) {
			continue
		}
		check(fmt.Sprintf("cut at byte %d", n), b[:n], "")
	}
	// A flipped byte anywhere.
	for i := range b {
		if b[i] == '\n' {
			continue
		}
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		check(fmt.Sprintf("byte %d altered", i), bad, "")
	}
	// A record dropped or repeated, the trailer fixed or not.
	check("record dropped", append(bytes.Join(lines[:2], nil), bytes.Join(lines[3:], nil)...), "counts")
	check("record repeated", append(bytes.Join(lines[:3], nil), bytes.Join(lines[2:], nil)...), "counts")
	check("data after the trailer", append(bytes.Clone(b), "{}\n"...), "after the trailer")
	check("empty", nil, "empty")
	check("not a backup", []byte("hello\n"), "not a gantry snapshot")
	check("format 1", []byte(`{"gantry_snapshot":1,"index":3}`+"\n"), "format 1")
	check("format 3", []byte(`{"gantry_snapshot":3,"index":3}`+"\n"), "newer")
	// A bare record stream (a Raft snapshot) is not a backup.
	var bare bytes.Buffer
	must(t, populated(t).Snapshot().Persist(&bare))
	check("bare stream", bare.Bytes(), "not a gantry snapshot")
}

// TestBackupHeaderIndexMustMatch: a header naming another index than its
// records (an edited file whose trailer was recomputed) is refused: Raft
// would otherwise move its index to it.
func TestBackupHeaderIndexMustMatch(t *testing.T) {
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Header{Index: 1 << 62})
	must(t, err)
	must(t, w.Encode(&record{Index: &IndexEntry{Key: TableJobs, Value: 7}}))
	must(t, w.Close())
	_, err = newStore(t).RestoreBackup(&buf)
	if !errors.Is(err, backup.ErrInvalid) || !strings.Contains(err.Error(), "highest index is 7") {
		t.Fatalf("err %v, want a mismatch of header and records", err)
	}
}

// TestRestoreReadsBareStreams: the FSM keeps reading Raft snapshots in the
// bare form (every earlier build's), and refuses a backup cut short.
func TestRestoreReadsBareStreams(t *testing.T) {
	src := populated(t)
	var bare bytes.Buffer
	must(t, src.Snapshot().Persist(&bare))
	dst := newStore(t)
	must(t, dst.Restore(bytes.NewReader(bare.Bytes())))
	if a, b := dump(t, src), dump(t, dst); a != b {
		t.Fatalf("restored state differs:\n%s\n---\n%s", a, b)
	}
	b := backupOf(t, src)
	header := b[:bytes.IndexByte(b, '\n')+1]
	if err := newStore(t).Restore(bytes.NewReader(header)); !errors.Is(err, backup.ErrInvalid) {
		t.Fatalf("header-only backup through Restore: %v, want ErrInvalid", err)
	}
}

// FuzzRestoreBackup feeds arbitrary files to the backup reader and the
// store's loader: they may be refused, never crash, a refused one leaves
// the store as it was, and one that loads is a backup whose content
// survives another round trip.
func FuzzRestoreBackup(f *testing.F) {
	b := backupOf(f, populated(f))
	lines := bytes.SplitAfter(b, []byte("\n"))
	f.Add(b)
	f.Add(lines[0])
	f.Add(bytes.Join(lines[:3], nil))
	f.Add(b[:len(b)-5])
	f.Add([]byte(`{"gantry_snapshot":1,"index":3}` + "\n" + `{"node":{"id":"x"}}` + "\n"))
	f.Add([]byte(`{"gantry_snapshot":2,"index":0}` + "\n" + `{"gantry_snapshot_end":{"records":0,"crc32c":"00000000"}}` + "\n"))
	f.Add([]byte(`{"gantry_snapshot":2,"index":0}` + "\n" + `{"alloc":{"id":"a","node_id":"n","job_id":"j","job":{"id":"j"}}}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		dst := newStore(t)
		must(t, dst.UpsertJob(1, testJob("keep")))
		before := dump(t, dst)
		info, err := dst.RestoreBackup(bytes.NewReader(in))
		if err != nil {
			if dump(t, dst) != before {
				t.Fatalf("refused input changed the store: %v", err)
			}
			return
		}
		if _, err := backup.Verify(bytes.NewReader(in)); err != nil {
			t.Fatalf("loaded a backup that does not verify: %v", err)
		}
		if info.Offset+info.Length > int64(len(in)) || info.Offset < 0 || info.Length < 0 {
			t.Fatalf("span %d+%d outside a %d-byte input", info.Offset, info.Length, len(in))
		}
		again := newStore(t)
		if _, err := again.RestoreBackup(bytes.NewReader(backupOf(t, dst))); err != nil {
			t.Fatalf("a loaded backup does not survive a round trip: %v", err)
		}
		if a, b := dump(t, dst), dump(t, again); a != b {
			t.Fatalf("round trip changed the state:\n%s\n---\n%s", a, b)
		}
	})
}
