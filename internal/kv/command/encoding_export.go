package command

import "github.com/gantry-project/gantry/internal/kv/keyspace"

// Encoding names the Redis encoding of a value (OBJECT ENCODING), for the
// server's DEBUG OBJECT.
func Encoding(e *keyspace.Entry) string { return encoding(e) }
