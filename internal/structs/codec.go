package structs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Compact binary bodies for the two entry types that carry allocations by
// the thousand (plans and agents' reports). JSON repeats every field name
// and every shared value (job, node, statuses, times) per allocation; these
// encodings keep one string table per entry, write 16 bytes for an ID that
// is a canonical UUID, times as deltas from the previous time in the entry,
// and per allocation only the fields that differ from the previous one.
// docs/architecture.md ("Raft entries") describes the layout; the byte
// order of everything is encoding/binary's varints.
//
// Decoding is strict: every count and reference is checked against what is
// left of the entry, trailing bytes are refused, and an error names what
// was wrong and where. It never panics, whatever the input (fuzzed).

// codecVersion is the first byte of every binary body; a decoder refuses
// versions it does not know.
const codecVersion = 1

// maxCodecString bounds one string of a binary body.
const maxCodecString = 1 << 20

// encoder appends a body after its string table.
type encoder struct {
	body []byte
	// tab numbers the strings of the entry in order of first use.
	tab  map[string]uint64
	strs []string
	// lastTime is the previous time written: times go as deltas from it.
	lastTime int64
}

func newEncoder(sizeHint int) *encoder {
	return &encoder{body: make([]byte, 0, sizeHint), tab: map[string]uint64{}}
}

func (e *encoder) uvarint(v uint64) { e.body = binary.AppendUvarint(e.body, v) }
func (e *encoder) varint(v int64)   { e.body = binary.AppendVarint(e.body, v) }

// int writes an int as a varint (ints are 64-bit on every platform gantry
// builds for; the decoder refuses values an int cannot hold).
func (e *encoder) int(v int) { e.varint(int64(v)) }

// time writes t as the difference from the previous time of the entry.
func (e *encoder) time(t int64) {
	e.varint(t - e.lastTime)
	e.lastTime = t
}

// ref writes s as its number in the entry's string table.
func (e *encoder) ref(s string) {
	i, ok := e.tab[s]
	if !ok {
		i = uint64(len(e.strs))
		e.tab[s] = i
		e.strs = append(e.strs, s)
	}
	e.uvarint(i)
}

// str writes s inline: its length then its bytes.
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.body = append(e.body, s...)
}

// id writes an ID inline: 0 then 16 bytes for a canonical (lower-case)
// UUID, else its length plus one then its bytes.
func (e *encoder) id(s string) { e.body = appendID(e.body, s) }

func appendID(b []byte, s string) []byte {
	if isUUID(s) {
		b = append(b, 0)
		return appendUUID(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

// count writes the length of a slice or map, 0 for nil and n+1 otherwise,
// so nil and empty stay apart.
func (e *encoder) count(n int, isNil bool) {
	if isNil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(n) + 1)
}

// finish returns the whole body: version, string table, then what was
// written.
func (e *encoder) finish() []byte {
	n := 1 + binary.MaxVarintLen64 + len(e.body)
	for _, s := range e.strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	out := make([]byte, 0, n)
	out = append(out, codecVersion)
	out = binary.AppendUvarint(out, uint64(len(e.strs)))
	for _, s := range e.strs {
		out = appendID(out, s)
	}
	return append(out, e.body...)
}

// isUUID reports whether s is a UUID in canonical lower-case form
// (8-4-4-4-12 hex digits), the only form written as 16 bytes (so decoding
// gives back the same string).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// appendUUID appends the 16 bytes of a UUID that isUUID accepted.
func appendUUID(b []byte, s string) []byte {
	var u [16]byte
	j := 0
	for i := 0; i < 36; i += 2 {
		if s[i] == '-' {
			i--
			continue
		}
		u[j] = unhex(s[i])<<4 | unhex(s[i+1])
		j++
	}
	return append(b, u[:]...)
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func formatUUID(u []byte) string {
	var b [36]byte
	EncodeUUID(&b, (*[16]byte)(u))
	return string(b[:])
}

// decoder reads a binary body. The first error sticks: later reads return
// zero values, and the caller checks err at the end of each item to say
// where it happened.
type decoder struct {
	b        []byte
	off      int
	err      error
	strs     []string
	lastTime int64
}

// errTruncated is wrapped by every "the entry ends too early" error.
var errTruncated = errors.New("entry ends early")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// header checks the version and reads the string table.
func (d *decoder) header() {
	if len(d.b) == 0 {
		d.fail("empty body: %w", errTruncated)
		return
	}
	if v := d.b[0]; v != codecVersion {
		d.fail("unknown encoding version %d (this server reads %d)", v, codecVersion)
		return
	}
	d.off = 1
	n := d.count("string table")
	if d.err != nil {
		return
	}
	d.strs = make([]string, n)
	for i := range d.strs {
		d.strs[i] = d.id("string table entry")
		if d.err != nil {
			d.err = fmt.Errorf("string table entry %d of %d: %w", i, n, d.err)
			return
		}
	}
}

// end refuses trailing bytes.
func (d *decoder) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes after the body", len(d.b)-d.off)
	}
}

func (d *decoder) uvarint(what string) uint64 { return readVarint(d, what, binary.Uvarint) }

func (d *decoder) varint(what string) int64 { return readVarint(d, what, binary.Varint) }

// readVarint reads one varint with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *decoder, what string, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("%s: %w", what, errTruncated)
		} else {
			d.fail("%s: varint overflows 64 bits", what)
		}
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) int(what string) int {
	v := d.varint(what)
	if int64(int(v)) != v {
		d.fail("%s: %d does not fit an int", what, v)
		return 0
	}
	return int(v)
}

