package kv

import (
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/kv/command"
)

// Replication guards (docs/kv.md, "Replication"), as Redis's:
//
//   - min-replicas-to-write N with min-replicas-max-lag S: a primary with
//     fewer than N good replicas (online, last REPLCONF ACK at most S
//     seconds old, counted once a second by repl.State) refuses writes with
//     -NOREPLICAS: write commands, EXEC of a transaction with a write, and
//     the writes of scripts. 0 for either turns the guard off.
//   - replica-serve-stale-data no: a replica whose link to its primary is
//     not up (connecting, syncing or down) answers -MASTERDOWN to every
//     command not flagged stale (INFO, CONFIG, REPLICAOF, ROLE, AUTH,
//     MULTI, the pub/sub commands ...), and to EXEC of a transaction with
//     one.
//
// Either refusal inside MULTI fails the transaction (EXECABORT), as Redis's.
// The dispatcher checks replGuards, one atomic load, before anything else.

const (
	errNoReplicas = "NOREPLICAS Not enough good replicas to write."
	errMasterDown = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."

	defaultMinReplicasLag = 10
)

const (
	guardMinReplicas uint32 = 1 << iota // min-replicas-to-write and -max-lag set
	guardNoStale                        // replica-serve-stale-data no
)

// setReplGuards recomputes replGuards after a parameter changed.
func (s *Server) setReplGuards() {
	var g uint32
	if s.minReplicas.Load() > 0 && s.minReplicasLag.Load() > 0 {
		g |= guardMinReplicas
	}
	if !s.serveStaleData.Load() {
		g |= guardNoStale
	}
	s.replGuards.Store(g)
}

// replGuardRefusal returns the error a command gets from the replication
// guards, "" when it may run.
func (s *Server) replGuardRefusal(c *Client, cmd *command.Command) string {
	g := s.replGuards.Load()
	isExec := c.multi && cmd.Name == "exec"
	if g&guardMinReplicas != 0 && (cmd.Has(command.Write) || isExec && c.queuedWrite) {
		if msg := s.minReplicasRefusal(); msg != "" {
			return msg
		}
	}
	if g&guardNoStale != 0 && (!cmd.Has(command.Stale) || isExec && c.queuedNoStale) &&
		s.repl.IsReplica() && !s.repl.LinkUp() {
		return errMasterDown
	}
	return ""
}

// minReplicasRefusal is -NOREPLICAS when this server is a primary with
// fewer good replicas than min-replicas-to-write, "" otherwise; scripts
// check it before each write they make.
func (s *Server) minReplicasRefusal() string {
	if s.replGuards.Load()&guardMinReplicas == 0 || s.repl.IsReplica() {
		return ""
	}
	if int64(s.repl.GoodReplicas()) < s.minReplicas.Load() {
		return errNoReplicas
	}
	return ""
}

// replInfo is INFO's Replication section: repl.State's lines, with
// min_slaves_good_slaves before connected_slaves while the guard is on,
// as Redis shows it.
func (s *Server) replInfo() []string {
	lines := s.repl.Info()
	if s.replGuards.Load()&guardMinReplicas == 0 {
		return lines
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "connected_slaves:") {
			good := "min_slaves_good_slaves:" + strconv.Itoa(s.repl.GoodReplicas())
			return append(lines[:i:i], append([]string{good}, lines[i:]...)...)
		}
	}
	return lines
}
