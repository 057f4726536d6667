package server

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gantry-project/gantry/api"
)

// TestACLCluster: three servers with ACLs on. The bootstrap sent to a
// follower is forwarded; followers cannot record themselves with the
// leader until they present a token with operator write (acl.token), and
// do once restarted with one; a token passes through forwarding, and a
// follower checks its stale reads itself.
func TestACLCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := newTestCluster(t, 3, func(c *Config) { c.ACL.Enabled = true })
	leader := tc.leader()
	fol := tc.follower(leader)

	var boot *api.ACLToken
	retryUnavailable(t, "bootstrap through a follower", func() error {
		var err error
		boot, err = tc.client(fol).ACLBootstrap(bg)
		return err
	})
	mgmt := tokenClient(t, tc.servers[leader], boot.SecretID)
	serverTok := tokenWith(t, mgmt, "servers", `operator { policy = "write" }`)

	// The followers' joins are refused until they hold the token.
	for i := range tc.servers {
		if i == leader {
			continue
		}
		tc.stop(i)
		tc.cfgs[i].ACL.Token = serverTok
		tc.start(i)
	}
	tc.waitMembers(mgmt, 3)

	leader = tc.leader()
	fol = tc.follower(leader)
	team := tokenWith(t, mgmt, "team", `namespace "default" { policy = "write" }`)
	viaFollower := func(secret string) *api.Client {
		c, err := api.NewClient(api.Config{Address: tc.cfgs[fol].HTTPAddr, Token: secret,
			HTTPClient: &http.Client{Transport: &http.Transport{}}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	retryUnavailable(t, "a job through a follower with a token", func() error {
		_, err := viaFollower(team).RegisterJob(bg, mockJob("fwd", 0))
		return err
	})
	if _, err := viaFollower("").RegisterJob(bg, mockJob("anon", 0)); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous job through a follower: %v, want 401 from the leader", err)
	}
	waitFor(t, 10*time.Second, "the job on the follower", func() (bool, string) {
		_, _, err := viaFollower(team).Job(bg, "fwd", &api.QueryOptions{Stale: true})
		return err == nil, errString(err)
	})
	if _, _, err := viaFollower("").Job(bg, "fwd", &api.QueryOptions{Stale: true}); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous stale read on a follower: %v, want 401", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var ae *api.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}
