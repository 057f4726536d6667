package peer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/memberlist"
)

func key64(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func mustKeyring(t *testing.T, path string, key string) *Keyring {
	t.Helper()
	var k []byte
	if key != "" {
		var err error
		if k, err = base64.StdEncoding.DecodeString(key); err != nil {
			t.Fatal(err)
		}
	}
	kr, err := LoadKeyring(path, k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyringFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyringFileName)
	kr := mustKeyring(t, path, key64(1))
	var onDisk []string
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &onDisk); err != nil || len(onDisk) != 1 || onDisk[0] != key64(1) {
		t.Fatalf("keyring file %s: %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %v, want 0600", fi.Mode().Perm())
	}
	steps := []struct {
		op, key string
		err     string
		keys    []string
	}{
		{"install", key64(2), "", []string{key64(1), key64(2)}},
		{"remove", key64(1), "primary", nil},
		{"use", key64(3), "not in the keyring", nil},
		{"use", key64(2), "", []string{key64(2), key64(1)}},
		{"remove", key64(1), "", []string{key64(2)}},
		{"install", "not base64!", "base64", nil},
		{"install", base64.StdEncoding.EncodeToString([]byte("short")), "key size", nil},
		{"rotate", key64(2), "want install, use, remove or list", nil},
	}
	for _, s := range steps {
		err := kr.Do(s.op, s.key)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Errorf("%s %.8s: %v, want %q", s.op, s.key, err, s.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		if got := kr.Keys(); fmt.Sprint(got) != fmt.Sprint(s.keys) {
			t.Errorf("after %s: keys %v, want %v", s.op, got, s.keys)
		}
	}
	// the file wins over --gossip-key, and holds the rotation
	again := mustKeyring(t, path, key64(9))
	if fmt.Sprint(again.Keys()) != fmt.Sprint([]string{key64(2)}) {
		t.Errorf("reloaded keys %v", again.Keys())
	}
	for _, bad := range []string{"", "[]", "{}", `["x"]`, `["` + base64.StdEncoding.EncodeToString([]byte("short")) + `"]`} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := LoadKeyring(path, nil); err == nil {
			t.Errorf("keyring file %q accepted", bad)
		}
	}
	if kr, err := LoadKeyring(filepath.Join(dir, "none"), nil); kr != nil || err != nil {
		t.Errorf("no file, no key: %v %v (want gossip in the clear)", kr, err)
	}
}

// logBuf collects a cluster's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startKeyedCluster(t *testing.T, i int, kr *Keyring, out *logBuf) *Cluster {
	t.Helper()
	cfg := DefaultClusterConfig()
	cfg.Node = DefaultNodeConfig("", fmt.Sprintf("127.0.0.1:%d", 7100+i))
	cfg.Keyring = kr
	if out != nil {
		cfg.Logger = log.New(out, fmt.Sprintf("n%d ", i), 0)
	}
	c, err := NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A peer without the cluster's key cannot join, and what it sends (a vote
// request here) is dropped before the protocol sees it; rotation installs
// a new key, uses it, removes the old one, without losing a member.
func TestGossipKeyring(t *testing.T) {
	var aLog logBuf
	a := startKeyedCluster(t, 0, mustKeyring(t, "", key64(1)), &aLog)
	b := startKeyedCluster(t, 1, mustKeyring(t, "", key64(1)), nil)
	if err := b.Join([]string{busAddr(a)}); err != nil {
		t.Fatalf("a peer with the key: %v", err)
	}
	waitFor(t, "two members", func() bool { return a.gossip.numMembers() == 2 })

	wrong := startKeyedCluster(t, 2, mustKeyring(t, "", key64(2)), nil)
	if err := wrong.Join([]string{busAddr(a)}); err == nil {
		t.Error("a peer with another key joined")
	}
	clear := startKeyedCluster(t, 3, nil, nil)
	if err := clear.Join([]string{busAddr(a)}); err == nil {
		t.Error("a peer without encryption joined")
	}

	// a vote request from outside, sent over memberlist with another key
	vote, _ := json.Marshal(Message{Type: MsgVoteRequest, From: "outsider", CurrentEpoch: 1 << 40, Subject: a.ID()})
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.BindAddr, mc.BindPort = "outsider", "127.0.0.1", 0
	mc.SecretKey = bytes.Repeat([]byte{2}, 32)
	mc.LogOutput = &logBuf{}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	target := &memberlist.Node{Name: string(a.ID()), Addr: []byte{127, 0, 0, 1}, Port: uint16(a.BusPort())}
	_ = ml.SendReliable(target, vote)
	waitFor(t, "the refusal in the log", func() bool { return strings.Contains(aLog.String(), "decrypt") })
	ml.Shutdown()
	if st := statusOf(t, a); st.CurrentEpoch >= 1<<40 {
		t.Errorf("the outsider's epoch reached the protocol: %d", st.CurrentEpoch)
	}
	if n := a.gossip.numMembers(); n != 2 {
		t.Errorf("%d members after the outsiders, want 2", n)
	}

	// rotation, peer by peer as `gantry peer keyring` does it
	for _, step := range []struct{ op, key string }{{"install", key64(3)}, {"use", key64(3)}, {"remove", key64(1)}} {
		for _, c := range []*Cluster{a, b} {
			if err := c.cfg.Keyring.Do(step.op, step.key); err != nil {
				t.Fatalf("%s: %v", step.op, err)
			}
		}
	}
	old := startKeyedCluster(t, 4, mustKeyring(t, "", key64(1)), nil)
	if err := old.Join([]string{busAddr(a)}); err == nil {
		t.Error("a peer with the removed key joined")
	}
	fresh := startKeyedCluster(t, 5, mustKeyring(t, "", key64(3)), nil)
	if err := fresh.Join([]string{busAddr(a)}); err != nil {
		t.Fatalf("a peer with the new key: %v", err)
	}
	waitFor(t, "three members", func() bool { return a.gossip.numMembers() == 3 && b.gossip.numMembers() == 3 })
}
