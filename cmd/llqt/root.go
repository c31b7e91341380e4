package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/internal/cli"
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

// subcommands are the constructors of llqt's top-level commands, listed in
// one place rather than registered by each command file (help sorts the
// commands by name).
var subcommands = []func() *cobra.Command{
	newBenchCmd, newConvertCmd, newConvertLoraCmd, newEvalCmd, newGenerateCmd,
	newImatrixCmd, newInspectCmd, newMergeLoraCmd, newMetaCmd, newQuantizeCmd,
	newReportCmd, newSplitCmd, newMergeCmd, newTokenizeCmd,
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "llqt",
		Short: "Convert, quantize and evaluate Llama-family models as GGUF",
		Long: `llqt converts Hugging Face Llama-family checkpoints to GGUF, quantizes them
byte-for-byte like llama.cpp b4748, and measures the result.

Commands take llama.cpp's flags where llqt has the equivalent (-m, -c, -b,
-ub, -t, -ctk/-ctv, -ngl, -fa, …), so a script written for llama-quantize,
llama-perplexity, llama-bench or llama-cli runs with "llqt COMMAND" in its
place; flags that mean nothing on a CPU (-ngl, -fa, --no-mmap) are accepted
with a note.`,
		Example: `  llqt convert ./Llama-3.2-1B model-f32.gguf --outtype f32
  llqt quantize model-f32.gguf model-Q4_K_M.gguf Q4_K_M
  llqt eval perplexity -m model-Q4_K_M.gguf -f wiki.test.raw
  llqt bench -m model-Q4_K_M.gguf
  llqt generate -m model-Q4_K_M.gguf -p "Once upon a time" -n 64`,
		Version:       version + " (commit " + buildCommit() + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command: resolve -t 0 to one thread per CPU, refuse a
		// negative count, and note llama.cpp's GPU flags that mean nothing here.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if fl := fs.Lookup("threads"); fl != nil && fl.Value.Type() == "int" {
				n, err := fs.GetInt("threads")
				if err != nil {
					return err
				}
				if n, err = cli.Threads(n, cmd.ErrOrStderr()); err != nil {
					return err
				}
				if err := fl.Value.Set(strconv.Itoa(n)); err != nil {
					return err
				}
			}
			cli.IgnoredNotes(cmd.ErrOrStderr(), fs)
			return nil
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see %[1]s --help)", cmd.CommandPath(), err)
	})
	for _, mk := range subcommands {
		root.AddCommand(mk())
	}
	// "llqt perplexity" stands in for llama-perplexity as "llqt eval perplexity".
	alias := newPerplexityCmd()
	alias.Hidden = true
	root.AddCommand(alias)
	return root
}

// addThreadsFlag adds -t/--threads, defaulting to every CPU; 0 also means
// every CPU (resolved before the command runs).
func addThreadsFlag(cmd *cobra.Command, threads *int) {
	cmd.Flags().IntVarP(threads, "threads", "t", runtime.NumCPU(), cli.ThreadsUsage)
}

// addModelFlag adds llama.cpp's -m/--model as another way to name the
// model that a command otherwise takes as its first argument.
func addModelFlag(cmd *cobra.Command, model *string) {
	cmd.Flags().StringVarP(model, "model", "m", "", "the model file (instead of the MODEL argument, as in llama.cpp)")
}

// modelArgs returns the model path and the remaining arguments: the model
// is -m FILE or the first argument, never both; want is how many further
// arguments the command takes.
func modelArgs(model string, args []string, want int) (string, []string, error) {
	if model != "" {
		if len(args) != want {
			return "", nil, fmt.Errorf("-m %s is given, so want %d more argument(s), got %d: %q", model, want, len(args), args)
		}
		return model, args, nil
	}
	if len(args) == 0 {
		return "", nil, errors.New("no model: give MODEL as the first argument or -m MODEL")
	}
	if len(args) != want+1 {
		return "", nil, fmt.Errorf("want MODEL and %d more argument(s), got %d: %q", want, len(args), args)
	}
	return args[0], args[1:], nil
}

// onModel makes cmd a command on one model, given as its only argument or
// by -m: it sets Args and RunE and adds -m; run gets the model's path and a
// context that SIGINT and SIGTERM cancel.
func onModel(cmd *cobra.Command, model *string, run func(ctx context.Context, cmd *cobra.Command, model string) error) *cobra.Command {
	cmd.Args = cobra.RangeArgs(0, 1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path, _, err := modelArgs(*model, args, 0)
		if err != nil {
			return err
		}
		return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
			return run(ctx, cmd, path)
		})
	}
	addModelFlag(cmd, model)
	return cmd
}

// kvFlags are --kv-f32 and llama.cpp's -ctk/-ctv: the KV cache type.
type kvFlags struct {
	f32          bool
	typeK, typeV string
}

// addKVFlags adds --kv-f32, -ctk/--cache-type-k and -ctv/--cache-type-v
// (reached as -ctk/-ctv through cli.LlamaArgs).
func addKVFlags(cmd *cobra.Command, k *kvFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&k.f32, "kv-f32", false, "keep the KV cache in F32 instead of F16 (llama.cpp's default); same as -ctk f32 -ctv f32")
	fl.StringVar(&k.typeK, "cache-type-k", "f16", "-ctk: KV cache type for K, f16 or f32 (K and V must match)")
	fl.StringVar(&k.typeV, "cache-type-v", "f16", "-ctv: KV cache type for V, f16 or f32 (K and V must match)")
}

// addEngineFlags adds what every command that runs the built-in engine on
// one thread count takes: the KV cache type, llama.cpp's GPU flags (noted
// and ignored) and -t.
func addEngineFlags(cmd *cobra.Command, kv *kvFlags, threads *int) {
	addKVFlags(cmd, kv)
	cli.AddCPUOnlyFlags(cmd.Flags(), false)
	addThreadsFlag(cmd, threads)
}

// kvF32 resolves the flags to whether the cache is F32.
func (k *kvFlags) kvF32() (bool, error) {
	norm := func(flag, v string) (bool, error) {
		switch strings.ToLower(v) {
		case "f16":
			return false, nil
		case "f32":
			return true, nil
		}
		return false, fmt.Errorf("%s %s: llqt's KV cache is f16 or f32 (quantized caches are not implemented)", flag, v)
	}
	kf, err := norm("-ctk", k.typeK)
	if err != nil {
		return false, err
	}
	vf, err := norm("-ctv", k.typeV)
	if err != nil {
		return false, err
	}
	if kf != vf {
		return false, fmt.Errorf("-ctk %s -ctv %s: llqt keeps K and V in one type; give both as f16 or both as f32", k.typeK, k.typeV)
	}
	return kf || k.f32, nil
}

// ctxTrainWarning is llama.cpp's "possible training context overflow"
// warning, or "" when nCtx fits the training context.
func ctxTrainWarning(nCtx, nCtxTrain int) string {
	if nCtxTrain <= 0 || nCtx <= nCtxTrain {
		return ""
	}
	return fmt.Sprintf("-c %d is larger than the model's training context of %d: positions past %d were never trained, so results there may be poor (llama.cpp: possible training context overflow)",
		nCtx, nCtxTrain, nCtxTrain)
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
