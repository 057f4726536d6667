package main

import (
	"fmt"
	"log"

	"github.com/spf13/pflag"

	"github.com/gantry-project/gantry/internal/peer"
)

// peerSecurity are the flags of a peer's users, protected mode and TLS
// (docs/kv.md, "Security"), named as Redis's settings.
type peerSecurity struct {
	aclFile       string
	masterUser    string
	protectedMode string
	keyringFile   string
	tls           peer.TLSConfig
}

func (s *peerSecurity) register(f *pflag.FlagSet) {
	f.StringVar(&s.aclFile, "aclfile", "", "file of ACL users (ACL LOAD reads it, ACL SAVE writes it); not with --requirepass")
	f.StringVar(&s.masterUser, "masteruser", "", "ACL user this peer AUTHs as at its primary (with --masterauth)")
	f.StringVar(&s.protectedMode, "protected-mode", "yes", "refuse clients from other hosts while the default user has no password (yes or no)")
	f.StringVar(&s.keyringFile, "gossip-keyring-file", "", "gossip keyring file (JSON array of base64 keys, the primary first); default <data-dir>/gossip.keyring, used when it exists")
	f.IntVar(&s.tls.Port, "tls-port", 0, "serve the Redis protocol over TLS on this port too (0: off)")
	f.StringVar(&s.tls.CertFile, "tls-cert-file", "", "PEM certificate served on --tls-port and presented to other peers")
	f.StringVar(&s.tls.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	f.StringVar(&s.tls.CAFile, "tls-ca-cert-file", "", "PEM CA bundle that client and peer certificates must chain to")
	f.StringVar(&s.tls.AuthClients, "tls-auth-clients", "yes", "client certificates on --tls-port: yes (required), optional or no")
	f.BoolVar(&s.tls.Replication, "tls-replication", false, "a replica dials its primary with TLS")
	f.BoolVar(&s.tls.Cluster, "tls-cluster", false, "MIGRATE and failover connections to other peers use TLS")
}

func (s *peerSecurity) apply(cfg *peer.Config) error {
	cfg.Store.ACLFile = s.aclFile
	cfg.Store.MasterUser = s.masterUser
	cfg.KeyringFile = s.keyringFile
	switch s.protectedMode {
	case "yes":
		cfg.Store.ProtectedMode = true
	case "no":
		cfg.Store.ProtectedMode = false
	default:
		return fmt.Errorf("--protected-mode %q: want yes or no", s.protectedMode)
	}
	cfg.TLS = s.tls
	return cfg.TLS.Validate()
}

// peerReload is what a peer does on SIGHUP (reloadOnHUP, tls.go): read
// the TLS files again; a failure keeps the files loaded before.
func peerReload(p *peer.Peer, logger *log.Logger) func() error {
	return func() error {
		if err := p.ReloadTLS(); err != nil {
			logger.Printf("SIGHUP: %v", err)
			return err
		}
		logger.Printf("SIGHUP: TLS files reloaded")
		return nil
	}
}
