package state

import (
	"errors"
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/internal/structs"
)

// aclBootstrapKey is the index table's row that records the Raft index of
// the ACL bootstrap (0 or absent: never bootstrapped). It lives in the
// index table so snapshots and backups carry it with no record type of
// its own.
const aclBootstrapKey = "acl_bootstrap"

// ErrACLBootstrapped refuses a second ACL bootstrap; the error names the
// reset index (docs/operations.md, "Resetting the bootstrap").
var ErrACLBootstrapped = errors.New("ACL bootstrap already done")

// ACLBootstrapError is ErrACLBootstrapped with the index an operator writes
// to the reset file to allow one more bootstrap.
type ACLBootstrapError struct{ ResetIndex uint64 }

func (e *ACLBootstrapError) Error() string {
	return fmt.Sprintf("%v (reset index: %d)", ErrACLBootstrapped, e.ResetIndex)
}

func (e *ACLBootstrapError) Unwrap() error { return ErrACLBootstrapped }

// ACLGeneration changes after every write to policies or tokens and after
// Restore: a token's compiled permissions cached at one generation are
// current while it has not moved.
func (s *Store) ACLGeneration() uint64 { return s.aclGen.Load() }

// ACLBootstrap stores the bootstrap management token. It is refused once a
// bootstrap happened, unless resetIndex is that bootstrap's index.
func (s *Store) ACLBootstrap(index uint64, tok *structs.ACLToken, resetIndex uint64) error {
	if tok == nil || tok.AccessorID == "" || tok.SecretHash == "" {
		return errors.New("acl bootstrap: a token with accessor ID and secret hash is required")
	}
	return s.write(func(txn *writeTxn) error {
		raw, err := txn.First(tableIndex, "id", aclBootstrapKey)
		if err != nil {
			return fmt.Errorf("acl bootstrap: %w", err)
		}
		if raw != nil {
			if done := raw.(*IndexEntry).Value; done != 0 && done != resetIndex {
				return &ACLBootstrapError{ResetIndex: done}
			}
		}
		if err := upsertTokenTxn(txn, index, tok); err != nil {
			return err
		}
		if err := txn.Insert(tableIndex, &IndexEntry{Key: aclBootstrapKey, Value: index}); err != nil {
			return fmt.Errorf("acl bootstrap: %w", err)
		}
		return bumpIndex(txn, index, TableACLTokens)
	})
}

// UpsertACLPolicies creates or replaces policies, keeping CreateIndex.
func (s *Store) UpsertACLPolicies(index uint64, policies []*structs.ACLPolicy) error {
	return s.write(func(txn *writeTxn) error {
		for _, p := range policies {
			if p == nil || p.Name == "" {
				return errors.New("upsert acl policy: a name is required")
			}
			c := *p
			c.CreateIndex = index
			raw, err := txn.First(TableACLPolicies, "id", c.Name)
			if err != nil {
				return fmt.Errorf("acl policy %s: %w", c.Name, err)
			}
			if raw != nil {
				c.CreateIndex = raw.(*structs.ACLPolicy).CreateIndex
			}
			c.ModifyIndex = index
			if err := txn.Insert(TableACLPolicies, &c); err != nil {
				return fmt.Errorf("acl policy %s: %w", c.Name, err)
			}
		}
		txn.aclChanged = true
		return bumpIndex(txn, index, TableACLPolicies)
	})
}

// DeleteACLPolicies deletes policies by name; missing ones are skipped
// (the entry may be replayed). Tokens naming a deleted policy keep the
// name and lose what it granted.
func (s *Store) DeleteACLPolicies(index uint64, names []string) error {
	return s.write(func(txn *writeTxn) error {
		for _, n := range names {
			if _, err := txn.DeleteAll(TableACLPolicies, "id", n); err != nil {
				return fmt.Errorf("acl policy %s: %w", n, err)
			}
		}
		txn.aclChanged = true
		return bumpIndex(txn, index, TableACLPolicies)
	})
}

