package schedtest

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/structs"
)

// Node returns a ready node whose ID and name are id, with the given
// capacity (millicores, MiB) and labels given as "key=value" pairs.
func Node(id string, cpu, memMB int64, labels ...string) *structs.Node {
	n := &structs.Node{
		ID: id, Name: id,
		Capacity:   structs.Resources{CPU: cpu, MemoryMB: memMB},
		Status:     structs.NodeStatusReady,
		Labels:     map[string]string{},
		Attributes: map[string]string{"os": "linux", "arch": "amd64"},
	}
	for _, kv := range labels {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				n.Labels[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return n
}

// Job returns a canonicalized, valid service job of count copies, each
// asking cpu millicores and memMB MiB, with the mock driver.
func Job(id string, count int, cpu, memMB int64) *structs.Job {
	j := &structs.Job{
		Name: id, Count: count, Driver: "mock",
		Resources: structs.Resources{CPU: cpu, MemoryMB: memMB},
		Version:   1,
	}
	j.Canonicalize()
	if err := j.Validate(nil); err != nil {
		panic(fmt.Sprintf("schedtest.Job: %v", err))
	}
	return j
}

// Alloc returns a live (running) allocation of job copy idx on node, as if
// placed earlier; ID is "<job>-<idx>-<node>".
func Alloc(job *structs.Job, idx int, nodeID string) *structs.Allocation {
	return &structs.Allocation{
		ID:            fmt.Sprintf("%s-%d-%s", job.ID, idx, nodeID),
		JobID:         job.ID,
		JobVersion:    job.Version,
		Name:          structs.AllocName(job.ID, idx),
		Index:         idx,
		NodeID:        nodeID,
		NodeName:      nodeID,
		Resources:     job.Resources,
		Priority:      job.Priority,
		Job:           job,
		DesiredStatus: structs.AllocDesiredRun,
		ClientStatus:  structs.AllocClientRunning,
	}
}
