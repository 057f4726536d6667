package agent

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-project/gantry/internal/structs"
)

// PayloadFile is the name of a dispatched job's payload in its allocation
// directory (GANTRY_PAYLOAD holds the path).
const PayloadFile = "payload"

// jobEnv is the task's environment from its job: env, plus for jobs with
// metadata GANTRY_META_<KEY> (the key upper-cased, other characters than
// letters and digits as '_'), and for a periodic or dispatched child
// GANTRY_PARENT_JOB and, with a payload, GANTRY_PAYLOAD. The job's own env
// wins over these.
func jobEnv(j *structs.Job) map[string]string {
	if len(j.Meta) == 0 && j.ParentID == "" {
		return j.Env
	}
	env := make(map[string]string, len(j.Env)+len(j.Meta)+2)
	for k, v := range j.Meta {
		env["GANTRY_META_"+envName(k)] = v
	}
	if j.ParentID != "" {
		env["GANTRY_PARENT_JOB"] = j.ParentID
	}
	if len(j.Payload) > 0 {
		env["GANTRY_PAYLOAD"] = PayloadFile // relative: the task starts in its allocation directory
	}
	for k, v := range j.Env {
		env[k] = v
	}
	return env
}

func envName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// writePayload writes a dispatched job's payload into the allocation
// directory before the task starts (at most structs.MaxDispatchPayload
// bytes, checked by the server).
func writePayload(allocDir string, j *structs.Job) error {
	if j == nil || len(j.Payload) == 0 {
		return nil
	}
	return os.WriteFile(filepath.Join(allocDir, PayloadFile), j.Payload, 0o644)
}
