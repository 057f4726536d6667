package acl

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// LogEntry is one entry of the ACL log: refusals of the same object for
// the same user in the same context within a minute are counted in one.
type LogEntry struct {
	Count      int64
	Reason     string // command, key, channel, auth
	Context    string // toplevel, multi, lua
	Object     string
	Username   string
	ClientInfo string
	EntryID    int64
	Created    int64 // Unix ms
	Updated    int64 // Unix ms
}

// groupWindow is how long (ms) a refusal adds to the entry of an equal one.
const groupWindow = 60000

// Log is the ACL log, newest first, at most Max entries.
type Log struct {
	mu      sync.Mutex
	entries []LogEntry
	max     int
	nextID  int64
}

// DefaultLogMax is acllog-max-len's default.
const DefaultLogMax = 128

// NewLog returns a log keeping at most max entries.
func NewLog(max int) *Log { return &Log{max: max} }

// SetMax changes acllog-max-len, dropping the oldest entries over it.
func (l *Log) SetMax(max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max
	if len(l.entries) > max {
		l.entries = l.entries[:max]
	}
}

// Max returns acllog-max-len.
func (l *Log) Max() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// Add records a refusal at nowMs; clientInfo is the CLIENT INFO line of the
// connection.
func (l *Log) Add(reason, context, object, username, clientInfo string, nowMs int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.entries {
		e := &l.entries[i]
		if e.Reason == reason && e.Context == context && e.Object == object &&
			e.Username == username && nowMs-e.Updated < groupWindow {
			e.Count++
			e.Updated = nowMs
			e.ClientInfo = clientInfo
			// the updated entry becomes the newest
			ent := *e
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = ent
			return
		}
	}
	if l.max <= 0 {
		return
	}
	e := LogEntry{Count: 1, Reason: reason, Context: context, Object: object, Username: username,
		ClientInfo: clientInfo, EntryID: l.nextID, Created: nowMs, Updated: nowMs}
	l.nextID++
	l.entries = append([]LogEntry{e}, l.entries...)
	if len(l.entries) > l.max {
		l.entries = l.entries[:l.max]
	}
}

// Entries returns at most n entries, newest first (n < 0: all).
func (l *Log) Entries(n int) []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > len(l.entries) {
		n = len(l.entries)
	}
	return append([]LogEntry(nil), l.entries[:n]...)
}

// Reset empties the log.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
}

// GenPass returns bits random bits in hex (ACL GENPASS), rounded up to a
// whole hex digit.
func GenPass(bits int) string {
	n := (bits + 7) / 8
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported systems
	s := hex.EncodeToString(b)
	return s[:(bits+3)/4]
}
