package peerexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gantry-project/gantry/internal/structs"
)

// Message kinds of the execution layer. Every message is idempotent and
// periodic or retried, so a lost or repeated one only delays convergence.
const (
	// MsgLoad: a peer's labels, capacity, usage and lifecycle state, sent
	// to every member each LoadInterval (the gossip view owners place on).
	MsgLoad = "load"
	// MsgAdmit: an owner asks a peer to run an allocation.
	MsgAdmit = "admit"
	// MsgAdmitted: the peer's answer (OK, or a refusal with its reason and
	// its exact usage).
	MsgAdmitted = "admitted"
	// MsgStop: an owner asks a peer to stop allocations.
	MsgStop = "stop"
	// MsgReport: a peer's list of the tasks it runs (or ran) for the
	// jobs of the slots it believes the receiver owns: full, or (over a
	// stream, after a full one) only the tasks that changed.
	MsgReport = "report"
)

// MaxMessageSize bounds a decoded message; bigger input is refused before
// it is parsed.
const MaxMessageSize = 4 << 20

// Limits on a message's lists, so a bad peer cannot make another allocate
// without bound.
const (
	maxReportTasks = 100000
	maxStopIDs     = 100000
	maxSlotRanges  = 16384
	maxAdmits      = 10000 // copies in one admit, answers in one admitted
)

// Message is one execution-layer message between peers.
type Message struct {
	Type string `json:"type"`
	From string `json:"from"`
	// Inc is the sender's incarnation (a new value at every start): a
	// report from a new incarnation is authoritative about what the
	// peer runs, whatever the previous one admitted.
	Inc string `json:"inc,omitempty"`

	Load  *Load               `json:"load,omitempty"`
	Alloc *structs.Allocation `json:"alloc,omitempty"` // admit of one copy, with its job
	// Job and Allocs: admit of several copies of one job at once (the job
	// goes once; each copy's Job is left out and set to it on decoding).
	Job      *structs.Job          `json:"job,omitempty"`
	Allocs   []*structs.Allocation `json:"allocs,omitempty"`
	Admitted *Admitted             `json:"admitted,omitempty"` // admitted: one answer
	Answers  []Admitted            `json:"answers,omitempty"`  // admitted: several answers
	Stop     []StopRequest         `json:"stop,omitempty"`     // stop
	Report   *Report               `json:"report,omitempty"`   // report
}

// admits returns the copies an admit asks for, each with its job.
func (m *Message) admits() []*structs.Allocation {
	if m.Alloc != nil {
		return []*structs.Allocation{m.Alloc}
	}
	return m.Allocs
}

// answers returns the answers of an admitted message.
func (m *Message) answers() []Admitted {
	if m.Admitted != nil {
		return []Admitted{*m.Admitted}
	}
	return m.Answers
}

// Load is what a peer tells every other about itself.
type Load struct {
	// Node carries the peer's labels, attributes (drivers), capacity and
	// status ("ready"; Drain while it leaves).
	Node *structs.Node `json:"node"`
	// Used is the sum of the resources of its live tasks.
	Used structs.Resources `json:"used"`
	// Tasks counts its live tasks.
	Tasks int `json:"tasks"`
	// HTTPAddr is where its API answers (forwarding, logs).
	HTTPAddr string `json:"http_addr,omitempty"`
	// State is its member lifecycle state (up, leaving, ...).
	State string `json:"state,omitempty"`
	// Seq is its admission counter: allocations admitted up to it are in
	// Used.
	Seq uint64 `json:"seq"`
	// Version numbers the loads of one incarnation: a receiver keeps the
	// newest (a load may reach it late over another path).
	Version uint64 `json:"version,omitempty"`
	// Delta marks a load sent on a stream after a full one: Node and
	// HTTPAddr are left out (unchanged since that full load); the rest is
	// whole. A delta without a full load of the same incarnation before it
	// is ignored (the sender sends a full one on every new stream).
	Delta bool `json:"delta,omitempty"`
	// Wire is the newest binary encoding of messages the sender reads
	// (wire.go; 0: JSON only): peers send it binary batches from then on.
	Wire uint8 `json:"wire,omitempty"`
}

