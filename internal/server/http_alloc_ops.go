package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/structs"
)

// Operations on one allocation: exec, restart and signal reach the agent
// running it (any server relays them, as it does logs); stop is a write
// on the leader, and the scheduler then replaces the copy.

// DescAllocStopped is the description of an allocation `alloc stop` ends.
const DescAllocStopped = "stopped by alloc stop"

// maxExecRelays bounds the exec sessions one server relays at once.
const maxExecRelays = 256

// agentOf finds an allocation in the request's scope and its node's agent
// address, or returns the error to answer.
func (s *Server) agentOf(r *http.Request, want acl.Capability) (*structs.Allocation, *structs.Node, error) {
	snap := s.state.Snapshot()
	a, err := snap.AllocByPrefix(nil, r.PathValue("id"))
	if err != nil {
		return nil, nil, err
	}
	if err := s.allocInScope(r, a, want); err != nil {
		return nil, nil, err
	}
	if a.Terminal() {
		return nil, nil, &httpError{code: http.StatusConflict, msg: fmt.Sprintf("allocation %s is not running (%s, %s)", a.ID, a.DesiredStatus, a.ClientStatus)}
	}
	node := snap.NodeByID(a.NodeID)
	if node == nil || node.HTTPAddr == "" {
		return nil, nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: node %s has no known agent address", a.ID, a.NodeID)}
	}
	if err := checkHTTPAddr(node.HTTPAddr); err != nil {
		return nil, nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: node %s has an invalid agent address %q: %v", a.ID, node.Name, node.HTTPAddr, err)}
	}
	return a, node, nil
}

// agentURL is the agent's route for an allocation operation.
func (s *Server) agentURL(node *structs.Node, allocID, op string, q url.Values) string {
	u := url.URL{Scheme: s.scheme(), Host: node.HTTPAddr, Path: "/v1/agent/allocation/" + url.PathEscape(allocID) + "/" + op, RawQuery: q.Encode()}
	return u.String()
}

// callAgent sends a bodiless POST to the agent and relays an error answer.
func (s *Server) callAgent(ctx context.Context, a *structs.Allocation, node *structs.Node, op string, q url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.agentURL(node, a.ID, op, q), nil)
	if err != nil {
		return err
	}
	resp, err := s.logClient.Do(req)
	if err != nil {
		return &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: agent of node %s (%s) is unreachable: %v", a.ID, node.Name, node.HTTPAddr, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return agentError(a, node, resp)
}

// agentError turns an agent's non-2xx answer into the server's.
func agentError(a *structs.Allocation, node *structs.Node, resp *http.Response) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: agent of node %s answered with a redirect (%d), which is not followed", a.ID, node.Name, resp.StatusCode)}
	}
	var er api.ErrorResponse
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := strings.TrimSpace(string(b))
	if jsonErr := json.Unmarshal(b, &er); jsonErr == nil && er.Error != "" {
		msg = er.Error
	}
	code := resp.StatusCode
	if code < 400 || code > 599 {
		code = http.StatusBadGateway
	}
	return &httpError{code: code, msg: fmt.Sprintf("agent of node %s: %s", node.Name, msg)}
}

