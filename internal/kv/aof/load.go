package aof

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/durable"
	"github.com/gantry-project/gantry/internal/kv/command"
	"github.com/gantry-project/gantry/internal/resp"
)

// manifest names the files of the current generation.
type manifest struct {
	base string // snapshot file, "" for none
	log  string
	gen  int
}

func readManifest(dir string) (manifest, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, false, nil
	}
	if err != nil {
		return manifest{}, false, err
	}
	var m manifest
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			if line != "gantry-kv 1" {
				return m, false, fmt.Errorf("manifest: unknown format %q", line)
			}
			first = false
			continue
		}
		kind, name, _ := strings.Cut(line, " ")
		switch kind {
		case "base":
			m.base = name
		case "log":
			m.log = name
			g := strings.TrimSuffix(strings.TrimPrefix(name, "log."), ".aof")
			if m.gen, err = strconv.Atoi(g); err != nil {
				return m, false, fmt.Errorf("manifest: bad log name %q", name)
			}
		}
	}
	if m.log == "" {
		return m, false, errors.New("manifest: no log file")
	}
	return m, true, nil
}

// load reads the snapshot and the log of the data directory into the
// keyspace, truncating a torn log tail, and opens the log for appending.
func (a *Log) load() error {
	m, ok, err := readManifest(a.dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", a.dir, err)
	}
	if !ok {
		m = manifest{log: logName(1), gen: 1}
		if err := durable.WriteFile(filepath.Join(a.dir, m.log), nil, 0o644); err != nil {
			return err
		}
		if err := a.writeManifest(1, false); err != nil {
			return err
		}
	}
	if m.base != "" {
		path := filepath.Join(a.dir, m.base)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		good, n, _, perr := a.replay(data, false)
		if errors.Is(perr, errBadDB) {
			return fmt.Errorf("snapshot %s: %w", path, perr)
		}
		if good != len(data) {
			return fmt.Errorf("snapshot %s: corrupt at byte %d of %d: %w", path, good, len(data), perr)
		}
		a.sizeBase = int64(len(data))
		a.cfg.Logger.Printf("loaded snapshot %s: %d commands", m.base, n)
	}
	path := filepath.Join(a.dir, m.log)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("log: %w", err)
	}
	good, n, db, perr := a.replay(data, false)
	if errors.Is(perr, errBadDB) {
		return fmt.Errorf("log %s: %w", path, perr)
	}
	a.bufDB = db
	if good < len(data) {
		reason := "incomplete command"
		if perr != nil {
			reason = perr.Error()
		}
		a.cfg.Logger.Printf("log %s: torn tail at byte %d of %d (%s): truncating %d bytes",
			m.log, good, len(data), reason, len(data)-good)
		if err := os.Truncate(path, int64(good)); err != nil {
			return fmt.Errorf("truncate log: %w", err)
		}
	}
	if len(data) > 0 {
		a.cfg.Logger.Printf("loaded log %s: %d commands", m.log, n)
	}
	f, err := a.fs.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	a.f, a.gen, a.sizeCur = f, m.gen, int64(good)
	a.cfg.Dirty.Store(0)
	return nil
}

