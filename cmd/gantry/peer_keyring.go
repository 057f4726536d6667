package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// peerConnFlags say how the CLI reaches running peers over the Redis
// protocol: an address, an ACL user, TLS.
type peerConnFlags struct {
	addr, user, pass      string
	tls                   bool
	caFile, cert, keyFile string
}

func (f *peerConnFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.addr, "addr", "a", "127.0.0.1:6379", "a peer of the cluster (host:port)")
	fs.StringVar(&f.user, "user", "", "ACL user (default: the default user)")
	fs.StringVar(&f.pass, "pass", "", "password (or REDISCLI_AUTH)")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS")
	fs.StringVar(&f.caFile, "cacert", "", "CA bundle the peers' certificates chain to (with --tls)")
	fs.StringVar(&f.cert, "cert", "", "client certificate (with --tls)")
	fs.StringVar(&f.keyFile, "key", "", "client key (with --tls)")
}

func (f *peerConnFlags) client(addr string) (*redis.Client, error) {
	pass := f.pass
	if pass == "" {
		pass = os.Getenv("REDISCLI_AUTH")
	}
	o := &redis.Options{Addr: addr, Username: f.user, Password: pass, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, DisableIdentity: true, PoolSize: 1}
	if f.tls {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.caFile != "" {
			b, err := os.ReadFile(f.caFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("--cacert %s: no PEM certificate", f.caFile)
			}
		}
		if f.cert != "" {
			kp, err := tls.LoadX509KeyPair(f.cert, f.keyFile)
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		o.TLSConfig = tc
	}
	return redis.NewClient(o), nil
}

// clusterAddrs returns the client addresses of every node CLUSTER NODES
// of addr lists (itself included), skipping nodes without an address.
func clusterAddrs(ctx context.Context, c *redis.Client) ([]string, error) {
	nodes, err := c.Do(ctx, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES: %w", err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.Contains(f[2], "noaddr") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",")
		if strings.HasPrefix(addr, ":") {
			continue
		}
		out = append(out, addr)
	}
	if len(out) == 0 {
		return nil, errors.New("CLUSTER NODES lists no node with an address")
	}
	return out, nil
}

func newPeerKeyringCmd() *cobra.Command {
	var conn peerConnFlags
	cmd := &cobra.Command{
		Use:   "keyring list | install KEY | use KEY | remove KEY | generate",
		Short: "Manage the gossip encryption keys of a running peer cluster",
		Long: `keyring changes the gossip keyring of every peer of a cluster: it asks the
peer at --addr for the cluster's nodes (CLUSTER NODES) and sends each the
change (CLUSTER KEYRING, a gantry extension); each peer keeps its keyring in
<data-dir>/gossip.keyring. Rotate a key without downtime in three steps:
install the new key everywhere, use it everywhere, remove the old one.
generate prints a new random key (32 bytes, base64).`,
		Example: `  gantry peer keyring generate
  gantry peer keyring install NEWKEY -a 10.0.0.1:6379 --pass secret
  gantry peer keyring use NEWKEY -a 10.0.0.1:6379 --pass secret
  gantry peer keyring remove OLDKEY -a 10.0.0.1:6379 --pass secret
  gantry peer keyring list -a 10.0.0.1:6379 --pass secret`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := strings.ToLower(args[0])
			out := cmd.OutOrStdout()
			switch op {
			case "generate":
				k := make([]byte, 32)
				if _, err := rand.Read(k); err != nil {
					return err
				}
				fmt.Fprintln(out, base64.StdEncoding.EncodeToString(k))
				return nil
			case "list":
				if len(args) != 1 {
					return errors.New("keyring list takes no key")
				}
			case "install", "use", "remove":
				if len(args) != 2 {
					return fmt.Errorf("keyring %s needs a key", op)
				}
			default:
				return fmt.Errorf("keyring %q: want list, install, use, remove or generate", args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			seed, err := conn.client(conn.addr)
			if err != nil {
				return err
			}
			addrs, err := clusterAddrs(ctx, seed)
			seed.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", conn.addr, err)
			}
			return keyringAll(ctx, &conn, addrs, op, args[1:], out)
		},
	}
	conn.register(cmd)
	return cmd
}

// keyringAll sends the operation to every peer and reports each; list
// counts, per key, the peers that hold it and those using it.
func keyringAll(ctx context.Context, conn *peerConnFlags, addrs []string, op string, key []string, out interface{ Write([]byte) (int, error) }) error {
	type holding struct{ has, primary int }
	keys := map[string]*holding{}
	var order []string
	failed := 0
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, a := range addrs {
		c, err := conn.client(a)
		if err != nil {
			return err
		}
		args := []any{"CLUSTER", "KEYRING", op}
		for _, k := range key {
			args = append(args, k)
		}
		res, err := c.Do(ctx, args...).Result()
		c.Close()
		if err != nil {
			failed++
			fmt.Fprintf(tw, "%s\terror: %v\n", a, err)
			continue
		}
		if op != "list" {
			fmt.Fprintf(tw, "%s\tOK\n", a)
			continue
		}
		list, _ := res.([]any)
		for i, k := range list {
			s := fmt.Sprint(k)
			h := keys[s]
			if h == nil {
				h = &holding{}
				keys[s] = h
				order = append(order, s)
			}
			h.has++
			if i == 0 {
				h.primary++
			}
		}
	}
	if op == "list" {
		fmt.Fprintf(tw, "KEY\tPEERS\tPRIMARY ON\n")
		for _, k := range order {
			fmt.Fprintf(tw, "%s\t%d/%d\t%d\n", k, keys[k].has, len(addrs), keys[k].primary)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d peers failed", failed, len(addrs))
	}
	return nil
}