// UpsertACLTokens creates or replaces tokens, keeping CreateIndex. Tokens
// must carry the secret's hash, never the secret.
func (s *Store) UpsertACLTokens(index uint64, tokens []*structs.ACLToken) error {
	return s.write(func(txn *writeTxn) error {
		for _, t := range tokens {
			if err := upsertTokenTxn(txn, index, t); err != nil {
				return err
			}
		}
		return bumpIndex(txn, index, TableACLTokens)
	})
}

func upsertTokenTxn(txn *writeTxn, index uint64, t *structs.ACLToken) error {
	if t == nil || t.AccessorID == "" || t.SecretHash == "" {
		return errors.New("upsert acl token: accessor ID and secret hash are required")
	}
	if t.SecretID != "" {
		return fmt.Errorf("acl token %s: the secret must not be stored, only its hash", t.AccessorID)
	}
	c := *t
	c.Policies = slices.Clone(t.Policies)
	c.CreateIndex = index
	raw, err := txn.First(TableACLTokens, "id", c.AccessorID)
	if err != nil {
		return fmt.Errorf("acl token %s: %w", c.AccessorID, err)
	}
	if raw != nil {
		c.CreateIndex = raw.(*structs.ACLToken).CreateIndex
	}
	c.ModifyIndex = index
	if err := txn.Insert(TableACLTokens, &c); err != nil {
		return fmt.Errorf("acl token %s: %w", c.AccessorID, err)
	}
	txn.aclChanged = true
	return nil
}

// DeleteACLTokens deletes tokens by accessor ID; missing ones are skipped.
func (s *Store) DeleteACLTokens(index uint64, accessorIDs []string) error {
	return s.write(func(txn *writeTxn) error {
		for _, id := range accessorIDs {
			if _, err := txn.DeleteAll(TableACLTokens, "id", id); err != nil {
				return fmt.Errorf("acl token %s: %w", id, err)
			}
		}
		txn.aclChanged = true
		return bumpIndex(txn, index, TableACLTokens)
	})
}

// ACLBootstrapIndex returns the Raft index of the ACL bootstrap, or 0.
func (snap *Snapshot) ACLBootstrapIndex() uint64 {
	if raw := snap.first(nil, tableIndex, "id", aclBootstrapKey); raw != nil {
		return raw.(*IndexEntry).Value
	}
	return 0
}

// ACLPolicy returns a policy by name, or nil.
func (snap *Snapshot) ACLPolicy(ws memdb.WatchSet, name string) *structs.ACLPolicy {
	snap.watchAbandon(ws)
	if raw := snap.first(ws, TableACLPolicies, "id", name); raw != nil {
		return raw.(*structs.ACLPolicy)
	}
	return nil
}

// ACLPolicies returns every policy, by name.
func (snap *Snapshot) ACLPolicies(ws memdb.WatchSet) []*structs.ACLPolicy {
	snap.watchAbandon(ws)
	var out []*structs.ACLPolicy
	it := snap.iter(ws, TableACLPolicies, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.ACLPolicy))
	}
	return out
}

// ACLToken returns a token by accessor ID, or nil.
func (snap *Snapshot) ACLToken(ws memdb.WatchSet, accessorID string) *structs.ACLToken {
	snap.watchAbandon(ws)
	if raw := snap.first(ws, TableACLTokens, "id", accessorID); raw != nil {
		return raw.(*structs.ACLToken)
	}
	return nil
}

// ACLTokenBySecretHash returns the token whose secret hashes to hash, or
// nil.
func (snap *Snapshot) ACLTokenBySecretHash(hash string) *structs.ACLToken {
	if raw := snap.first(nil, TableACLTokens, "secret", hash); raw != nil {
		return raw.(*structs.ACLToken)
	}
	return nil
}

// ACLTokens returns every token, by accessor ID.
func (snap *Snapshot) ACLTokens(ws memdb.WatchSet) []*structs.ACLToken {
	snap.watchAbandon(ws)
	var out []*structs.ACLToken
	it := snap.iter(ws, TableACLTokens, "id")
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.ACLToken))
	}
	return out
}
