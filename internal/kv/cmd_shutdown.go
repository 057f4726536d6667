package kv

import (
	"github.com/gantry-project/gantry/internal/kv/command"
)

// cmdShutdown is SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: the server
// asks its process to stop as after SIGTERM (Config.Shutdown: the log is
// flushed, the replication state written) and closes the connection
// without a reply, as Redis. SAVE first rewrites the log into a snapshot
// (an error refuses the shutdown unless FORCE). gantry stops at once
// (it does not wait for replicas to catch up as Redis's
// shutdown-timeout does), so NOW changes nothing and ABORT finds no
// shutdown to abort.
func cmdShutdown(c *Client) {
	s := c.srv
	var save, nosave, abort, force, other bool
	for _, a := range c.Args[1:] {
		switch {
		case command.EqualFold(a, "save"):
			save = true
		case command.EqualFold(a, "nosave"):
			nosave = true
		case command.EqualFold(a, "abort"):
			abort = true
		case command.EqualFold(a, "force"):
			force, other = true, true
		case command.EqualFold(a, "now"):
			other = true
		default:
			c.W.Error(command.ErrSyntax)
			return
		}
	}
	if save && nosave || abort && (save || nosave || other) {
		c.W.Error(command.ErrSyntax)
		return
	}
	if abort {
		c.W.Error("ERR No shutdown in progress.")
		return
	}
	if s.cfg.Shutdown == nil {
		c.W.Error("ERR SHUTDOWN is not available: this server is embedded, its owner stops it")
		return
	}
	if save {
		if s.aof == nil && !force {
			c.W.Error("ERR Errors trying to SHUTDOWN. Check logs.")
			s.cfg.Logger.Printf("SHUTDOWN SAVE: no data directory configured")
			return
		}
		if s.aof != nil {
			done, err := s.aof.StartRewrite()
			if err == nil {
				err = <-done
			}
			if err != nil && !force {
				s.cfg.Logger.Printf("SHUTDOWN SAVE: %v", err)
				c.W.Error("ERR Errors trying to SHUTDOWN. Check logs.")
				return
			}
		}
	}
	s.cfg.Logger.Printf("SHUTDOWN from client %d: stopping", c.id)
	s.cfg.Shutdown()
	c.closing = true
}
