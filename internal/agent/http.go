package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/driver"
	"github.com/gantry-project/gantry/internal/driver/tasklog"
	"github.com/gantry-project/gantry/internal/structs"
)

// Self is the body of GET /v1/agent/self.
type Self struct {
	NodeID     string            `json:"node_id"`
	Name       string            `json:"name"`
	HTTPAddr   string            `json:"http_addr"`
	Resources  structs.Resources `json:"resources"`
	Labels     map[string]string `json:"labels,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Allocations counts the allocations the agent knows, by client status.
	Allocations map[string]int `json:"allocations"`
	Drivers     []string       `json:"drivers"`
}

// logPollInterval is how often a followed log is checked for new bytes.
const logPollInterval = 100 * time.Millisecond

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agent/self", a.handleSelf)
	mux.HandleFunc("GET /v1/agent/allocation/{alloc_id}/logs", a.serversOnly(a.handleLogs))
	mux.HandleFunc("POST /v1/agent/allocation/{alloc_id}/exec", a.serversOnly(a.handleExec))
	mux.HandleFunc("POST /v1/agent/allocation/{alloc_id}/restart", a.serversOnly(a.handleRestart))
	mux.HandleFunc("POST /v1/agent/allocation/{alloc_id}/signal", a.serversOnly(a.handleSignal))
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: msg})
}

func (a *Agent) handleSelf(w http.ResponseWriter, _ *http.Request) {
	n := a.Node()
	s := Self{NodeID: n.ID, Name: n.Name, HTTPAddr: n.HTTPAddr, Resources: n.Capacity,
		Labels: n.Labels, Attributes: n.Attributes, Allocations: map[string]int{}}
	for name := range a.drivers {
		s.Drivers = append(s.Drivers, name)
	}
	a.mu.Lock()
	for _, r := range a.runners {
		s.Allocations[r.snapshot().ClientStatus]++
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// handleLogs serves a task's log from an offset; with follow=true it keeps
// sending new bytes until the task is dead and the file drained, or the
// client goes away.
func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("alloc_id")
	stream := r.URL.Query().Get("type")
	file := driver.StdoutFile
	switch stream {
	case "", "stdout":
	case "stderr":
		file = driver.StderrFile
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("type must be \"stdout\" or \"stderr\" (got %q)", stream))
		return
	}
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("follow must be true or false (got %q)", v))
			return
		}
		follow = b
	}
	var offset int64
	if v := r.URL.Query().Get("offset"); v != "" {
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset must be a byte count >= 0 (got %q)", v))
			return
		}
		offset = o
	}
	a.mu.Lock()
	run := a.runners[id]
	a.mu.Unlock()
	var rec *allocRecord
	if run != nil {
		rec = run.snapshot()
	} else if a.store != nil {
		rec = a.store.get(id)
	}
	if rec == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("allocation %s is not known to this agent", id))
		return
	}
	// The main task's log is in the allocation's directory; an extra
	// task's in its own (TaskDir).
	taskDir := ""
	if task := r.URL.Query().Get("task"); task != "" {
		job := rec.Alloc.Job
		switch {
		case job == nil || task == job.MainTask():
		case job.HasTask(task):
			taskDir = task
		default:
			writeError(w, http.StatusNotFound, fmt.Sprintf("allocation %s has no task %q (its tasks: %s)", id, task, strings.Join(taskNames(job), ", ")))
			return
		}
	}
	// dead reports whether no more output can come.
	dead := func() bool { return run == nil || run.finished() }
	// The log is a set of rotated files read as one stream (package
	// tasklog): offsets count from the task's first byte of output, and a
	// follower moves on to each new file as the shim rotates.
	logs := tasklog.NewReader(TaskDir(filepath.Join(a.cfg.DataDir, allocsDir, id), taskDir), file, offset)
	defer func() { _ = logs.Close() }()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32*1024)
	tick := time.NewTicker(logPollInterval)
	defer tick.Stop()
	for {
		// Read the state before the log: output written before the task
		// died is then read in this pass.
		wasDead := dead()
		for {
			n, err := logs.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				a.log.Warn("reading task log", "alloc", id, "err", err)
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || wasDead {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
