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
		}},
		TablePlacementFailures: {Name: TablePlacementFailures, Indexes: map[string]*memdb.IndexSchema{
			"id": id("JobID"),
		}},
		TableServers: {Name: TableServers, Indexes: map[string]*memdb.IndexSchema{
			"id": id("ID"),
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
