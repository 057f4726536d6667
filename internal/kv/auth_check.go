package kv

// AuthRequired reports whether clients must log in: the default user has
// a password (requirepass, ACL) or is off. Other front ends of this store
// (the peer's HTTP API) ask it.
func (s *Server) AuthRequired() bool { return !s.defaultAuthed() }

// CheckUser reports whether user logs in with pass, as AUTH user pass
// would ("default" for requirepass).
func (s *Server) CheckUser(user, pass string) bool { return s.users.Authenticate(user, pass) != nil }
