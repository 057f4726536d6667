package structs

import (
	"errors"
	"strings"
	"testing"
)

func logsJob(l LogConfig) *Job {
	j := &Job{Name: "web", Driver: "exec", Resources: Resources{CPU: 100, MemoryMB: 32}, Logs: l}
	j.Canonicalize()
	return j
}

func TestLogConfigDefaultsAndLimits(t *testing.T) {
	cases := []struct {
		name string
		in   LogConfig
		want LogConfig // after Canonicalize
		errs []string  // fields refused
	}{
		{"absent: Nomad's defaults", LogConfig{}, LogConfig{MaxFiles: 10, MaxFileSizeMB: 10}, nil},
		{"one field set", LogConfig{MaxFiles: 3}, LogConfig{MaxFiles: 3, MaxFileSizeMB: 10}, nil},
		{"both set", LogConfig{MaxFiles: 1, MaxFileSizeMB: 1}, LogConfig{MaxFiles: 1, MaxFileSizeMB: 1}, nil},
		{"largest", LogConfig{MaxFiles: MaxLogFiles, MaxFileSizeMB: MaxLogFileSizeMB}, LogConfig{MaxFiles: MaxLogFiles, MaxFileSizeMB: MaxLogFileSizeMB}, nil},
		{"negative", LogConfig{MaxFiles: -1, MaxFileSizeMB: -5}, LogConfig{MaxFiles: -1, MaxFileSizeMB: -5},
			[]string{"logs.max_files: must be between 1 and 100 files per stream (got -1)", "logs.max_file_size_mb: must be between 1 and 10240 MiB (got -5)"}},
		{"too many files", LogConfig{MaxFiles: 101}, LogConfig{MaxFiles: 101, MaxFileSizeMB: 10},
			[]string{"logs.max_files: must be between 1 and 100 files per stream (got 101)"}},
		{"files too big", LogConfig{MaxFileSizeMB: 10241}, LogConfig{MaxFiles: 10, MaxFileSizeMB: 10241},
			[]string{"logs.max_file_size_mb: must be between 1 and 10240 MiB (got 10241)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := logsJob(tc.in)
			if j.Logs != tc.want {
				t.Errorf("after Canonicalize: %+v, want %+v", j.Logs, tc.want)
			}
			err := j.Validate(nil)
			var ve *ValidationError
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			var got []string
			for _, fe := range ve.Errors {
				got = append(got, fe.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.errs, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.errs, "\n"))
			}
		})
	}
}