func (d *decoder) time(what string) int64 {
	delta := d.varint(what)
	d.lastTime += delta
	return d.lastTime
}

func (d *decoder) ref(what string) string {
	i := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if i >= uint64(len(d.strs)) {
		d.fail("%s: string %d is not in the entry's table of %d", what, i, len(d.strs))
		return ""
	}
	return d.strs[i]
}

// bytes returns the next n bytes.
func (d *decoder) bytes(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s: %d bytes wanted, %d left: %w", what, n, len(d.b)-d.off, errTruncated)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) str(what string) string {
	n := d.uvarint(what)
	if d.err == nil && n > maxCodecString {
		d.fail("%s: string of %d bytes is longer than %d", what, n, maxCodecString)
		return ""
	}
	return string(d.bytes(n, what))
}

func (d *decoder) uuid(what string) string {
	b := d.bytes(16, what)
	if d.err != nil {
		return ""
	}
	return formatUUID(b)
}

func (d *decoder) id(what string) string {
	h := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if h == 0 {
		return d.uuid(what)
	}
	if h-1 > maxCodecString {
		d.fail("%s: string of %d bytes is longer than %d", what, h-1, maxCodecString)
		return ""
	}
	return string(d.bytes(h-1, what))
}

// count reads a length written by encoder.count. Every item takes at
// least one byte, so a count larger than what is left is refused before
// anything is allocated for it.
func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("%s: %d items cannot fit the %d bytes left", what, n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

// optCount reads encoder.count's nil-or-length: -1 for nil.
func (d *decoder) optCount(what string) int {
	n := d.uvarint(what)
	if d.err != nil {
		return -1
	}
	if n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.b)-d.off) {
		d.fail("%s: %d items cannot fit the %d bytes left", what, n-1, len(d.b)-d.off)
		return -1
	}
	return int(n - 1)
}

// Task state: a mask of what is written, relative to the previous task
// state of the entry (strings and counters that repeat are not written
// again; times, PID and events are written when set).
const (
	tsState = 1 << iota
	tsRestarts
	tsExitCode
	tsFailed // the value itself
	tsStartedAt
	tsFinishedAt
	tsPID
	tsEvents
	tsMaskAll = tsEvents<<1 - 1
)

func (e *encoder) taskState(ts, prev *TaskState) {
	var m uint64
	if ts.State != prev.State {
		m |= tsState
	}
	if ts.Restarts != prev.Restarts {
		m |= tsRestarts
	}
	if ts.ExitCode != prev.ExitCode {
		m |= tsExitCode
	}
	if ts.Failed {
		m |= tsFailed
	}
	if ts.StartedAt != 0 {
		m |= tsStartedAt
	}
	if ts.FinishedAt != 0 {
		m |= tsFinishedAt
	}
	if ts.PID != 0 {
		m |= tsPID
	}
	if ts.Events != nil {
		m |= tsEvents
	}
	e.uvarint(m)
	if m&tsState != 0 {
		e.ref(ts.State)
	}
	if m&tsRestarts != 0 {
		e.int(ts.Restarts)
	}
	if m&tsExitCode != 0 {
		e.int(ts.ExitCode)
	}
	if m&tsStartedAt != 0 {
		e.time(ts.StartedAt)
	}
	if m&tsFinishedAt != 0 {
		e.time(ts.FinishedAt)
	}
	if m&tsPID != 0 {
		e.int(ts.PID)
	}
	if m&tsEvents != 0 {
		e.uvarint(uint64(len(ts.Events)))
		for _, ev := range ts.Events {
			e.time(ev.Time)
			e.ref(ev.Type)
			e.ref(ev.Message)
		}
	}
}

func (d *decoder) taskState(ts, prev *TaskState) {
	m := d.uvarint("task state mask")
	if d.err != nil {
		return
	}
	if m&^tsMaskAll != 0 {
		d.fail("task state mask %#x has unknown bits", m)
		return
	}
	ts.State, ts.Restarts, ts.ExitCode = prev.State, prev.Restarts, prev.ExitCode
	if m&tsState != 0 {
		ts.State = d.ref("task state")
	}
	if m&tsRestarts != 0 {
		ts.Restarts = d.int("task restarts")
	}
	if m&tsExitCode != 0 {
		ts.ExitCode = d.int("task exit code")
	}
	ts.Failed = m&tsFailed != 0
	if m&tsStartedAt != 0 {
		ts.StartedAt = d.time("task started_at")
		if ts.StartedAt == 0 {
			d.fail("task started_at: written as set but zero")
		}
	}
	if m&tsFinishedAt != 0 {
		ts.FinishedAt = d.time("task finished_at")
		if ts.FinishedAt == 0 {
			d.fail("task finished_at: written as set but zero")
		}
	}
	if m&tsPID != 0 {
		ts.PID = d.int("task pid")
		if ts.PID == 0 {
			d.fail("task pid: written as set but zero")
		}
	}
	if m&tsEvents != 0 {
		n := d.count("task events")
		if d.err != nil {
			return
		}
		ts.Events = make([]TaskEvent, n)
		for i := range ts.Events {
			ev := &ts.Events[i]
			ev.Time = d.time("task event time")
			ev.Type = d.ref("task event type")
			ev.Message = d.ref("task event message")
		}
	}
}
