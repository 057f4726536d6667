package state

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/structs"
)

func testToken(accessor, hash string, policies ...string) *structs.ACLToken {
	return &structs.ACLToken{AccessorID: accessor, SecretHash: hash, Type: structs.ACLClientToken, Policies: policies}
}

func TestACLBootstrapOnceUnlessReset(t *testing.T) {
	s := newStore(t)
	gen := s.ACLGeneration()
	boot := &structs.ACLToken{AccessorID: "boot", SecretHash: "h-boot", Type: structs.ACLManagementToken, Bootstrap: true}
	must(t, s.ACLBootstrap(5, boot, 0))
	if s.ACLGeneration() == gen {
		t.Fatal("a bootstrap must move the ACL generation")
	}
	if got := s.Snapshot().ACLBootstrapIndex(); got != 5 {
		t.Fatalf("bootstrap index %d, want 5", got)
	}
	for _, reset := range []uint64{0, 4, 6} {
		err := s.ACLBootstrap(7, &structs.ACLToken{AccessorID: "again", SecretHash: "h2"}, reset)
		var be *ACLBootstrapError
		if !errors.Is(err, ErrACLBootstrapped) || !errors.As(err, &be) || be.ResetIndex != 5 {
			t.Fatalf("second bootstrap with reset index %d: %v, want refused naming reset index 5", reset, err)
		}
	}
	if s.Snapshot().ACLToken(nil, "again") != nil {
		t.Fatal("a refused bootstrap stored its token")
	}
	// The reset index of the last bootstrap allows exactly one more.
	must(t, s.ACLBootstrap(8, &structs.ACLToken{AccessorID: "again", SecretHash: "h2", Type: structs.ACLManagementToken}, 5))
	if err := s.ACLBootstrap(9, &structs.ACLToken{AccessorID: "third", SecretHash: "h3"}, 5); !errors.Is(err, ErrACLBootstrapped) {
		t.Fatalf("a used reset index must not allow another bootstrap: %v", err)
	}
}

func TestACLPoliciesAndTokens(t *testing.T) {
	s := newStore(t)
	must(t, s.UpsertACLPolicies(3, []*structs.ACLPolicy{{Name: "p1", Rules: "x"}, {Name: "p2", Rules: "y"}}))
	must(t, s.UpsertACLPolicies(4, []*structs.ACLPolicy{{Name: "p1", Rules: "z"}}))
	snap := s.Snapshot()
	if p := snap.ACLPolicy(nil, "p1"); p.Rules != "z" || p.CreateIndex != 3 || p.ModifyIndex != 4 {
		t.Fatalf("p1 after update: %+v", p)
	}
	gen := s.ACLGeneration()
	must(t, s.UpsertACLTokens(5, []*structs.ACLToken{testToken("t1", "h1", "p1"), testToken("t2", "h2")}))
	if s.ACLGeneration() == gen {
		t.Fatal("a token write must move the ACL generation")
	}
	if tok := s.Snapshot().ACLTokenBySecretHash("h1"); tok == nil || tok.AccessorID != "t1" {
		t.Fatalf("token by secret hash: %+v", tok)
	}
	withSecret := testToken("t3", "h3")
	withSecret.SecretID = "plain"
	if err := s.UpsertACLTokens(6, []*structs.ACLToken{withSecret}); err == nil || !strings.Contains(err.Error(), "only its hash") {
		t.Fatalf("a token with its secret must be refused: %v", err)
	}
	must(t, s.DeleteACLTokens(7, []string{"t2", "missing"}))
	must(t, s.DeleteACLPolicies(8, []string{"p2"}))
	snap = s.Snapshot()
	if len(snap.ACLTokens(nil)) != 1 || len(snap.ACLPolicies(nil)) != 1 || snap.ACLTokenBySecretHash("h2") != nil {
		t.Fatalf("after deletes: %d tokens, %d policies", len(snap.ACLTokens(nil)), len(snap.ACLPolicies(nil)))
	}
	// A non-ACL write leaves the generation alone: cached permissions stay.
	gen = s.ACLGeneration()
	must(t, s.UpsertNode(9, testNode("n1", "one")))
	if s.ACLGeneration() != gen {
		t.Fatal("a node write moved the ACL generation")
	}
}

