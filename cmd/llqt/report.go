package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/report"
)

type reportFlags struct {
	types       []string
	text        string
	out         string
	nCtx        int
	chunks      int
	nBatch      int
	threads     int
	gate        string
	merge       bool
	benchPrompt int
	benchGen    int
	benchReps   int
	kernels     string
	model       string
	imatrix     string
	calibration string
	calChunks   int
	calCtx      int
}

// gateExitCode is the exit status when the report was written but a gate
// failed, distinct from 1 (the report could not be made).
const gateExitCode = 3

func newReportCmd() *cobra.Command {
	f := &reportFlags{}
	cmd := &cobra.Command{
		Use: "report SRC --types f16,q8_0,q4_k_m -f TEXT --out DIR",
		Example: `  # compare four variants of a Hugging Face checkpoint on WikiText-2
  llqt report ./Llama-3.2-1B --types f16,q8_0,q4_k_m,q4_0 -f wiki.test.raw --out report/
  # fail a CI job when Q4_K_M loses too much
  llqt report model-f16.gguf --types f16,q4_k_m -f wiki.test.raw --out report/ --gate 'q4_k_m:dppl<3%,kld<0.05'
  # the quality frontier: presets with and without an importance matrix, and
  # size targets at the size of Q4_K_M and at 3.5 bits per weight
  llqt report model-f32.gguf --types f32,q4_k_m,q4_k_m+imat,auto@q4_k_m,auto@3.5bpw \
      --imatrix imatrix.dat --calibration train.txt -f eval.txt --out frontier/
  # combine the reports of a CI matrix
  llqt report --merge --out all/ job1/report.json job2/report.json`,
		Short: "Quantize a model several ways and compare size, quality and speed",
		Long: `Produce every variant in --types from SRC (a Hugging Face directory or a GGUF
file; f32/f16/bf16/q8_0 from a Hugging Face directory are converted directly,
the others quantized from the f32 conversion), then measure each on TEXT:
file size and bits per weight, perplexity with llama-perplexity's method,
KL-divergence and same-top-token rate against the most precise variant (the
base), quantization time, and prompt/generation speed with a short bench.
Files already in DIR that were made from the same source by the same recipe
and llqt build are reused.

DIR receives the variants, report.md (a markdown table sorted by size),
report.json (schema llqt.report/v1, with provenance: llqt version and commit,
sha256 of the inputs, the text and its token count, CPU model and flags,
threads, kernel set, date), report.csv, and size_vs_quality.png/.svg.

Variants: a preset (q4_k_m); a preset with the importance matrix of
--imatrix (q4_k_m+imat); a size target (auto@4.5bpw, auto@3.9M, or
auto@q4_k_m for the size of that preset's file), whose per-tensor types are
chosen as quantize --target-bpw/--target-size chooses them, measuring each
tensor's sensitivity on --calibration (with --imatrix when given). The table
and report.json say, for each variant, the largest preset it beats: one at
least as large with a higher mean KLD. The plot draws presets, presets with
the importance matrix and size targets as three lines (the frontier).

--gate checks the result: 'q4_k_m:dppl<3%,kld<0.05;q8_0:kld<0.001' fails
(exit status 3, one line per violated condition) when a condition does not
hold. Metrics: dppl (ΔPPL %), kld (mean), kld99, top (same top p %), ppl,
size (MiB), bpw, pp and tg (tokens/s); operators < <= > >=.

--merge combines the report.json files of a CI matrix given as arguments
(each job measuring some variants against the same base) into DIR:
  llqt report --merge --out DIR job1/report.json job2/report.json …`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.model != "" {
				args = append([]string{f.model}, args...)
			}
			if len(args) == 0 && f.merge {
				return errors.New("--merge needs the report.json files to combine as arguments")
			}
			if len(args) == 0 {
				return errors.New("no SRC: give a Hugging Face directory or GGUF file as the argument or -m SRC")
			}
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runReport(ctx, cmd, args, f)
			})
		},
	}
	fl := cmd.Flags()
	addModelFlag(cmd, &f.model)
	fl.StringSliceVar(&f.types, "types", nil, "variants to produce and compare, e.g. f16,q8_0,q6_k,q4_k_m,q4_0,q2_k")
	fl.StringVarP(&f.text, "file", "f", "", "evaluation text")
	fl.StringVar(&f.out, "out", "", "output directory")
	fl.IntVarP(&f.nCtx, "ctx-size", "c", 0, "tokens per chunk (0: min(512, the model's training context))")
	fl.IntVar(&f.chunks, "chunks", report.DefaultChunks, "chunks evaluated per variant")
	fl.IntVarP(&f.nBatch, "batch-size", "b", 2048, "tokens per decode (speed only)")
	fl.StringVar(&f.imatrix, "imatrix", "", "importance matrix (llama-imatrix .dat or GGUF) for PRESET+imat and auto@ variants")
	fl.StringVar(&f.calibration, "calibration", "", "text on which auto@ variants measure each tensor's sensitivity (without it: the weighted-error proxy)")
	fl.IntVar(&f.calChunks, "calibration-chunks", 4, "chunks of the calibration text used per measurement")
	fl.IntVar(&f.calCtx, "calibration-ctx", 256, "tokens per calibration chunk")
	fl.StringVar(&f.gate, "gate", "", "quality gates, e.g. 'q4_k_m:dppl<3%,kld<0.05;q8_0:kld<0.001'")
	fl.BoolVar(&f.merge, "merge", false, "merge the report.json files given as arguments instead of measuring")
	fl.IntVar(&f.benchPrompt, "bench-prompt", report.DefaultBenchPrompt, "prompt tokens of the speed test (pp)")
	fl.IntVar(&f.benchGen, "bench-gen", report.DefaultBenchGen, "generated tokens of the speed test (tg)")
	fl.IntVar(&f.benchReps, "bench-reps", report.DefaultBenchReps, "repetitions of the speed test (0: no speed test)")
	addThreadsFlag(cmd, &f.threads)
	addKernelsFlag(cmd, &f.kernels)
	return cmd
}

