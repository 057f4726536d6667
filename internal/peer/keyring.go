package peer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"

	"github.com/gantry-project/gantry/internal/resp"
)

// The gossip keyring (docs/peer.md, "Gossip encryption"): memberlist
// encrypts every gossip packet and stream (heartbeats, votes, FAIL,
// push-pull) with the keyring's primary key (AES-GCM) and decrypts with
// any of its keys, so a peer without a key of the keyring can neither
// join nor be heard. Keys rotate without downtime as in Consul and Nomad:
// install the new key on every peer, use it everywhere, remove the old.

// KeyringFileName is the keyring file in the data directory: a JSON
// array of base64 keys, the primary first (Consul's local.keyring format).
const KeyringFileName = "gossip.keyring"

// Keyring is a peer's gossip keyring and the file it is kept in.
type Keyring struct {
	kr   *memberlist.Keyring
	path string // "" keeps it in memory only
	mu   sync.Mutex
}

// LoadKeyring returns the keyring of a peer: the file at path when it
// exists (it wins over key), else a keyring of key alone, written to path
// when path is set; nil when neither gives a key (gossip in the clear).
func LoadKeyring(path string, key []byte) (*Keyring, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			keys, err := parseKeyring(b)
			if err != nil {
				return nil, fmt.Errorf("keyring %s: %w", path, err)
			}
			kr, err := memberlist.NewKeyring(keys[1:], keys[0])
			if err != nil {
				return nil, fmt.Errorf("keyring %s: %w", path, err)
			}
			return &Keyring{kr: kr, path: path}, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("keyring: %w", err)
		}
	}
	if len(key) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(nil, key)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	k := &Keyring{kr: kr, path: path}
	if err := k.save(); err != nil {
		return nil, err
	}
	return k, nil
}

func parseKeyring(b []byte) ([][]byte, error) {
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("want a JSON array of base64 keys: %w", err)
	}
	if len(enc) == 0 || len(enc) > maxKeys {
		return nil, fmt.Errorf("%d keys: want 1..%d", len(enc), maxKeys)
	}
	keys := make([][]byte, len(enc))
	for i, e := range enc {
		k, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return keys, nil
}

// maxKeys bounds the keyring: every packet is tried against each key.
const maxKeys = 16

// decodeKey reads a base64 key of 16, 24 or 32 bytes.
func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if err := memberlist.ValidateKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// Memberlist returns the keyring memberlist uses.
func (k *Keyring) Memberlist() *memberlist.Keyring { return k.kr }

// Keys returns the keys in base64, the primary first.
func (k *Keyring) Keys() []string {
	keys := k.kr.GetKeys() // the primary first
	out := make([]string, len(keys))
	for i, key := range keys {
		out[i] = base64.StdEncoding.EncodeToString(key)
	}
	return out
}

// save writes the keyring file (0600), replacing it atomically.
func (k *Keyring) save() error {
	if k.path == "" {
		return nil
	}
	b, err := json.Marshal(k.Keys())
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(k.path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return os.Rename(tmp.Name(), k.path)
}

// Do runs a keyring operation: install (add a key), use (make an
// installed key the primary) or remove (a key that is not the primary);
// the file is rewritten after each change.
func (k *Keyring) Do(op, key64 string) error {
	key, err := decodeKey(key64)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch op {
	case "install":
		if len(k.kr.GetKeys()) >= maxKeys {
			return fmt.Errorf("the keyring holds %d keys already: remove one first", maxKeys)
		}
		err = k.kr.AddKey(key)
	case "use":
		err = k.kr.UseKey(key)
	case "remove":
		err = k.kr.RemoveKey(key)
	default:
		return fmt.Errorf("keyring %s: want install, use, remove or list", op)
	}
	if err != nil {
		return err
	}
	return k.save()
}

// cmdKeyring serves CLUSTER KEYRING LIST | INSTALL key | USE key |
// REMOVE key, the gantry extension `gantry peer keyring` sends.
func cmdKeyring(r *Router, args [][]byte, w *resp.Writer) {
	k := r.c.cfg.Keyring
	if k == nil {
		w.Error("ERR gossip encryption is off: start the peers with --gossip-key or a keyring file")
		return
	}
	op := strings.ToLower(string(args[0]))
	if op == "list" {
		if len(args) != 1 {
			w.Error("ERR wrong number of arguments for 'cluster|keyring' command")
			return
		}
		keys := k.Keys()
		w.Array(len(keys))
		for _, key := range keys {
			w.BulkString(key)
		}
		return
	}
	if len(args) != 2 {
		w.Error("ERR wrong number of arguments for 'cluster|keyring' command")
		return
	}
	if err := k.Do(op, string(args[1])); err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	r.c.logger.Printf("cluster: gossip keyring: %s %s", op, keyID(string(args[1])))
	w.OK()
}

// keyID names a key in logs without revealing it.
func keyID(key64 string) string {
	if len(key64) < 6 {
		return "(short key)"
	}
	return key64[:4] + "..."
}

// loadKeyring loads the peer's keyring: KeyringFile, else gossip.keyring
// in the data directory, else GossipKey alone.
func (p *Peer) loadKeyring() (*Keyring, error) {
	path := p.cfg.KeyringFile
	if path == "" && p.cfg.Store.DataDir != "" {
		path = filepath.Join(p.cfg.Store.DataDir, KeyringFileName)
	}
	kr, err := LoadKeyring(path, p.cfg.GossipKey)
	if err != nil {
		return nil, err
	}
	if kr != nil {
		p.logger.Printf("cluster: gossip encrypted with %d key(s) (%s)", len(kr.Keys()), map[bool]string{true: path, false: "--gossip-key"}[path != ""])
	}
	return kr, nil
}
