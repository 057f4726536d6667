package command

// Event is a keyspace notification (notify-keyspace-events) a handler
// raises: its class is the flag character of notify-keyspace-events
// ('g' generic, '$' string, 'l' list, 's' set, 'h' hash, 'z' sorted set,
// 't' stream), Name the event, Key the key.
type Event struct {
	Class byte
	Name  string
	Key   []byte
	DB    int // the database of the key
}

// Notify raises a keyspace notification. A handler that raises any
// replaces the server's default event for the command (its name, on its
// first key) by its own, as Redis's commands each raise theirs.
func (c *Ctx) Notify(class byte, name string, key []byte) {
	c.events = append(c.events, Event{Class: class, Name: name, Key: key, DB: c.DB})
	c.notified = true
}

// NotifyDB raises a notification on a key of database db (MOVE's
// move_to, COPY ... DB's copy_to).
func (c *Ctx) NotifyDB(db int, class byte, name string, key []byte) {
	c.events = append(c.events, Event{Class: class, Name: name, Key: key, DB: db})
	c.notified = true
}

// Events returns the notifications raised since ResetEvents, and whether
// the handler raised its own at all.
func (c *Ctx) Events() ([]Event, bool) { return c.events, c.notified }

// ResetEvents forgets the raised notifications.
func (c *Ctx) ResetEvents() {
	if c.notified {
		clear(c.events)
		c.events = c.events[:0]
		c.notified = false
	}
}