func (s *Server) allocRestart(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.AllocRestartRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return nil, err
		}
	}
	a, node, err := s.agentOf(r, acl.CapAllocLifecycle)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if req.Task != "" {
		q.Set("task", req.Task)
	}
	if err := s.callAgent(r.Context(), a, node, "restart", q); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) allocSignal(w http.ResponseWriter, r *http.Request) (any, error) {
	var req api.AllocSignalRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Signal == "" {
		return nil, badRequest("signal: is required (e.g. \"SIGHUP\")")
	}
	a, node, err := s.agentOf(r, acl.CapAllocLifecycle)
	if err != nil {
		return nil, err
	}
	q := url.Values{"signal": {req.Signal}}
	if req.Task != "" {
		q.Set("task", req.Task)
	}
	if err := s.callAgent(r.Context(), a, node, "signal", q); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// allocStop stops one allocation through a plan, as the scheduler's
// stops go, and wakes the job so the scheduler places its replacement.
func (s *Server) allocStop(_ http.ResponseWriter, r *http.Request) (any, error) {
	snap := s.state.Snapshot()
	a, err := snap.AllocByPrefix(nil, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.allocInScope(r, a, acl.CapAllocLifecycle); err != nil {
		return nil, err
	}
	if a.Terminal() {
		return nil, &httpError{code: http.StatusConflict, msg: fmt.Sprintf("allocation %s is not running (%s, %s)", a.ID, a.DesiredStatus, a.ClientStatus)}
	}
	prio := a.Priority
	if job := snap.JobByID(a.JobID); job != nil {
		prio = job.Priority
	}
	res, err := s.SubmitPlan(r.Context(), &structs.Plan{JobID: a.JobID, Priority: prio, Stops: []structs.AllocStop{{
		AllocID: a.ID, NodeID: a.NodeID, Desired: structs.AllocDesiredStop, Description: DescAllocStopped,
	}}})
	if err != nil {
		return nil, err
	}
	s.sched.Enqueue(a.JobID, prio)
	return &api.AllocStopResponse{Index: res.Index}, nil
}

// allocExec relays an interactive exec: it upgrades the agent's connection
// first, so an agent's refusal reaches the client as an ordinary HTTP
// error, then the client's, and copies bytes both ways until either side
// closes.
func (s *Server) allocExec(w http.ResponseWriter, r *http.Request) (any, error) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.ExecUpgrade) {
		return nil, badRequest("exec needs a connection upgrade (Connection: Upgrade, Upgrade: %s); use `gantry alloc exec`", api.ExecUpgrade)
	}
	q := r.URL.Query()
	if len(q["cmd"]) == 0 || q.Get("cmd") == "" {
		return nil, badRequest("cmd: a command is required (cmd=prog&cmd=arg...)")
	}
	a, node, err := s.agentOf(r, acl.CapAllocExec)
	if err != nil {
		return nil, err
	}
	if n := s.execRelays.Add(1); n > maxExecRelays {
		s.execRelays.Add(-1)
		return nil, &httpError{code: http.StatusTooManyRequests, msg: fmt.Sprintf("this server already relays %d exec sessions", maxExecRelays)}
	}
	defer s.execRelays.Add(-1)
	aq := url.Values{}
	for _, k := range []string{"cmd", "task", "tty", "width", "height"} {
		if v, ok := q[k]; ok {
			aq[k] = v
		}
	}
	// The session outlives the request's context once hijacked; it ends
	// when either connection closes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.agentURL(node, a.ID, "exec", aq), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", api.ExecUpgrade)
	resp, err := s.logClient.Do(req)
	if err != nil {
		return nil, &httpError{code: http.StatusBadGateway,
			msg: fmt.Sprintf("allocation %s: agent of node %s (%s) is unreachable: %v", a.ID, node.Name, node.HTTPAddr, err)}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, agentError(a, node, resp)
	}
	agent, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, &httpError{code: http.StatusBadGateway, msg: "agent switched protocols but gave no connection"}
	}
	defer agent.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.ExecUpgrade+"\r\n\r\n"); err != nil {
		return nil, nil
	}
	s.logger.Info("alloc exec", "alloc", a.ID, "node", node.Name, "cmd", q["cmd"])
	relay(conn, brw.Reader, agent)
	return nil, nil
}

// relay copies client -> agent and agent -> client until one side ends,
// then closes both.
func relay(client io.ReadWriteCloser, clientBuf *bufio.Reader, agent io.ReadWriteCloser) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			_ = client.Close()
			_ = agent.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer closeBoth()
		_, _ = io.Copy(agent, clientBuf) // buffered bytes first, then the connection
	}()
	go func() {
		defer wg.Done()
		defer closeBoth()
		_, err := io.Copy(client, agent)
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
	}()
	wg.Wait()
}