// replay executes the commands in data and returns the length of the valid
// prefix: it ends after the last complete command outside a transaction or
// after the EXEC of the last complete MULTI block. err says why the rest was
// not valid (nil for an incomplete command). held: the caller holds
// every shard of every database (Reload).
func (a *Log) replay(data []byte, held bool) (good, n, goodDB int, err error) {
	c := &command.Ctx{KS: a.cfg.KS, Track: a.cfg.Track, DBs: a.cfg.DBs, AllLocked: held}
	c.W.Proto = 2
	var tx [][][]byte
	inTx := false
	pos := 0
	var args [][]byte
	for pos < len(data) {
		if data[pos] != '*' {
			return good, n, goodDB, errors.New("not a RESP array")
		}
		var used int
		args, used, err = resp.ParseCommand(data[pos:], args)
		if err != nil || used == 0 {
			return good, n, goodDB, err
		}
		pos += used
		if len(args) == 0 {
			if !inTx {
				good = pos
			}
			continue
		}
		switch {
		case command.EqualFold(args[0], "multi"):
			inTx, tx = true, tx[:0]
			continue
		case command.EqualFold(args[0], "exec"):
			for _, t := range tx {
				if err := a.replayOne(c, t); err != nil {
					return good, n, goodDB, err
				}
				n++
			}
			inTx, tx = false, tx[:0]
			good, goodDB = pos, c.DB
			continue
		}
		if inTx {
			tx = append(tx, args)
			args = nil
			continue
		}
		if err := a.replayOne(c, args); err != nil {
			return good, n, goodDB, err
		}
		n++
		good, goodDB = pos, c.DB
	}
	return good, n, goodDB, nil
}

// errBadDB: a SELECT names a database this server does not have (it was
// started with fewer databases than the one that wrote the file). Loading
// stops rather than truncating or mixing databases.
var errBadDB = errors.New("SELECT of a database out of range")

func (a *Log) replayOne(c *command.Ctx, args [][]byte) error {
	if command.EqualFold(args[0], "select") && len(args) == 2 {
		db, ok := command.ParseInt(args[1])
		if !ok || !c.SelectDB(int(db)) {
			return fmt.Errorf("%w: SELECT %s with databases %d", errBadDB, command.Trunc(args[1], 20), len(c.DBs))
		}
		return nil
	}
	if err := a.cfg.Table.Apply(c, args, a.cfg.Clock.Now().UnixMilli()); err != nil {
		a.cfg.Logger.Printf("log: skipping %v", err)
	}
	return nil
}

// ErrIncomplete is Reload's error when a file does not end after a whole
// record: nothing was loaded.
var ErrIncomplete = errors.New("the file does not end after a whole record")

// Reload loads the snapshot and the log again, as at start, into the
// keyspace (DEBUG LOADAOF): it writes out what the log holds in memory,
// reads both files, calls empty to drop every key and replays them. The
// caller holds every shard of every database, so nothing is appended
// meanwhile, and no rewrite can start. It returns the commands replayed;
// on an error before empty (a rewrite running, a file that cannot be
// read or ends inside a record) the keyspace is left as it was.
func (a *Log) Reload(empty func()) (int, error) {
	if a.rw.Load() != nil {
		return 0, ErrRewriteRunning
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if err := a.flushLocked(false); err != nil {
		return 0, err
	}
	m, ok, err := readManifest(a.dir)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("data dir %s: no manifest", a.dir)
	}
	var files [][]byte
	for _, name := range []string{m.base, m.log} {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(a.dir, name))
		if err != nil {
			return 0, err
		}
		if !wholeRecords(data) {
			return 0, fmt.Errorf("%s: %w", name, ErrIncomplete)
		}
		files = append(files, data)
	}
	empty()
	total := 0
	for _, data := range files {
		_, n, _, err := a.replay(data, true)
		total += n
		if err != nil {
			return total, err
		}
	}
	a.cfg.Dirty.Store(0)
	return total, nil
}

// wholeRecords reports whether data is a sequence of whole RESP commands
// with every MULTI closed by an EXEC, all of which replay loads.
func wholeRecords(data []byte) bool {
	var args [][]byte
	inTx := false
	for pos := 0; pos < len(data); {
		if data[pos] != '*' {
			return false
		}
		var used int
		var err error
		args, used, err = resp.ParseCommand(data[pos:], args)
		if err != nil || used == 0 {
			return false
		}
		pos += used
		if len(args) == 0 {
			continue
		}
		switch {
		case command.EqualFold(args[0], "multi"):
			inTx = true
		case command.EqualFold(args[0], "exec"):
			inTx = false
		}
	}
	return !inTx
}
