package kv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestDeleteKeysInSlot: the keys of one slot are deleted, the replica and
// the append-only log (a restart) drop the same keys, the other slots are
// untouched.
func TestDeleteKeysInSlot(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) { c.DataDir = dir }
	p := startServer(t, mod)
	r := startServer(t, nil)
	replicaOf(t, r, p)
	ctx := context.Background()
	slot := int(KeySlot([]byte("{d}")))
	const n = 2500 // more than one DEL batch
	args := []any{}
	for i := 0; i < n; i++ {
		args = append(args, "{d}k"+strconv.Itoa(i), i)
	}
	if err := p.rdb.MSet(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	p.run([]step{
		{"rpush {d}list a b", "2"}, {"set {d}ttl v px 100000", "OK"},
		{"set other 1", "OK"}, {"set {e}other 2", "OK"},
	})
	waitSynced(t, p, r)
	if got := r.srv.ks.CountKeysInSlot(slot); got != n+2 {
		t.Fatalf("replica holds %d keys of slot %d before, want %d", got, slot, n+2)
	}
	// the deletion runs while a client WATCHes one of the keys: its
	// transaction fails
	var del int
	err := p.rdb.Watch(ctx, func(tx *redis.Tx) error {
		var err error
		if del, err = p.srv.DeleteKeysInSlot(slot); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, "{d}k1", "again", 0)
			return nil
		})
		return err
	}, "{d}k1")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Errorf("WATCHed transaction: %v, want %v", err, redis.TxFailedErr)
	}
	if del != n+2 {
		t.Errorf("deleted %d keys, want %d", del, n+2)
	}
	if got := p.srv.ks.CountKeysInSlot(slot); got != 0 {
		t.Errorf("primary still holds %d keys of slot %d", got, slot)
	}
	waitSynced(t, p, r)
	if got := r.srv.ks.CountKeysInSlot(slot); got != 0 {
		t.Errorf("replica still holds %d keys of slot %d", got, slot)
	}
	sameData(t, p, r)
	if got := r.rdb.DBSize(ctx).Val(); got != 2 {
		t.Errorf("replica DBSIZE %d, want 2 (the other slots' keys)", got)
	}
	// an empty slot: nothing to delete, nothing logged
	off := p.srv.ReplOffset()
	if del, err := p.srv.DeleteKeysInSlot(slot); err != nil || del != 0 {
		t.Errorf("second delete: %d, %v", del, err)
	}
	if p.srv.ReplOffset() != off {
		t.Error("deleting an empty slot wrote to the replication stream")
	}
	for _, bad := range []int{-1, NumSlots} {
		if _, err := p.srv.DeleteKeysInSlot(bad); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("slot %d: err %v", bad, err)
		}
	}
	// the log holds the DELs: a restart from it has the same keys
	logs, _ := filepath.Glob(filepath.Join(dir, "*.aof"))
	var aof []byte
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		aof = append(aof, b...)
	}
	if !strings.Contains(string(aof), "DEL") {
		t.Errorf("no DEL in the append-only log %v", logs)
	}
	p.srv.Close()
	p2 := startServer(t, mod)
	if got := p2.srv.ks.CountKeysInSlot(slot); got != 0 {
		t.Errorf("after a restart from the log, %d keys of slot %d are back", got, slot)
	}
	if got := p2.rdb.DBSize(ctx).Val(); got != 2 {
		t.Errorf("after a restart DBSIZE %d, want 2", got)
	}
}