func runReport(ctx context.Context, cmd *cobra.Command, args []string, f *reportFlags) error {
	if f.out == "" {
		return errors.New("no output directory: give --out DIR")
	}
	if err := useKernels(f.kernels); err != nil {
		return err
	}
	var gates []report.Gate
	if f.gate != "" {
		var err error
		if gates, err = report.ParseGates(f.gate); err != nil {
			return fmt.Errorf("--gate: %w", err)
		}
	}
	stderr := cmd.ErrOrStderr()
	var r *report.Report
	if f.merge {
		parts := make([]*report.Report, len(args))
		for i, a := range args {
			b, err := os.ReadFile(a)
			if err != nil {
				return err
			}
			if parts[i], err = report.ReadJSON(b, a); err != nil {
				return err
			}
		}
		var err error
		if r, err = report.Merge(parts, args); err != nil {
			return err
		}
	} else {
		if len(args) != 1 {
			return fmt.Errorf("one SRC expected, got %d arguments (to combine reports, use --merge)", len(args))
		}
		reps := f.benchReps
		if reps == 0 {
			reps = -1 // no speed test
		}
		var err error
		r, err = report.Build(ctx, report.Config{
			Source: args[0], Types: f.types, Text: f.text, OutDir: f.out,
			Imatrix: f.imatrix, Calibration: f.calibration, CalibrationChunks: f.calChunks, CalibrationCtx: f.calCtx,
			NCtx: f.nCtx, Chunks: f.chunks, NBatch: f.nBatch, Threads: f.threads,
			BenchPrompt: nonZero(f.benchPrompt), BenchGen: nonZero(f.benchGen), BenchReps: reps,
			Version: version, Commit: buildCommit(), Log: stderr,
		})
		if err != nil {
			return err
		}
	}
	if err := report.WriteAll(f.out, r); err != nil {
		return err
	}
	if err := report.WriteMarkdown(cmd.OutOrStdout(), r); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote report.md, report.json, report.csv, size_vs_quality.png and .svg to %s\n", f.out)
	if bad := report.Check(r, gates); len(bad) > 0 {
		for _, line := range bad {
			fmt.Fprintln(stderr, line)
		}
		return &cli.ExitError{Code: gateExitCode, Err: fmt.Errorf("%d of %d gate conditions failed", len(bad), len(gates))}
	}
	if len(gates) > 0 {
		fmt.Fprintf(stderr, "all %d gate conditions hold\n", len(gates))
	}
	return nil
}

// nonZero maps an explicit 0 (skip) to −1, which Config reads as "skip".
func nonZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
