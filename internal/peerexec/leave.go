package peerexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gantry-project/gantry/internal/peer"
)

// Leave takes this peer out of the cluster as Akka's members leave:
// leaving (it admits nothing; owners place its copies elsewhere first and
// stop the old ones once the new ones run), then its slots go to others
// (its replica takes them over by a manual failover, with no data moved;
// without a replica they are resharded to another primary, keys and all,
// and the jobs follow their slots), then exiting (every other peer
// forgets it), then removed: Left is closed and the process may exit.
func (s *Service) Leave(ctx context.Context, out io.Writer) error {
	if !s.leaving.CompareAndSwap(false, true) {
		return errors.New("already leaving")
	}
	s.SetState(StateLeaving)
	fmt.Fprintf(out, "leaving: moving this peer's copies to other peers\n")
	if err := s.waitFor(ctx, func() bool { return len(s.LiveTasks()) == 0 }); err != nil {
		return fmt.Errorf("moving copies: %w (%d still here)", err, len(s.LiveTasks()))
	}
	st, err := s.cluster.Status()
	if err != nil {
		return err
	}
	self := st.Self()
	if self.Role == peer.RolePrimary && len(self.Slots) > 0 {
		if err := s.handOffSlots(ctx, st, out); err != nil {
			return err
		}
	}
	s.SetState(StateExiting)
	fmt.Fprintf(out, "exiting: the other peers forget %s\n", st.ID)
	var other string
	for _, p := range st.Peers {
		if p.ID != st.ID && !p.Fail {
			other = p.Addr
			break
		}
	}
	if other == "" {
		return errors.New("no other peer to leave")
	}
	if err := peer.DelNode(ctx, other, string(st.ID), out); err != nil {
		return err
	}
	s.SetState(StateRemoved)
	close(s.left)
	return nil
}

// Left is closed once Leave has finished.
func (s *Service) Left() <-chan struct{} { return s.left }

func (s *Service) handOffSlots(ctx context.Context, st *peer.Status, out io.Writer) error {
	var replica, target peer.PeerStatus
	for _, p := range st.Peers {
		switch {
		case p.Fail || p.ID == st.ID:
		case p.Role == peer.RoleReplica && p.Primary == st.ID && replica.ID == "":
			replica = p
		case p.Role == peer.RolePrimary && len(p.Slots) > 0 && target.ID == "":
			target = p
		}
	}
	slotsGone := func() bool {
		cur, err := s.cluster.Status()
		return err == nil && len(cur.Self().Slots) == 0
	}
	switch {
	case replica.ID != "":
		fmt.Fprintf(out, "handing the slots to replica %s (%s) by a manual failover\n", replica.ID, replica.Addr)
		c := redis.NewClient(&redis.Options{Addr: replica.Addr, Password: s.cfg.Password, DisableIdentity: true})
		defer c.Close()
		return failoverUntil(ctx, out, replica.Addr, 2*peer.ManualFailoverTimeout,
			func() error { return c.Do(ctx, "cluster", "failover").Err() },
			func(ctx context.Context) error { return s.waitFor(ctx, slotsGone) })
	case target.ID != "":
		fmt.Fprintf(out, "resharding the slots to %s (%s)\n", target.ID, target.Addr)
		if err := peer.Reshard(ctx, s.p.Addr().String(), []string{string(st.ID)}, string(target.ID), numSlots, nil, peer.MoveOptions{}, out); err != nil {
			return err
		}
	default:
		return errors.New("no replica and no other primary to take this peer's slots")
	}
	return s.waitFor(ctx, slotsGone)
}

// failoverUntil asks the replica at addr for a manual failover and waits
// (gone) for this peer's slots to be gone. A manual failover that fails
// (the replica did not catch up, or no majority voted, within
// peer.ManualFailoverTimeout) changes nothing and tells nobody (CLUSTER
// FAILOVER answers before it runs): so after each, longer than an
// attempt lasts, it asks again, until ctx ends. Only the first request's
// error ends the leave: a later one may come from a replica that was
// promoted meanwhile, whose claim has not reached this peer yet.
func failoverUntil(ctx context.Context, out io.Writer, addr string, each time.Duration, ask func() error, gone func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		if err := ask(); err != nil {
			if attempt == 1 {
				return fmt.Errorf("cluster failover on %s: %w", addr, err)
			}
			fmt.Fprintf(out, "cluster failover on %s: %v\n", addr, err)
		}
		wctx, cancel := context.WithTimeout(ctx, each)
		err := gone(wctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(out, "the slots are still here after %s: asking %s again\n", each, addr)
	}
}

func (s *Service) waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
