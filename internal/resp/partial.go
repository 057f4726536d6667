package resp

import "bytes"

// Partial is the progress of a command whose bytes have not all arrived.
// ParseCommand starts again from the first byte each time it is called, so
// a command that arrives in many reads (a 512 MB bulk string, two million
// arguments) would be scanned once per read: quadratic work. A connection
// that holds an incomplete command instead calls Scan, which resumes where
// it stopped, and calls ParseCommand once Scan reports the command complete.
// Need tells how many bytes Scan needs to make progress, so a reader waits
// for them without scanning again, and Size how many the command takes at
// least, so it can size its buffer.
type Partial struct {
	pos   int   // bytes of the command scanned so far (whole lines and arguments)
	count int64 // arguments announced; -1 until the header is read
	done  int64 // arguments complete
	need  int   // scanning again needs at least this many bytes
	size  int   // the command is not complete with fewer bytes
}

// Active reports whether a scan is under way (Reset ends it).
func (p *Partial) Active() bool { return p.need > 0 }

// Need returns how many bytes Scan needs before it can make progress (or
// find an error); 0 when no scan is under way.
func (p *Partial) Need() int { return p.need }

// Size returns the fewest bytes the whole command can take, counting the
// arguments not yet read as empty: what a reader may make room for.
func (p *Partial) Size() int { return p.size }

// Count returns the number of arguments the command announced (known
// once Scan read its header), so the caller can make room for them when
// the command is complete.
func (p *Partial) Count() int { return int(max(p.count, 0)) }

// Reset forgets the progress (the command was parsed, or the connection
// reset).
func (p *Partial) Reset() { *p = Partial{} }

// Scan continues scanning the command at the start of buf (the same bytes
// as before, with more after them). It reports whether the command is
// complete; a malformed command or one over lim is a *ProtocolError, as
// ParseCommandLimits reports it.
func (p *Partial) Scan(buf []byte, lim Limits) (complete bool, err error) {
	if !p.Active() {
		*p = Partial{count: -1}
	}
	if len(buf) == 0 {
		p.need, p.size = 1, 1
		return false, nil
	}
	if buf[0] != '*' { // inline: complete at the end of the line
		if i := bytes.IndexByte(buf[p.pos:], '\n'); i >= 0 {
			return true, nil
		}
		if len(buf) > MaxInline {
			return false, &ProtocolError{"too big inline request"}
		}
		p.pos, p.need, p.size = len(buf), len(buf)+1, len(buf)+1
		return false, nil
	}
	maxCount, maxBulk, overCount, overBulk := lim.bounds()
	if p.count < 0 {
		count, pos, err := parseLen(buf, 1, maxCount, "invalid multibulk length", overCount)
		if err != nil {
			return false, err
		}
		if pos == 0 {
			p.need, p.size = len(buf)+1, len(buf)+1
			return false, nil
		}
		p.count, p.pos = max(count, 0), pos
	}
	for p.done < p.count {
		// an argument takes at least "$0\r\n\r\n"
		rest := int(p.count-p.done-1) * 6
		if p.pos >= len(buf) {
			p.need, p.size = p.pos+1, p.pos+6+rest
			return false, nil
		}
		if buf[p.pos] != '$' {
			return false, &ProtocolError{"expected '$', got '" + printable(buf[p.pos]) + "'"}
		}
		size, start, err := parseLen(buf, p.pos+1, maxBulk, "invalid bulk length", overBulk)
		if err != nil {
			return false, err
		}
		if start == 0 {
			p.need, p.size = len(buf)+1, len(buf)+1+rest
			return false, nil
		}
		if size < 0 {
			return false, &ProtocolError{"invalid bulk length"}
		}
		end := start + int(size) + 2
		if end > len(buf) {
			p.need, p.size = end, end+rest
			return false, nil
		}
		if buf[end-2] != '\r' || buf[end-1] != '\n' {
			return false, &ProtocolError{"invalid bulk terminator"}
		}
		p.pos = end
		p.done++
	}
	return true, nil
}
