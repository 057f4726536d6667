package kv

import "github.com/gantry-project/gantry/internal/kv/command"

// serveMail sends a goroutine-served subscriber its messages: more means
// replies were sent (go round again), !ok that the client must close.
func (c *Client) serveMail() (more, ok bool) {
	if !c.hasMail() {
		return false, true
	}
	if !c.takeMail() {
		_ = c.flush()
		return false, false
	}
	c.noteMem() // counts while the flush below waits on a slow reader
	if err := c.flush(); err != nil {
		return false, false
	}
	c.deadline = true // a publisher may have set a deadline in the past
	return true, true
}

// idleTooLong reports whether a client has been idle past timeout.
func (c *Client) idleTooLong() bool {
	t := c.srv.lim.timeoutMs.Load()
	return t > 0 && c.srv.nowMs()-c.lastIO > t
}

// pubsubGate runs before a subscribed client's command: it moves the
// messages published so far in front of the command's reply, and applies
// RESP2's subscribed-mode rules. true means the command was answered.
func (s *Server) pubsubGate(c *Client, cmd *command.Command) bool {
	if !c.takeMail() {
		return true
	}
	if cmd.Name == "ping" {
		return pingSubscribed(c)
	}
	return subscribedModeRefusal(c, cmd)
}
