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
		good, n, perr := a.replay(data)
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
	good, n, perr := a.replay(data)
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
// not valid (nil for an incomplete command).
func (a *Log) replay(data []byte) (good, n int, err error) {
	c := &command.Ctx{KS: a.cfg.KS, Track: a.cfg.Track}
	c.W.Proto = 2
	var tx [][][]byte
	inTx := false
	pos := 0
	var args [][]byte
	for pos < len(data) {
		if data[pos] != '*' {
			return good, n, errors.New("not a RESP array")
		}
		var used int
		args, used, err = resp.ParseCommand(data[pos:], args)
		if err != nil || used == 0 {
			return good, n, err
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
				a.replayOne(c, t)
				n++
			}
			inTx, tx = false, tx[:0]
			good = pos
			continue
		}
		if inTx {
			tx = append(tx, args)
			args = nil
			continue
		}
		a.replayOne(c, args)
		n++
		good = pos
	}
	return good, n, nil
}

func (a *Log) replayOne(c *command.Ctx, args [][]byte) {
	if err := a.cfg.Table.Apply(c, args, a.cfg.Clock.Now().UnixMilli()); err != nil {
		a.cfg.Logger.Printf("log: skipping %v", err)
	}
}
