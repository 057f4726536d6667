// Package bench is gantry's load generator: it starts a real control plane
// (in this process or as a `gantry server` child process), registers
// simulated nodes that speak the agent protocol over HTTP (register,
// heartbeat, blocking query on their allocations, status reports), submits a
// workload of jobs and measures the whole path from submit to running. After
// the run it checks the server's final state: no node over-committed, every
// task placed at most once and, unless the workload expects otherwise,
// exactly once.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gantry-project/gantry/internal/structs"
)

// Workload is a benchmark scenario, read from YAML (bench/workloads/).
type Workload struct {
	Name string `yaml:"name"`
	// Nodes are groups of identical simulated nodes.
	Nodes []NodeGroup `yaml:"nodes"`
	// Jobs are groups of identical jobs.
	Jobs []JobGroup `yaml:"jobs"`
	// Arrival says when jobs are submitted.
	Arrival Arrival `yaml:"arrival"`
	// HeartbeatTTL is the server's node TTL; simulated nodes heartbeat at
	// a third of it. Long TTLs keep heartbeats from dominating big runs.
	HeartbeatTTL structs.Duration `yaml:"heartbeat_ttl"`
	// SampleSize is the scheduler's candidate sample (0 = its default).
	SampleSize int `yaml:"sample_size"`
	// Timeout bounds the whole run (registration, submission, placement).
	Timeout structs.Duration `yaml:"timeout"`
	// Settle ends the run when nothing was placed for this long after
	// every job was submitted (workloads that cannot place everything,
	// e.g. under preemption). 0 = 10s.
	Settle structs.Duration `yaml:"settle"`
	// ExpectUnplaced is set when the workload asks for more than fits, so
	// missing placements are reported but do not fail the check.
	ExpectUnplaced bool `yaml:"expect_unplaced"`
}

// NodeGroup is Count nodes of one size. Each label lists values that are
// given to the group's nodes in turn (node i gets values[i % len]).
type NodeGroup struct {
	Count    int                 `yaml:"count"`
	CPU      int64               `yaml:"cpu"`
	MemoryMB int64               `yaml:"memory_mb"`
	Labels   map[string][]string `yaml:"labels"`
}

// JobGroup is Count jobs of Tasks copies each.
type JobGroup struct {
	// Name prefixes the job IDs: <name>-<i>.
	Name     string          `yaml:"name"`
	Count    int             `yaml:"count"`
	Tasks    int             `yaml:"tasks"`
	Type     structs.JobType `yaml:"type"`
	Priority int             `yaml:"priority"`
	CPU      int64           `yaml:"cpu"`
	MemoryMB int64           `yaml:"memory_mb"`
	// RunFor is the mock task's run time (0 = a service runs until
	// stopped, a batch task exits at once).
	RunFor      structs.Duration     `yaml:"run_for"`
	Constraints []structs.Constraint `yaml:"constraints"`
	Placement   string               `yaml:"placement"`
	// StartAfter delays this group's first submission (e.g. high-priority
	// work arriving on a full cluster, to exercise preemption).
	StartAfter structs.Duration `yaml:"start_after"`
}

// Arrival is the submission pattern: Rate jobs per second, or all at once
// (Rate 0) with Concurrency submitters.
type Arrival struct {
	Rate        float64 `yaml:"rate"`
	Concurrency int     `yaml:"concurrency"`
}

// ErrInvalidWorkload wraps every validation error of a workload.
var ErrInvalidWorkload = errors.New("invalid workload")

// LoadWorkload reads and validates a workload file.
func LoadWorkload(path string) (*Workload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	w, err := ParseWorkload(data)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", path, err)
	}
	return w, nil
}