func TestNamespaces(t *testing.T) {
	s := newStore(t)
	if ns := s.Snapshot().Namespace(nil, structs.DefaultNamespace); ns == nil || ns.Quota != nil {
		t.Fatalf("the default namespace exists without a row: %+v", ns)
	}
	must(t, s.UpsertNamespaces(2, []*structs.Namespace{
		{Name: "team-a", Quota: &structs.Quota{MemoryMB: 4096}}, {Name: "zeta"}, {Name: "alpha"},
	}))
	var names []string
	for _, ns := range s.Snapshot().Namespaces(nil) {
		names = append(names, ns.Name)
	}
	if strings.Join(names, ",") != "alpha,default,team-a,zeta" {
		t.Fatalf("namespaces %v, want alpha,default,team-a,zeta (default listed in order)", names)
	}
	if q := s.Snapshot().NamespaceQuota("team-a"); q == nil || q.MemoryMB != 4096 {
		t.Fatalf("quota of team-a: %+v", q)
	}

	job := &structs.Job{Name: "web", Namespace: "team-a", Count: 1, Driver: "mock", Resources: structs.Resources{CPU: 100, MemoryMB: 64}}
	job.Canonicalize()
	if job.ID != "team-a/web" {
		t.Fatalf("job key %q, want team-a/web", job.ID)
	}
	must(t, s.UpsertJob(3, job))
	must(t, s.UpsertJob(4, testJob("web"))) // the same name in default: another job
	if got := len(s.Snapshot().Jobs()); got != 2 {
		t.Fatalf("%d jobs, want web in two namespaces", got)
	}
	err := s.DeleteNamespaces(5, []string{"zeta", "team-a"})
	if !errors.Is(err, ErrNamespaceNotEmpty) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("deleting a namespace with a job: %v", err)
	}
	if s.Snapshot().Namespace(nil, "zeta") == nil {
		t.Fatal("a refused delete must change nothing")
	}
	if err := s.DeleteNamespaces(5, []string{structs.DefaultNamespace}); err == nil {
		t.Fatal("the default namespace must not be deleted")
	}
	must(t, s.PurgeJob(6, "team-a/web"))
	must(t, s.DeleteNamespaces(7, []string{"team-a", "zeta", "missing"}))
	if s.Snapshot().Namespace(nil, "team-a") != nil {
		t.Fatal("team-a still there")
	}
}

func TestNamespaceLimit(t *testing.T) {
	s := newStore(t)
	var nss []*structs.Namespace
	for i := range structs.MaxNamespaces {
		nss = append(nss, &structs.Namespace{Name: "ns-" + strconv.Itoa(i)})
	}
	must(t, s.UpsertNamespaces(2, nss))
	if err := s.UpsertNamespaces(3, []*structs.Namespace{{Name: "one-more"}}); err == nil || !errors.Is(err, ErrNamespaceLimit) {
		t.Fatalf("namespace %d: %v, want refused", structs.MaxNamespaces+1, err)
	}
	must(t, s.UpsertNamespaces(4, []*structs.Namespace{{Name: "ns-0", Description: "an update is not a new one"}}))
}

// TestACLAndNamespacesPersist: policies, tokens, namespaces and the
// bootstrap index survive a snapshot; a snapshot from before namespaces
// (jobs without one) loads into the default namespace.
func TestACLAndNamespacesPersist(t *testing.T) {
	s := newStore(t)
	must(t, s.ACLBootstrap(2, &structs.ACLToken{AccessorID: "boot", SecretHash: "hb", Type: structs.ACLManagementToken}, 0))
	must(t, s.UpsertACLPolicies(3, []*structs.ACLPolicy{{Name: "p", Rules: `node { policy = "read" }`}}))
	must(t, s.UpsertACLTokens(4, []*structs.ACLToken{testToken("t", "ht", "p")}))
	must(t, s.UpsertNamespaces(5, []*structs.Namespace{{Name: "team", Quota: &structs.Quota{CPU: 1000}}}))
	var buf bytes.Buffer
	must(t, s.Snapshot().Persist(&buf))
	r := newStore(t)
	gen := r.ACLGeneration()
	must(t, r.Restore(&buf))
	if r.ACLGeneration() == gen {
		t.Fatal("Restore must move the ACL generation")
	}
	snap := r.Snapshot()
	if snap.ACLBootstrapIndex() != 2 || snap.ACLPolicy(nil, "p") == nil || snap.ACLTokenBySecretHash("ht") == nil ||
		snap.NamespaceQuota("team") == nil || snap.NamespaceQuota("team").CPU != 1000 {
		t.Fatal("ACL objects or namespaces lost in a snapshot")
	}

	// A record stream as builds before namespaces wrote it.
	old := `{"job":{"id":"web","name":"web","type":"service","priority":50,"count":1,"resources":{"cpu":100,"memory_mb":64},"driver":"mock","restart":{"attempts":1,"interval":0,"delay":0},"reschedule":{"attempts":0,"unlimited":true,"delay":0},"stop":false,"status":"running","version":1,"submit_time":1,"create_index":3,"modify_index":3}}
{"alloc":{"id":"a1","job_id":"web","job_version":1,"name":"web[0]","index":0,"node_id":"n1","resources":{"cpu":100,"memory_mb":64},"priority":50,"desired_status":"run","client_status":"running","task_state":{"state":"running","restarts":0,"exit_code":0,"failed":false},"reschedule_count":0,"create_time":1,"modify_time":1,"create_index":4,"modify_index":4,"alloc_modify_index":4}}
{"index":{"key":"jobs","value":3}}
{"index":{"key":"allocs","value":4}}
`
	o := newStore(t)
	must(t, o.Restore(strings.NewReader(old)))
	snap = o.Snapshot()
	j := snap.JobByID("web")
	if j == nil || j.Namespace != structs.DefaultNamespace {
		t.Fatalf("old job: %+v, want it in the default namespace", j)
	}
	if got := snap.JobsInNamespace(nil, structs.DefaultNamespace); len(got) != 1 {
		t.Fatalf("default namespace lists %d jobs", len(got))
	}
	if u := snap.NamespaceUsage(structs.DefaultNamespace); u != (structs.Resources{CPU: 100, MemoryMB: 64}) {
		t.Fatalf("default namespace usage %s after loading an old snapshot", u)
	}
	if snap.ACLBootstrapIndex() != 0 {
		t.Fatal("an old snapshot has no bootstrap")
	}
}
