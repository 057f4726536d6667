//go:build !linux

package kv

import "net"

type eventLoop struct{ io ioStats }

func (l *eventLoop) add(c *Client) {}

func connFD(nc net.Conn) (int, bool) { return 0, false }

// startLoops reports that event loops are not available on this system.
func (s *Server) startLoops(n int) bool { return false }

func (s *Server) wakeLoops() {}

func (l *eventLoop) requestCron() {}

func (l *eventLoop) postMail(c *Client) {}
