// Command gantry is the single binary of the gantry cluster: servers, agents,
// peers, the dev cluster, the benchmark and the CLI clients.
//
// Each subcommand lives in its own file and registers itself on rootCmd from
// an init function, so the commands of independent subsystems never touch
// the same file.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "gantry",
	Short:         "gantry runs work and keeps data on a cluster of machines",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