// Admitted answers an admit.
type Admitted struct {
	AllocID string `json:"alloc_id"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	// Full says the refusal was for room only: the owner corrects its view
	// of the peer's usage (Used) and may still place other copies there.
	Full bool `json:"full,omitempty"`
	// Seq is the peer's admission counter after this admission: a later
	// report with Seq >= it lists the allocation if the peer still has it.
	Seq  uint64            `json:"seq"`
	Used structs.Resources `json:"used"`
}

// StopRequest asks for one allocation to stop.
type StopRequest struct {
	AllocID     string `json:"alloc_id"`
	JobID       string `json:"job_id"`
	Description string `json:"description,omitempty"`
}

// Report lists a peer's tasks for the receiver's slots.
type Report struct {
	// Seq is the peer's admission counter when the report was made.
	Seq uint64 `json:"seq"`
	// Slots are the slot ranges the peer believes the receiver owns; the
	// report is complete for the jobs of these slots.
	Slots [][2]uint16  `json:"slots"`
	Tasks []TaskReport `json:"tasks"`
	// Delta marks a report that lists only the tasks changed since the
	// previous report on the same stream: the receiver records them but
	// does not take a task missing from it as gone (a full report, at
	// least every FullReportInterval, does that).
	Delta bool `json:"delta,omitempty"`
}

// TaskReport is one task as its peer knows it: enough to rebuild the
// allocation's record when the owner lost it.
type TaskReport struct {
	AllocID         string            `json:"alloc_id"`
	JobID           string            `json:"job_id"`
	JobVersion      uint64            `json:"job_version"`
	Name            string            `json:"name"`
	Index           int               `json:"index"`
	Resources       structs.Resources `json:"resources"`
	Priority        int               `json:"priority"`
	ClientStatus    string            `json:"client_status"`
	DesiredStop     bool              `json:"desired_stop,omitempty"`
	TaskState       structs.TaskState `json:"task_state"`
	CreateTime      int64             `json:"create_time"`
	CreateIndex     uint64            `json:"create_index"`
	RescheduleCount int               `json:"reschedule_count"`
	Previous        string            `json:"previous,omitempty"`
}

// Encode renders m for the wire.
func Encode(m *Message) ([]byte, error) { return json.Marshal(m) }

// MaxBatch bounds the messages of one batch.
const MaxBatch = 10000

// EncodeBatch renders several messages as one packet (a JSON array): a
// peer sends everything one step produced for a peer at once, since each
// packet on the cluster bus costs a connection.
func EncodeBatch(ms []*Message) ([]byte, error) { return json.Marshal(ms) }

// DecodeBatch parses a packet of EncodeBatch, EncodeBinaryBatch (its
// first byte tells them apart) or a single JSON message, and checks each
// message as Decode does. A JSON array is read once, message by message
// (not split into raw messages first), and at most MaxBatch.
func DecodeBatch(b []byte) ([]*Message, error) {
	ms, _, err := decodeBatch(b)
	return ms, err
}

// decodeBatch is DecodeBatch, also saying whether the batch was binary.
func decodeBatch(b []byte) ([]*Message, bool, error) {
	if len(b) > MaxMessageSize {
		return nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	if len(b) > 0 && b[0] == wireV1 {
		ms, err := decodeWireBatch(b)
		return ms, true, err
	}
	if len(b) > 0 && b[0] < 0x20 && b[0] != ' ' && b[0] != '\t' && b[0] != '\n' && b[0] != '\r' {
		return nil, false, fmt.Errorf("%w: unknown encoding version byte %#x (this peer reads JSON and %#x)", ErrBadMessage, b[0], wireV1)
	}
	ms, err := decodeJSONBatch(b)
	return ms, false, err
}

func decodeJSONBatch(b []byte) ([]*Message, error) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) || b[i] != '[' {
		m, err := Decode(b)
		if err != nil {
			return nil, err
		}
		return []*Message{m}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // [
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	var out []*Message
	for dec.More() {
		if len(out) == MaxBatch {
			return nil, fmt.Errorf("%w: more than %d messages in a batch", ErrBadMessage, MaxBatch)
		}
		m := new(Message)
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		if err := check(m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the batch", ErrBadMessage)
	}
	return out, nil
}

// ErrBadMessage wraps every decoding failure.
var ErrBadMessage = errors.New("bad execution message")

// Decode parses and checks one message: size, kind, required parts and
// list lengths. It never panics on any input.
func Decode(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadMessage, len(b), MaxMessageSize)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if err := check(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// check checks a parsed message: kind, required parts and list lengths.
func check(m *Message) error {
	if m.From == "" {
		return fmt.Errorf("%w: no sender", ErrBadMessage)
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: %s message without %s", ErrBadMessage, m.Type, what)
	}
	switch m.Type {
	case MsgLoad:
		if m.Load == nil || (m.Load.Node == nil && !m.Load.Delta) {
			return bad("load")
		}
	case MsgAdmit:
		if err := checkAdmit(m); err != nil {
			return err
		}
	case MsgAdmitted:
		if err := checkAnswers(m); err != nil {
			return err
		}
	case MsgStop:
		if len(m.Stop) == 0 {
			return bad("allocations")
		}
		if len(m.Stop) > maxStopIDs {
			return fmt.Errorf("%w: %d stops, limit %d", ErrBadMessage, len(m.Stop), maxStopIDs)
		}
	case MsgReport:
		if m.Report == nil {
			return bad("report")
		}
		if len(m.Report.Tasks) > maxReportTasks || len(m.Report.Slots) > maxSlotRanges {
			return fmt.Errorf("%w: report too long", ErrBadMessage)
		}
		for _, r := range m.Report.Slots {
			if r[0] > r[1] || r[1] >= numSlots {
				return fmt.Errorf("%w: slot range %d-%d", ErrBadMessage, r[0], r[1])
			}
		}
		for _, t := range m.Report.Tasks {
			if t.AllocID == "" || t.JobID == "" {
				return fmt.Errorf("%w: task without allocation or job", ErrBadMessage)
			}
		}
	default:
		return fmt.Errorf("%w: unknown type %q", ErrBadMessage, m.Type)
	}
	return nil
}

// checkAdmit checks an admit: one copy with its job, or several copies
// of one job given once (each then gets it as its Job).
func checkAdmit(m *Message) error {
	bad := fmt.Errorf("%w: admit message without allocation and job", ErrBadMessage)
	switch {
	case m.Alloc != nil:
		if m.Alloc.ID == "" || m.Alloc.Job == nil || m.Alloc.JobID == "" || m.Job != nil || len(m.Allocs) > 0 {
			return bad
		}
		return nil
	case m.Job == nil || m.Job.ID == "" || len(m.Allocs) == 0:
		return bad
	case len(m.Allocs) > maxAdmits:
		return fmt.Errorf("%w: %d copies in an admit, limit %d", ErrBadMessage, len(m.Allocs), maxAdmits)
	}
	for _, a := range m.Allocs {
		if a == nil || a.ID == "" || a.JobID != m.Job.ID {
			return fmt.Errorf("%w: admit of a copy without ID or of another job", ErrBadMessage)
		}
		a.Job = m.Job
	}
	return nil
}

// checkAnswers checks an admitted message: one answer or several.
func checkAnswers(m *Message) error {
	switch {
	case m.Admitted != nil:
		if m.Admitted.AllocID == "" || len(m.Answers) > 0 {
			return fmt.Errorf("%w: admitted message without answer", ErrBadMessage)
		}
		return nil
	case len(m.Answers) == 0:
		return fmt.Errorf("%w: admitted message without answer", ErrBadMessage)
	case len(m.Answers) > maxAdmits:
		return fmt.Errorf("%w: %d answers, limit %d", ErrBadMessage, len(m.Answers), maxAdmits)
	}
	for _, ad := range m.Answers {
		if ad.AllocID == "" {
			return fmt.Errorf("%w: answer without allocation", ErrBadMessage)
		}
	}
	return nil
}
