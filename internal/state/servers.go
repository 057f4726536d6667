package state

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/structs"
)

// UpsertServerMember records a control-plane server's addresses.
func (s *Store) UpsertServerMember(index uint64, m *structs.ServerMember) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return s.write(func(txn *writeTxn) error {
		c := *m
		c.CreateIndex = index
		raw, err := txn.First(TableServers, "id", c.ID)
		if err != nil {
			return fmt.Errorf("server %s: %w", c.ID, err)
		}
		if raw != nil {
			c.CreateIndex = raw.(*structs.ServerMember).CreateIndex
		}
		c.ModifyIndex = index
		if err := txn.Insert(TableServers, &c); err != nil {
			return fmt.Errorf("server %s: %w", c.ID, err)
		}
		return bumpIndex(txn, index, TableServers)
	})
}

// DeleteServerMember forgets a server; a missing one is not an error (the
// entry may be replayed).
func (s *Store) DeleteServerMember(index uint64, id string) error {
	return s.write(func(txn *writeTxn) error {
		if _, err := txn.DeleteAll(TableServers, "id", id); err != nil {
			return fmt.Errorf("server %s: %w", id, err)
		}
		return bumpIndex(txn, index, TableServers)
	})
}

// ServerMembers returns every known server, ordered by ID.
func (snap *Snapshot) ServerMembers() []*structs.ServerMember {
	var out []*structs.ServerMember
	it := snap.iter(nil, TableServers, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.ServerMember))
	}
	return out
}

// ServerMember returns one server by Raft ID, or nil.
func (snap *Snapshot) ServerMember(id string) *structs.ServerMember {
	raw := snap.first(nil, TableServers, "id", id)
	if raw == nil {
		return nil
	}
	return raw.(*structs.ServerMember)
}
