package kv

import (
	"github.com/gantry-project/gantry/internal/kv/aof"
	"github.com/gantry-project/gantry/internal/kv/command"
)

// A write is acknowledged only once the append-only log holds it (see
// docs/kv.md, "Writing and fsync"). The replies of a batch are built
// before the batch waits for the log, so a connection notes, for each
// command that logged something, where its reply sits in the reply buffer
// and the log offset it needs; if the log write (or fsync) fails, those
// replies are replaced by a -MISCONF error before anything is sent. While
// the log keeps failing, writes are refused before they run (logRefusal),
// so they change nothing and reach neither the log nor the replicas.

// ackSpan is the reply of one command that logged a write: W.B[start:end],
// acknowledging the log up to off.
type ackSpan struct {
	start, end int
	off        int64
}

// noteAck records the reply of the command that just ran, from start to
// the end of the reply buffer, if it logged something (c.aofWait moved
// past prev).
func (c *Client) noteAck(start int, prev int64) {
	if c.aofWait != prev {
		c.acks = append(c.acks, ackSpan{start: start, end: len(c.W.B), off: c.aofWait})
	}
}

// waitLog waits until the log holds everything up to wait. On failure it
// returns the offset the log does hold and the error to answer instead of
// the replies past it; refusal is "" on success.
func (s *Server) waitLog(wait int64) (durable int64, refusal string) {
	if err := s.aof.WaitDurable(wait); err != nil {
		return s.aof.DurableOffset(), misconf(err)
	}
	return wait, ""
}

// settleAcks replaces each reply acknowledging a write past durable by the
// refusal (unless refusal is ""), then forgets the client's notes.
func (c *Client) settleAcks(durable int64, refusal string) {
	if refusal != "" {
		c.refuseUnlogged(durable, refusal)
	}
	if cap(c.acks) > 4096 {
		c.acks = nil
	} else {
		c.acks = c.acks[:0]
	}
}

func (c *Client) refuseUnlogged(durable int64, refusal string) {
	var out []byte
	pos := 0
	for _, a := range c.acks {
		if a.off <= durable {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(c.W.B))
		}
		out = append(out, c.W.B[pos:a.start]...)
		out = append(out, '-')
		out = append(out, refusal...)
		out = append(out, '\r', '\n')
		pos = a.end
	}
	if out != nil {
		c.W.B = append(out, c.W.B[pos:]...)
	}
}

// misconf is the error a write gets while the log cannot be written, in
// Redis's words.
func misconf(err error) string {
	return "MISCONF Errors writing to the AOF file: " + aof.Reason(err)
}

// logRefusal returns the error a write gets before it runs while the log
// fails to write or fsync (Redis's aof_last_write_status:err), "" when it
// may run; the caller checked aof.Writable (which may retry the disk).
func (s *Server) logRefusal() string {
	if err := s.aof.Failure(); err != nil {
		return misconf(err)
	}
	return "" // it recovered meanwhile
}

// execLogRefusal is logRefusal for EXEC: a transaction with a write is
// refused as a whole (not on a replica's link to its primary).
func (s *Server) execLogRefusal(c *Client, queued [][][]byte) string {
	if s.aof == nil || c.master || s.aof.Writable() {
		return ""
	}
	for _, args := range queued {
		if cmd := s.cmds.Lookup(args[0]); cmd != nil && cmd.Has(command.Write) {
			return s.logRefusal()
		}
	}
	return ""
}