// ParseWorkload decodes a workload strictly (unknown fields are errors) and
// validates it.
func ParseWorkload(data []byte) (*Workload, error) {
	var w Workload
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWorkload, err)
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// Validate fills defaults and reports every bad field.
func (w *Workload) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if w.Name == "" {
		bad("name", "is required")
	}
	if len(w.Nodes) == 0 {
		bad("nodes", "at least one node group is required")
	}
	for i, g := range w.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if g.Count <= 0 {
			bad(f+".count", "must be > 0 (got %d)", g.Count)
		}
		if g.CPU <= 0 || g.MemoryMB <= 0 {
			bad(f, "cpu and memory_mb must be > 0 (got %d, %d)", g.CPU, g.MemoryMB)
		}
		for k, vs := range g.Labels {
			if len(vs) == 0 {
				bad(f+".labels."+k, "needs at least one value")
			}
		}
	}
	if len(w.Jobs) == 0 {
		bad("jobs", "at least one job group is required")
	}
	names := map[string]bool{}
	for i, g := range w.Jobs {
		f := fmt.Sprintf("jobs[%d]", i)
		if g.Name == "" {
			bad(f+".name", "is required")
		} else if names[g.Name] {
			bad(f+".name", "%q is used by another group", g.Name)
		}
		names[g.Name] = true
		if g.Count <= 0 {
			bad(f+".count", "must be > 0 jobs (got %d)", g.Count)
		}
		if g.Tasks <= 0 {
			bad(f+".tasks", "must be > 0 tasks per job (got %d)", g.Tasks)
		}
		switch g.Type {
		case "":
			w.Jobs[i].Type = structs.JobTypeBatch
		case structs.JobTypeBatch, structs.JobTypeService:
		default:
			bad(f+".type", "must be batch or service (got %q)", g.Type)
		}
		if g.Priority < 0 || g.Priority > structs.MaxPriority {
			bad(f+".priority", "must be 1-100, or 0 for the default (got %d)", g.Priority)
		}
		if g.CPU <= 0 || g.MemoryMB <= 0 {
			bad(f, "cpu and memory_mb must be > 0 (got %d, %d)", g.CPU, g.MemoryMB)
		}
		if g.RunFor < 0 || g.StartAfter < 0 {
			bad(f, "run_for and start_after must be >= 0")
		}
	}
	if w.Arrival.Rate < 0 {
		bad("arrival.rate", "must be >= 0 jobs/s (got %g)", w.Arrival.Rate)
	}
	if w.Arrival.Concurrency < 0 {
		bad("arrival.concurrency", "must be >= 0 (got %d)", w.Arrival.Concurrency)
	}
	if w.HeartbeatTTL < 0 || w.Timeout < 0 || w.Settle < 0 {
		bad("heartbeat_ttl/timeout/settle", "must be >= 0")
	}
	if w.SampleSize < 0 {
		bad("sample_size", "must be >= 0 (got %d)", w.SampleSize)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidWorkload, errors.Join(errs...))
	}
	if w.Arrival.Concurrency == 0 {
		w.Arrival.Concurrency = 16
	}
	if w.HeartbeatTTL == 0 {
		w.HeartbeatTTL = structs.Duration(time.Minute)
	}
	if w.Timeout == 0 {
		w.Timeout = structs.Duration(10 * time.Minute)
	}
	if w.Settle == 0 {
		w.Settle = structs.Duration(10 * time.Second)
	}
	return nil
}

// TotalNodes is the number of simulated nodes.
func (w *Workload) TotalNodes() int {
	n := 0
	for _, g := range w.Nodes {
		n += g.Count
	}
	return n
}

// TotalJobs and TotalTasks count what the workload submits.
func (w *Workload) TotalJobs() int {
	n := 0
	for _, g := range w.Jobs {
		n += g.Count
	}
	return n
}

func (w *Workload) TotalTasks() int {
	n := 0
	for _, g := range w.Jobs {
		n += g.Count * g.Tasks
	}
	return n
}

// job builds job i of group g.
func (g *JobGroup) job(i int) *structs.Job {
	cfg := map[string]any{"run_for": time.Duration(g.RunFor).String()}
	return &structs.Job{
		ID: fmt.Sprintf("%s-%d", g.Name, i), Name: fmt.Sprintf("%s-%d", g.Name, i),
		Type: g.Type, Priority: g.Priority, Count: g.Tasks,
		Constraints: g.Constraints, Placement: g.Placement,
		Resources: structs.Resources{CPU: g.CPU, MemoryMB: g.MemoryMB},
		Driver:    "mock", Config: cfg,
	}
}

// node builds node i (0-based within the group) of group gi.
func (g *NodeGroup) node(gi, i int) *structs.Node {
	name := fmt.Sprintf("sim-%d-%05d", gi, i)
	var labels map[string]string
	if len(g.Labels) > 0 {
		labels = make(map[string]string, len(g.Labels))
		for k, vs := range g.Labels {
			labels[k] = vs[i%len(vs)]
		}
	}
	return &structs.Node{
		ID: name, Name: name, Labels: labels,
		Attributes: map[string]string{"os": "linux", "arch": "amd64", "driver.mock": "1"},
		Capacity:   structs.Resources{CPU: g.CPU, MemoryMB: g.MemoryMB},
	}
}
