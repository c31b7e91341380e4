package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/kernels"
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

// addKernelsFlag adds --kernels, which picks the kernel set for speed
// comparisons: one AVX-512 machine can then also measure the AVX2 path.
func addKernelsFlag(cmd *cobra.Command, set *string) {
	cmd.Flags().StringVar(set, "kernels", "", "kernel set: "+strings.Join(kernels.Sets(), ", ")+
		` ("avx512" for avx512-vnni); default the fastest this CPU runs`)
}

// useKernels installs the kernel set named by --kernels, if any.
func useKernels(set string) error {
	if set == "" {
		return nil
	}
	if err := kernels.Use(set); err != nil {
		return fmt.Errorf("--kernels: %w", err)
	}
	return nil
}
