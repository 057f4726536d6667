package structs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultNamespace holds every job that names no namespace, and every job
// stored before namespaces existed. It always exists and cannot be
// deleted.
const DefaultNamespace = "default"

// AllNamespaces, as a request's namespace, asks a listing for every
// namespace the caller may read.
const AllNamespaces = "*"

// MaxNamespaces bounds the namespaces of a cluster (each is a row the
// quota check and listings read).
const MaxNamespaces = 1000

// MaxNamespaceLen bounds a namespace's name.
const MaxNamespaceLen = 64

var namespaceRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

// ValidateNamespaceName checks a namespace's name: letters, digits, '_'
// and '-', so it can never hold the '/' of a job key.
func ValidateNamespaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("is required")
	case len(name) > MaxNamespaceLen:
		return fmt.Errorf("must be at most %d characters (got %d)", MaxNamespaceLen, len(name))
	case !namespaceRE.MatchString(name):
		return fmt.Errorf("must start with a letter or digit and contain only letters, digits, '_' and '-' (got %q)", name)
	}
	return nil
}

// Quota caps what a namespace's live allocations (those not Terminal) may
// hold together. A zero dimension is not capped.
type Quota struct {
	CPU      int64 `json:"cpu,omitempty"`
	MemoryMB int64 `json:"memory_mb,omitempty"`
}

// Exceeds returns the dimension ("cpu" or "memory") in which used is over
// the quota, or "" if it is within.
func (q *Quota) Exceeds(used Resources) string {
	if q == nil {
		return ""
	}
	if q.CPU > 0 && used.CPU > q.CPU {
		return "cpu"
	}
	if q.MemoryMB > 0 && used.MemoryMB > q.MemoryMB {
		return "memory"
	}
	return ""
}

// Describe says how full a dimension is, as a user reads it: "memory
// 3.9/4 GiB", "cpu 1.5/2 cores".
func (q *Quota) Describe(dim string, used Resources) string {
	if dim == "cpu" {
		return fmt.Sprintf("cpu %s/%s cores", decimal(used.CPU, 1000), decimal(q.CPU, 1000))
	}
	if q.MemoryMB < 1024 {
		return fmt.Sprintf("memory %d/%d MiB", used.MemoryMB, q.MemoryMB)
	}
	return fmt.Sprintf("memory %s/%s GiB", decimal(used.MemoryMB, 1024), decimal(q.MemoryMB, 1024))
}

// decimal formats v/unit with one decimal, without a trailing ".0".
func decimal(v, unit int64) string {
	return strings.TrimSuffix(strconv.FormatFloat(float64(v)/float64(unit), 'f', 1, 64), ".0")
}

// Namespace groups jobs: access is granted per namespace, and a quota
// caps the resources its jobs hold.
type Namespace struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Quota, if set, caps the namespace's live allocations.
	Quota       *Quota `json:"quota,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Validate checks a namespace a client sent.
func (n *Namespace) Validate() error {
	e := &ValidationError{}
	if err := ValidateNamespaceName(n.Name); err != nil {
		e.add("name", "%v", err)
	}
	if len(n.Description) > MaxDescriptionLen {
		e.add("description", "must be at most %d bytes", MaxDescriptionLen)
	}
	if q := n.Quota; q != nil {
		if q.CPU < 0 {
			e.add("quota.cpu", "must be >= 0 millicores (0 = no cap; got %d)", q.CPU)
		}
		if q.MemoryMB < 0 {
			e.add("quota.memory_mb", "must be >= 0 MiB (0 = no cap; got %d)", q.MemoryMB)
		}
	}
	if len(e.Errors) > 0 {
		e.what = "namespace"
		return e
	}
	return nil
}

// JobKey is a job's identity in state: its name in the default namespace
// (so jobs stored before namespaces keep their keys) and
// "<namespace>/<name>" in any other. Neither names nor namespaces may hold
// '/', so a key names one job. Allocations, plans and placement failures
// carry it as their JobID.
func JobKey(namespace, name string) string {
	if namespace == "" || namespace == DefaultNamespace {
		return name
	}
	return namespace + "/" + name
}

// JobNamespace returns the namespace of a job key.
func JobNamespace(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return DefaultNamespace
}

// JobName returns the name part of a job key.
func JobName(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// NamespaceUpsertRequest creates or replaces namespaces.
type NamespaceUpsertRequest struct {
	Namespaces []*Namespace `json:"namespaces"`
}

// NamespaceDeleteRequest deletes namespaces; the FSM refuses one that
// still holds jobs.
type NamespaceDeleteRequest struct {
	Names []string `json:"names"`
}
