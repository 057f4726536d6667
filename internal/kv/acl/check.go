package acl

import "github.com/gantry-project/gantry/internal/kv/command"

// Reason is why a command was refused (the reason of an ACL LOG entry).
type Reason int

// The reasons, ordered as Redis ranks them when selectors disagree: a key
// or channel refusal says more than a command refusal.
const (
	Allowed Reason = iota
	DeniedCommand
	DeniedKey
	DeniedAuth
	DeniedChannel
)

func (r Reason) String() string {
	switch r {
	case DeniedCommand:
		return "command"
	case DeniedKey:
		return "key"
	case DeniedAuth:
		return "auth"
	case DeniedChannel:
		return "channel"
	}
	return ""
}

// Denial is a refused command: the reason and the command, key or
// channel refused.
type Denial struct {
	Reason Reason
	Object string
}

// Error is the reply to the client.
func (d Denial) Error() string {
	switch d.Reason {
	case DeniedKey:
		return "NOPERM this user has no permissions to access one of the keys used as arguments"
	case DeniedChannel:
		return "NOPERM this user has no permissions to access one of the channels used as arguments"
	}
	return "NOPERM this user has no permissions to run the '" + d.Object + "' command"
}

// DryRun is the reply to ACL DRYRUN.
func (d Denial) DryRun() string {
	switch d.Reason {
	case DeniedKey:
		return "This user has no permissions to access the '" + d.Object + "' key"
	case DeniedChannel:
		return "This user has no permissions to access the '" + d.Object + "' channel"
	}
	return "This user has no permissions to run the '" + d.Object + "' command"
}

// Request is one command to check: the catalog's command, its arguments
// and the keys and channels the server extracted from them.
type Request struct {
	Cmd      Command
	Args     [][]byte
	Keys     [][]byte
	Channels [][]byte
	// Patterns: the channels are PSUBSCRIBE patterns, matched literally.
	Patterns bool
}

// Check decides whether the user may run a request. The caller skips it
// for an Unrestricted user.
func (u *User) Check(r *Request) (Denial, bool) {
	if u.unrestricted {
		return Denial{}, true
	}
	best := Denial{Reason: DeniedCommand, Object: r.Cmd.Name()}
	bestIdx := -1
	for i := -1; i < len(u.selectors); i++ {
		s := u.root
		if i >= 0 {
			s = u.selectors[i]
		}
		d, idx := s.check(r)
		if d.Reason == Allowed {
			return Denial{}, true
		}
		if d.Reason > best.Reason || (d.Reason == best.Reason && idx > bestIdx) {
			best, bestIdx = d, idx
		}
	}
	return best, false
}

// check returns the refusal of one selector and the index of the key or
// channel refused.
func (s *Selector) check(r *Request) (Denial, int) {
	ci := r.Cmd.ci
	if ci == nil || !s.commandAllowed(ci, r.Args) {
		return Denial{Reason: DeniedCommand, Object: r.Cmd.Name()}, 0
	}
	if !s.allKeys {
		for i, k := range r.Keys {
			if !s.keyAllowed(k, r.Cmd.KeyAccess(r.Args, i)) {
				return Denial{Reason: DeniedKey, Object: string(k)}, i
			}
		}
	}
	if !s.allChannels {
		for i, ch := range r.Channels {
			if !s.channelAllowed(ch, r.Patterns) {
				return Denial{Reason: DeniedChannel, Object: string(ch)}, i
			}
		}
	}
	return Denial{}, 0
}

func (s *Selector) commandAllowed(ci *cmdInfo, args [][]byte) bool {
	if s.bit(ci.id) {
		return true
	}
	if fa := s.firstArgs[ci.id]; len(fa) > 0 && len(args) > 1 {
		for _, a := range fa {
			if command.EqualFold(args[1], a) {
				return true
			}
		}
	}
	return false
}

func (s *Selector) keyAllowed(key []byte, access uint8) bool {
	for _, p := range s.keys {
		if p.flags&access != access {
			continue
		}
		if command.GlobMatch([]byte(p.pattern), key) {
			return true
		}
	}
	return false
}

// channelAllowed: a channel matches the selector's patterns; a PSUBSCRIBE
// pattern must equal one of them.
func (s *Selector) channelAllowed(ch []byte, literal bool) bool {
	for _, p := range s.channels {
		if literal {
			if p == string(ch) {
				return true
			}
		} else if command.GlobMatch([]byte(p), ch) {
			return true
		}
	}
	return false
}
