package peer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gantry-project/gantry/internal/binwire"
)

// The binary encoding of protocol messages on the cluster bus. Every
// peer sends its header to every other every HeartbeatInterval (and at
// once when it changes), so the bus carries peers² messages per
// interval; decoding them as JSON was
// the largest part of an idle cluster's CPU after the transport. The
// binary form writes the same fields in a fixed order:
//
//	wireV1, type, flags (uvarint: forced, and which IDs follow),
//	from, [to], current epoch, config epoch, addr, bus port, role,
//	[primary], offset, slot ranges (count, then start and end of each),
//	suspects (count, then each ID), [subject]
//
// with unsigned varints for numbers and a uvarint length before each
// string. Protocol JSON starts with '{' and extension messages with
// extMarker, so the first byte tells every kind apart. A peer sends
// binary only to peers that read it: they say so in their JSON messages
// (Message.Wire) or by sending binary; others (a peer of the previous
// version during a rolling upgrade) get JSON, and every peer still
// reads JSON. Decoding checks every length against its limit and what
// is left before allocating, and refuses unknown types, flags and
// trailing bytes.

const (
	// wireV1 is the first byte of a binary protocol message (version 1).
	wireV1 = 0x02
	// wireVersion is the newest binary encoding this node reads
	// (Message.Wire in its JSON messages).
	wireVersion = 1
	// maxWireID bounds a node ID and maxWireAddr an address; maxSuspects
	// bounds the suspects of one message.
	maxWireID   = 256
	maxWireAddr = 1024
	maxSuspects = 4096
)

// Flags of a binary message.
const (
	wfForced  = 1 << iota // Forced
	wfTo                  // To follows
	wfPrimary             // Primary follows
	wfSubject             // Subject follows
	wfAll     = wfSubject<<1 - 1
)

// errBadWire wraps every decoding error of a binary message.
var errBadWire = errors.New("bad binary cluster message")

// appendWire appends m in the binary form.
func appendWire(dst []byte, m *Message) []byte {
	var f uint64
	if m.Forced {
		f |= wfForced
	}
	if m.To != "" {
		f |= wfTo
	}
	if m.Primary != "" {
		f |= wfPrimary
	}
	if m.Subject != "" {
		f |= wfSubject
	}
	b := dst
	b = append(b, wireV1, byte(m.Type))
	b = binary.AppendUvarint(b, f)
	b = appendWireStr(b, string(m.From))
	if m.To != "" {
		b = appendWireStr(b, string(m.To))
	}
	b = binary.AppendUvarint(b, m.CurrentEpoch)
	b = binary.AppendUvarint(b, m.ConfigEpoch)
	b = appendWireStr(b, m.Addr)
	b = binary.AppendUvarint(b, uint64(max(m.BusPort, 0)))
	b = append(b, byte(m.Role))
	if m.Primary != "" {
		b = appendWireStr(b, string(m.Primary))
	}
	b = binary.AppendUvarint(b, m.Offset)
	b = binary.AppendUvarint(b, uint64(len(m.Slots)))
	for _, r := range m.Slots {
		b = binary.AppendUvarint(b, uint64(r.Start))
		b = binary.AppendUvarint(b, uint64(r.End))
	}
	b = binary.AppendUvarint(b, uint64(len(m.Suspects)))
	for _, id := range m.Suspects {
		b = appendWireStr(b, string(id))
	}
	if m.Subject != "" {
		b = appendWireStr(b, string(m.Subject))
	}
	return b
}

func appendWireStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeWire returns m in the binary form when it fits it exactly (a bus
// port that is not a port goes as JSON).
func encodeWire(m *Message) ([]byte, bool) {
	if m.BusPort < 0 || m.BusPort > 65535 {
		return nil, false
	}
	return appendWire(make([]byte, 0, 128+16*len(m.Slots)+48*len(m.Suspects)), m), true
}

// decodeMessage decodes a protocol message off the bus, binary or JSON,
// and says whether it was binary.
func decodeMessage(b []byte) (Message, bool, error) {
	if len(b) > 0 && b[0] == wireV1 {
		m, err := decodeWire(b)
		return m, true, err
	}
	var m Message
	if len(b) > 0 && b[0] < 0x20 && b[0] != ' ' && b[0] != '\t' && b[0] != '\n' && b[0] != '\r' {
		return m, false, fmt.Errorf("unknown encoding version byte %#x (this node reads JSON and %#x)", b[0], wireV1)
	}
	err := json.Unmarshal(b, &m)
	return m, false, err
}

// decodeWire decodes a binary message (b[0] == wireV1). The node's Step
// checks what it means (IDs, roles, slot ranges).
func decodeWire(b []byte) (Message, error) {
	d := &wireDec{binwire.Decoder{B: b, Off: 1}}
	var m Message
	if len(b) < 2 {
		return m, fmt.Errorf("%w: %d bytes", errBadWire, len(b))
	}
	m.Type = MsgType(b[1])
	d.Off = 2
	f := d.Uvarint("flags")
	if d.Err == nil && f&^wfAll != 0 {
		d.Fail("flags %#x: unknown bits", f)
	}
	m.Forced = f&wfForced != 0
	m.From = NodeID(d.str("from", maxWireID))
	if f&wfTo != 0 {
		m.To = NodeID(d.str("to", maxWireID))
	}
	m.CurrentEpoch = d.Uvarint("current epoch")
	m.ConfigEpoch = d.Uvarint("config epoch")
	m.Addr = d.str("addr", maxWireAddr)
	port := d.Uvarint("bus port")
	if d.Err == nil && port > 65535 {
		d.Fail("bus port %d", port)
	}
	m.BusPort = int(port)
	m.Role = Role(d.Byte("role"))
	if f&wfPrimary != 0 {
		m.Primary = NodeID(d.str("primary", maxWireID))
	}
	m.Offset = d.Uvarint("offset")
	if n := d.count("slot ranges", NumSlots, 2); n > 0 {
		m.Slots = make([]SlotRange, n)
		for i := range m.Slots {
			m.Slots[i] = SlotRange{Start: d.slot("slot range start"), End: d.slot("slot range end")}
		}
	}
	if n := d.count("suspects", maxSuspects, 1); n > 0 {
		m.Suspects = make([]NodeID, n)
		for i := range m.Suspects {
			m.Suspects[i] = NodeID(d.str("suspect", maxWireID))
		}
	}
	if f&wfSubject != 0 {
		m.Subject = NodeID(d.str("subject", maxWireID))
	}
	if d.Err == nil && d.Off != len(b) {
		d.Fail("%d bytes after the message", len(b)-d.Off)
	}
	if d.Err != nil {
		return Message{}, fmt.Errorf("%w: %s: %w", errBadWire, m.Type, d.Err)
	}
	return m, nil
}

// wireDec reads a binary message; the first error sticks (later reads
// give zero values).
type wireDec struct{ binwire.Decoder }

func (d *wireDec) str(what string, limit int) string {
	n := d.Uvarint(what)
	if d.Err != nil {
		return ""
	}
	if n > uint64(limit) {
		d.Fail("%s: %d bytes, limit %d", what, n, limit)
		return ""
	}
	if n > uint64(len(d.B)-d.Off) {
		d.Fail("%s: %d bytes wanted, %d left", what, n, len(d.B)-d.Off)
		return ""
	}
	s := string(d.B[d.Off : d.Off+int(n)])
	d.Off += int(n)
	return s
}

// count reads a list's length: at most limit, and no more than the bytes
// left allow at minBytes per item.
func (d *wireDec) count(what string, limit, minBytes int) int {
	n := d.Uvarint(what)
	if d.Err != nil {
		return 0
	}
	if n > uint64(limit) {
		d.Fail("%s: %d, limit %d", what, n, limit)
		return 0
	}
	if n*uint64(minBytes) > uint64(len(d.B)-d.Off) {
		d.Fail("%s: %d cannot fit the %d bytes left", what, n, len(d.B)-d.Off)
		return 0
	}
	return int(n)
}

func (d *wireDec) slot(what string) uint16 { return d.Slot(what, NumSlots) }
