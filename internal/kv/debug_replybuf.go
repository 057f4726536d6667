package kv

import "strings"

// debugReplyBuffer is DEBUG REPLYBUFFER PEAK-RESET-TIME <never|reset|ms>
// and DEBUG REPLYBUFFER RESIZING <0|1>, as Redis 7.0: the time between
// peak resets of the clients' reply buffers (never: -1; reset: the default
// 5000; a negative number is never too) and whether the cron resizes them
// (read with atoi: anything but a number other than 0 turns it off).
func debugReplyBuffer(c *Client) {
	rb := &c.srv.rbufs
	switch strings.ToLower(string(c.Args[2])) {
	case "peak-reset-time":
		switch arg := strings.ToLower(string(c.Args[3])); arg {
		case "never":
			rb.peakResetMs.Store(-1)
		case "reset":
			rb.peakResetMs.Store(replyPeakResetDefault)
		default:
			n, ok := c.ArgInt(3)
			if !ok {
				return
			}
			rb.peakResetMs.Store(n)
		}
	case "resizing":
		rb.resizeOff.Store(cAtoiInt(c.Args[3]) == 0)
	default:
		debugSubcommandError(c)
		return
	}
	c.W.OK()
}
