package jobspec

import "github.com/gantry-project/gantry/internal/structs"

// normalizeJobKinds gives the fields of job types (meta, the periodic and
// parameterized blocks) one form for "absent" and "empty", so a document
// and its re-encoding decode alike.
func normalizeJobKinds(job *structs.Job) {
	if len(job.Meta) == 0 {
		job.Meta = nil
	}
	if p := job.Parameterized; p != nil {
		if len(p.MetaRequired) == 0 {
			p.MetaRequired = nil
		}
		if len(p.MetaOptional) == 0 {
			p.MetaOptional = nil
		}
	}
}
