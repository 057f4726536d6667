package peer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// NodeConfig configures a Node. Durations are measured on the clock the
// caller passes to Tick, Step and Apply.
type NodeConfig struct {
	// ID is this peer's node ID (see NewNodeID).
	ID NodeID
	// Addr is the address clients reach this peer's Redis port on
	// (host:port, the announced address).
	Addr string
	// BusPort is the gossip port announced with Addr (CLUSTER NODES shows
	// it after '@'; redis-cli MEETs it).
	BusPort int
	// NodeTimeout is how long a peer may stay silent before this node
	// suspects it (PFAIL); a primary fails (FAIL) once a majority of
	// primaries suspect it within FailReportValidity.
	NodeTimeout time.Duration
	// FailReportValidity is how long a failure report from another primary
	// counts (Redis uses twice the node timeout).
	FailReportValidity time.Duration
	// HeartbeatInterval is how often the node sends its header (epochs,
	// role, slots, offset, suspicions) to every peer while it does not
	// change. It bounds how long a peer may wait for a heartbeat, so it
	// is a fraction of NodeTimeout (Redis pings a node whose pong is
	// older than half the node timeout).
	HeartbeatInterval time.Duration
	// MinHeartbeatInterval: a header that changed (a peer newly suspected
	// or back, a slot claim, a role, a config epoch, a new peer known) is
	// sent to every peer at once, but no sooner than this after the last
	// heartbeat, so that a burst of changes (a reshard) costs at most one
	// heartbeat per peer per MinHeartbeatInterval.
	MinHeartbeatInterval time.Duration
	// ElectionDelay is the fixed wait between seeing the primary FAIL and
	// asking for votes, so that the FAIL message reaches the voters first.
	ElectionDelay time.Duration
	// RankDelay is added per rank: the replica with the most data (highest
	// replication offset) has rank 0 and asks first.
	RankDelay time.Duration
	// ElectionJitter is the bound of a random extra wait, so that replicas
	// of equal rank rarely ask at the same time.
	ElectionJitter time.Duration
	// ElectionTimeout is how long a candidate waits for a majority before
	// giving up; it retries after twice this.
	ElectionTimeout time.Duration
	// Rand supplies the jitter; tests seed it so every run replays. nil
	// draws from a generator seeded by the runtime.
	Rand *rand.Rand
}

// DefaultNodeConfig returns settings for a LAN where failure detection
// plus failover stays under 2 s: suspect after 1 s of silence, heartbeats
// every 350 ms while nothing changes and a change sent at once (at most
// every 100 ms), ask for votes 50-150 ms (+200 ms per rank) after the
// FAIL.
func DefaultNodeConfig(id NodeID, addr string) NodeConfig {
	return NodeConfig{
		ID:                   id,
		Addr:                 addr,
		NodeTimeout:          time.Second,
		FailReportValidity:   2 * time.Second,
		HeartbeatInterval:    heartbeatOf(time.Second),
		MinHeartbeatInterval: 100 * time.Millisecond,
		ElectionDelay:        50 * time.Millisecond,
		RankDelay:            200 * time.Millisecond,
		ElectionJitter:       100 * time.Millisecond,
		ElectionTimeout:      time.Second,
	}
}

// heartbeatOf is the heartbeat interval for a node timeout d: 0.35 d.
// A peer is suspected after missing two heartbeats in a row (one lost
// packet or one late heartbeat is not enough). The heartbeats go out on
// a common grid (Node.periodicDue): a silent peer's last heartbeat left
// at a grid point, every other peer suspects it d later, 0.3 d after its
// own last heartbeat (at 0.7 d), so it can announce the suspicion at
// once (MinHeartbeatInterval 0.1 d); with d/3 its own third heartbeat
// would fall just before the suspicion and hold it back by
// MinHeartbeatInterval.
//
// It is at most max(d/10, 350 ms), the rate of the schedule before it
// for long node timeouts: heartbeats are one-way, so a peer's interval
// must stay well below its peers' node timeouts too, and a cluster that
// mixes node timeouts (a peer with 5 s among peers with 1 s) keeps
// hearing every peer often enough (TestPeerAddRebalanceDelNode).
func heartbeatOf(d time.Duration) time.Duration {
	return min(d/20*7, max(d/10, 350*time.Millisecond))
}

// WithNodeTimeout returns c with the node timeout d and the settings that
// scale with it: failure reports valid for 2d, heartbeats every 0.35 d
// (and changes at most every d/10), an election given up after d (the
// default's proportions).
func (c NodeConfig) WithNodeTimeout(d time.Duration) NodeConfig {
	c.NodeTimeout = d
	c.FailReportValidity = 2 * d
	c.HeartbeatInterval = heartbeatOf(d)
	c.MinHeartbeatInterval = d / 10
	c.ElectionTimeout = d
	return c
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("invalid peer configuration")

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// Validate reports the first setting that is out of range; it changes
// nothing.
func (c NodeConfig) Validate() error {
	if !ValidNodeID(string(c.ID)) {
		return badConfig("node id %q: want 40 lowercase hex characters", c.ID)
	}
	return c.validateTimers()
}

// validateTimers checks everything but the ID (a ClusterConfig may leave
// the ID to be loaded or drawn).
func (c NodeConfig) validateTimers() error {
	bad := badConfig
	if c.NodeTimeout <= 0 {
		return bad("node timeout %v: must be positive", c.NodeTimeout)
	}
	if c.FailReportValidity < c.NodeTimeout {
		return bad("fail report validity %v: must be at least the node timeout %v", c.FailReportValidity, c.NodeTimeout)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.NodeTimeout {
		return bad("heartbeat interval %v: must be positive and below the node timeout %v", c.HeartbeatInterval, c.NodeTimeout)
	}
	if c.MinHeartbeatInterval <= 0 || c.MinHeartbeatInterval > c.HeartbeatInterval {
		return bad("minimum heartbeat interval %v: must be positive and at most the heartbeat interval %v", c.MinHeartbeatInterval, c.HeartbeatInterval)
	}
	if c.ElectionDelay < 0 || c.RankDelay < 0 || c.ElectionJitter < 0 {
		return bad("election delays must not be negative")
	}
	if c.ElectionTimeout <= 0 {
		return bad("election timeout %v: must be positive", c.ElectionTimeout)
	}
	return nil
}

// ValidNodeID reports whether s is 40 lowercase hex characters.
func ValidNodeID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewNodeID returns a random node ID drawn from r.
func NewNodeID(r *rand.Rand) NodeID {
	const hex = "0123456789abcdef"
	b := make([]byte, 40)
	for i := range b {
		b[i] = hex[r.IntN(16)]
	}
	return NodeID(b)
}
