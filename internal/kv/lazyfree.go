package kv

import (
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/kv/keyspace"
)

// initLazyFree gives every database the server's lazy freer
// (keyspace.LazyFree); the server runs it from New to Close.
func (s *Server) initLazyFree() {
	s.lazy = keyspace.NewLazyFree()
	s.lazy.SetRelease(bigFlush, debug.FreeOSMemory)
	for _, d := range s.dbs {
		d.KS.SetLazyFree(s.lazy)
	}
}

// bigFlush is the estimated size of the keys of a FLUSHALL or FLUSHDB
// after which the freer hands the memory back to the system
// (keyspace.LazyFree.SetRelease): a collection and a scavenge of the
// whole heap, off the command's path, worth it only when much was freed.
const bigFlush = 32 << 20

// lazyFreeParams are Redis's lazyfree-lazy-* settings: which deletions
// other than UNLINK and FLUSH... ASYNC leave big values to the lazy freer.
// lazyfree-lazy-server-del (implicit deletes: a key overwritten by SET,
// RENAME...) is kept and shown but gantry drops those values at once.
func lazyFreeParams() map[string]configParam {
	flag := func(get func(s *Server) *atomic.Bool) configParam {
		return configParam{
			get: func(s *Server) string { return yesNo(get(s).Load()) },
			set: func(s *Server, v string) string {
				switch strings.ToLower(v) {
				case "yes":
					get(s).Store(true)
				case "no":
					get(s).Store(false)
				default:
					return "argument must be 'yes' or 'no'"
				}
				return ""
			},
		}
	}
	var serverDel atomic.Bool // stored only
	return map[string]configParam{
		"lazyfree-lazy-eviction":   flag(func(s *Server) *atomic.Bool { return &s.lazy.Eviction }),
		"lazyfree-lazy-expire":     flag(func(s *Server) *atomic.Bool { return &s.lazy.Expire }),
		"lazyfree-lazy-user-del":   flag(func(s *Server) *atomic.Bool { return &s.lazy.UserDel }),
		"lazyfree-lazy-user-flush": flag(func(s *Server) *atomic.Bool { return &s.lazy.UserFlush }),
		"lazyfree-lazy-server-del": flag(func(*Server) *atomic.Bool { return &serverDel }),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
