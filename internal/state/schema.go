package state

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
)

// Table names.
const (
	TableNodes = "nodes"
	TableJobs  = "jobs"
	// TableAllocs is not a memdb table (alloctable.go) but has its index
	// row like one.
	TableAllocs            = "allocs"
	TablePlacementFailures = "placement_failures"
	// TableServers lists the control-plane servers and their addresses.
	TableServers = "servers"
	// TableACLPolicies, TableACLTokens and TableNamespaces hold the ACL
	// system's policies and tokens (acl.go) and the namespaces with their
	// quotas (namespace.go).
	TableACLPolicies = "acl_policies"
	TableACLTokens   = "acl_tokens"
	TableNamespaces  = "namespaces"
	// tableIndex maps a table name to the last Raft index that changed it;
	// blocking queries report it so clients can wait for something newer.
	tableIndex = "index"
)

// IndexEntry is a row of the index table.
type IndexEntry struct {
	Key   string `json:"key"`
	Value uint64 `json:"value"`
}

func schema() *memdb.DBSchema {
	id := func(field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}}
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		TableNodes: {Name: TableNodes, Indexes: map[string]*memdb.IndexSchema{
			"id": id("ID"),
			// Names are not unique: two agents may claim one name; lookups
			// by name report the ambiguity.
			"name": {Name: "name", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		}},
		TableJobs: {Name: TableJobs, Indexes: map[string]*memdb.IndexSchema{
			"id": id("ID"),
			// Every stored job has its namespace set (upsertJobTxn and
			// Restore fill in the default for jobs from before).
			"namespace": {Name: "namespace", Indexer: &memdb.StringFieldIndex{Field: "Namespace"}},
		}},
		TableJobVersions: jobVersionsSchema(),
		TableDeployments: deploymentsSchema(),
		TablePlacementFailures: {Name: TablePlacementFailures, Indexes: map[string]*memdb.IndexSchema{
			"id": id("JobID"),
		}},
		TableServers: {Name: TableServers, Indexes: map[string]*memdb.IndexSchema{
			"id": id("ID"),
		}},
		TableACLPolicies: {Name: TableACLPolicies, Indexes: map[string]*memdb.IndexSchema{
			"id": id("Name"),
		}},
		TableACLTokens: {Name: TableACLTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":     id("AccessorID"),
			"secret": {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
		}},
		TableNamespaces: {Name: TableNamespaces, Indexes: map[string]*memdb.IndexSchema{
			"id": id("Name"),
		}},
		tableIndex: {Name: tableIndex, Indexes: map[string]*memdb.IndexSchema{
			"id": id("Key"),
		}},
	}}
}

func newDB() (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("state schema: %w", err)
	}
	return db, nil
}
