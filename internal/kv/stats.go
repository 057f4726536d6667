package kv

// CommandsProcessed is the number of commands served since start (INFO's
// total_commands_processed); the peer's HTTP side derives ops/s from it.
func (s *Server) CommandsProcessed() int64 { return s.totalCommands.Load() }
