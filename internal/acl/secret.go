package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// NewID returns a random version-4 UUID read from r (crypto/rand.Reader
// when nil): the form of accessor and secret IDs. A secret holds 122 random
// bits, which is why a plain SHA-256 (HashSecret) suffices to store it: no
// guess list reaches it, so no slow hash is needed.
func NewID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes for an ACL ID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:]), nil
}

// HashSecret returns what is stored of a token's secret: its SHA-256, in
// hex. The secret itself is shown once, when the token is made, and kept
// nowhere on the servers (neither in the Raft log nor in snapshots).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
