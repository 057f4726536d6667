package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=v0.2.0".
var version = "0.1.0-dev"

// buildInfo describes this binary.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func (b buildInfo) String() string {
	s := fmt.Sprintf("gantry %s (%s, %s", b.Version, b.GoVersion, b.Platform)
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += ", revision " + rev
		if b.Modified {
			s += "+modified"
		}
	}
	return s + ")"
}

func init() {
	var output string
	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			case "", "table":
				_, err := fmt.Fprintln(cmd.OutOrStdout(), b)
				return err
			}
			return fmt.Errorf("-o %q: output format must be table or json", output)
		},
	}
	versionCmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	rootCmd.AddCommand(versionCmd)
	// `gantry --version` prints the same line.
	rootCmd.Version = readBuildInfo().String()
	rootCmd.SetVersionTemplate("{{.Version}}\n")
}
