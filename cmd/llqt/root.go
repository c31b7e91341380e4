package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set by the Makefile through -ldflags "-X main.version=…".
var (
	version = "dev"
	commit  = ""
)

// buildCommit returns the VCS revision from the linker flag or the Go build info.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// subcommands holds each command file's constructor (convert, quantize,
// inspect, …); every file appends its own from init.
var subcommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "llqt",
		Short:         "Convert, quantize and evaluate Llama-family models as GGUF",
		Version:       version + " (commit " + buildCommit() + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, mk := range subcommands {
		root.AddCommand(mk())
	}
	return root
}

// addThreadsFlag adds -t/--threads, defaulting to every CPU.
func addThreadsFlag(cmd *cobra.Command, threads *int) {
	cmd.Flags().IntVarP(threads, "threads", "t", runtime.NumCPU(), "worker threads")
}
