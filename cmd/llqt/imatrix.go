package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/atomicfile"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

type imatrixFlags struct {
	model, text, out, format string
	inFiles                  []string
	nCtx, chunks, skip       int
	outFreq, saveFreq        int
	processOutput, noPPL     bool
	threads                  int
	kv                       kvFlags
	json, force              bool
}

func newImatrixCmd() *cobra.Command {
	f := &imatrixFlags{}
	cmd := &cobra.Command{
		Use:   "imatrix MODEL -f TEXT [-o imatrix.dat] [-c 512] [--chunks N]",
		Short: "Compute an importance matrix for quantization, as llama-imatrix does",
		Example: `  # llama-imatrix's form: 200 chunks of 512 tokens of calibration text
  llqt imatrix -m model-f16.gguf -f calibration.txt -o imatrix.dat --chunks 200
  # current llama.cpp's GGUF imatrix format
  llqt imatrix model-f16.gguf -f calibration.txt -o imatrix.gguf
  # combine two matrices (ncall-weighted), then quantize with the result
  llqt imatrix model-f16.gguf --in-file a.dat --in-file b.dat -o ab.dat
  llqt quantize --imatrix ab.dat model-f16.gguf model-IQ2_XXS.gguf IQ2_XXS`,
		Long: `Run llama-imatrix's method (llama.cpp b4748) on the built-in engine: TEXT is
read with one trailing newline dropped and tokenized with BOS, cut into
chunks of -c tokens (--chunk I skips the first I), and each chunk is
evaluated from an empty cache with BOS first. Every weight product of a
block (blk.*; output.weight too with --process-output) with at least 16
activation rows adds the squares of its input to that weight's per-column
sums. The running perplexity is printed as [i]ppl (llama-perplexity's
scoring), unless --no-ppl.

The output is b4748's imatrix.dat (entries in name order; values are
Σx²/count·ncall, then the chunk count and the -f argument as the dataset
name), or with --output-format gguf (or an OUT ending in .gguf) current
llama.cpp's GGUF imatrix (NAME.in_sum2, NAME.counts, NAME.in_sum;
imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size). Both are read by
llqt quantize --imatrix. The file is written atomically every
--output-frequency chunks and at the end, so an interrupted run leaves the
last complete save, as llama-imatrix does; --save-frequency N also keeps a
copy OUT.at_N every N chunks.

--in-file FILE (repeatable, either format) adds an earlier matrix first;
without -f the files are only combined, as llama-imatrix does (b4748 then
writes chunk count 0 and an empty dataset name).`,
	}
	onModel(cmd, &f.model, func(ctx context.Context, cmd *cobra.Command, model string) error {
		return runImatrix(ctx, cmd, model, f)
	})
	fl := cmd.Flags()
	fl.StringVarP(&f.text, "file", "f", "", "calibration text")
	fl.StringVarP(&f.out, "output-file", "o", "imatrix.dat", "output file")
	fl.StringVar(&f.format, "output-format", "", "dat (b4748's imatrix.dat) or gguf; default from OUT's extension (.gguf: gguf, else dat)")
	fl.StringArrayVar(&f.inFiles, "in-file", nil, "an earlier imatrix to combine with (repeatable)")
	fl.IntVarP(&f.nCtx, "ctx-size", "c", perplexity.DefaultNCtx, "tokens per chunk")
	fl.IntVar(&f.chunks, "chunks", 0, "process at most this many chunks (0 or -1: all)")
	fl.IntVar(&f.skip, "chunk", 0, "skip this many chunks at the start of the text")
	fl.IntVar(&f.outFreq, "output-frequency", 10, "save the output every N chunks")
	fl.IntVar(&f.saveFreq, "save-frequency", 0, "also keep a copy OUT.at_N every N chunks (0: none)")
	fl.BoolVar(&f.processOutput, "process-output", false, "collect output.weight too")
	fl.BoolVar(&f.noPPL, "no-ppl", false, "do not compute the running perplexity")
	fl.BoolVar(&f.json, "json", false, "print one JSON object instead of the running output")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing output file")
	addEngineFlags(cmd, &f.kv, &f.threads)
	return cmd
}

// imatrixJSON is the --json output.
type imatrixJSON struct {
	Model    string   `json:"model"`
	Text     string   `json:"text,omitempty"`
	Output   string   `json:"output"`
	Format   string   `json:"format"`
	InFiles  []string `json:"in_files,omitempty"`
	Threads  int      `json:"threads"`
	Warnings []string `json:"warnings,omitempty"`
	Entries  int      `json:"entries"`
	Chunks   int32    `json:"chunks"`
	*perplexity.ImatrixResult
}

func runImatrix(ctx context.Context, cmd *cobra.Command, modelPath string, f *imatrixFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.text == "" && len(f.inFiles) == 0 {
		return errors.New("no text: give -f TEXT (or --in-file FILE to combine earlier matrices)")
	}
	format := strings.ToLower(f.format)
	switch format {
	case "":
		format = "dat"
		if strings.HasSuffix(strings.ToLower(f.out), ".gguf") {
			format = "gguf"
		}
	case "dat", "gguf":
	default:
		return fmt.Errorf("--output-format %q: want dat or gguf", f.format)
	}
	if f.nCtx < 4 {
		return fmt.Errorf("-c %d is too small (at least 4)", f.nCtx)
	}
	if f.skip < 0 {
		return fmt.Errorf("--chunk %d: the chunks to skip must be 0 or more", f.skip)
	}
	if f.outFreq < 1 {
		return fmt.Errorf("--output-frequency %d: must be at least 1", f.outFreq)
	}
	if f.saveFreq < 0 {
		return fmt.Errorf("--save-frequency %d: must be 0 (none) or more", f.saveFreq)
	}
	if err := cli.CheckOutputFile(f.out, f.force); err != nil {
		return err
	}
	if f.text != "" {
		if st, err := os.Stat(f.text); err != nil {
			return fmt.Errorf("-f: %w", err)
		} else if st.IsDir() {
			return fmt.Errorf("-f %s: is a directory; give the text file", f.text)
		}
	}
	kvF32, err := f.kv.kvF32()
	if err != nil {
		return err
	}

	stats := quant.NewImatrixStats()
	for _, in := range f.inFiles {
		if err := checkDistinct(in, f.out); err != nil {
			return fmt.Errorf("--in-file: %w", err)
		}
		if err := stats.AddFile(in, f.nCtx); err != nil {
			return fmt.Errorf("--in-file: %w", err)
		}
	}
	save := func(path string) error {
		return writeImatrix(ctx, path, stats, format, f.text, f.nCtx, true)
	}
	summary := imatrixJSON{Model: modelPath, Text: f.text, Output: f.out, Format: format, InFiles: f.inFiles, Threads: f.threads}
	if f.text == "" {
		// llama-imatrix: "No prompt provided; combining precomputed matrices only."
		if err := writeImatrix(ctx, f.out, stats, format, "", f.nCtx, f.force); err != nil {
			return err
		}
		summary.Entries, summary.Chunks = stats.Len(), stats.LastCall
		if f.json {
			return cli.JSON(stdout, summary)
		}
		fmt.Fprintf(stdout, "combined %d files: %d entries written to %s (%s)\n", len(f.inFiles), stats.Len(), f.out, format)
		return nil
	}

	m, err := eval.Load(modelPath, eval.Options{Threads: f.threads, KVF32: kvF32})
	if err != nil {
		return err
	}
	defer m.Close()
	if w := ctxTrainWarning(f.nCtx, m.Hparams.NCtxTrain); w != "" {
		summary.Warnings = append(summary.Warnings, w)
		fmt.Fprintln(stderr, "warning:", w)
	}
	toks, popt, err := perplexity.EngineText(m, f.text)
	if err != nil {
		return err
	}
	c := m.NewContext(f.nCtx)
	defer c.Close()

	running := cli.NewRunningOutput(stdout, stderr, f.json)
	nChunks := perplexity.NumChunks(max(0, len(toks)-f.skip*f.nCtx), f.nCtx, f.chunks)
	if !f.json {
		fmt.Fprintf(stdout, "model: %s\nmethod: llama-imatrix (b4748): chunks of %d tokens, BOS first, products of >= 16 rows\n", modelPath, f.nCtx)
		fmt.Fprintf(stdout, "settings: n_ctx %d, %d chunks (the text has %d tokens; skipping %d chunks), threads %d, KV cache %s, output %s (%s)\n\n",
			f.nCtx, nChunks, len(toks), f.skip, f.threads, m.KVType(), f.out, format)
	}
	bar := cli.NewCountProgress(stderr, int64(nChunks), "imatrix")
	res, err := perplexity.Imatrix(ctx, c, m.NVocab(), toks, stats, perplexity.ImatrixOptions{
		NCtx: f.nCtx, MaxChunks: f.chunks, SkipChunks: f.skip, ProcessOutput: f.processOutput, NoPPL: f.noPPL,
		BOS: popt.BOS, AddBOS: popt.AddBOS, Threads: f.threads, Out: running.Writer(),
		Progress: func(done, _ int) { bar.Set(int64(done)) },
		Save: func(done int) error {
			if f.saveFreq > 0 && done%f.saveFreq == 0 {
				if err := save(f.out + ".at_" + strconv.Itoa(done)); err != nil {
					return err
				}
			}
			if done%f.outFreq == 0 && done < nChunks { // the last save follows the run
				return save(f.out)
			}
			return nil
		},
		SaveEvery: gcd(f.outFreq, max(f.saveFreq, f.outFreq)),
	})
	bar.Finish()
	running.Release()
	if err != nil {
		return blameRun(err, modelPath, f.text)
	}
	if stats.Len() == 0 {
		return fmt.Errorf("%s: no product had 16 or more activation rows (-c %d); nothing to write", modelPath, f.nCtx)
	}
	if err := writeImatrix(ctx, f.out, stats, format, f.text, f.nCtx, true); err != nil {
		return err
	}
	summary.Entries, summary.Chunks, summary.ImatrixResult = stats.Len(), stats.LastCall, res
	if f.json {
		return cli.JSON(stdout, summary)
	}
	fmt.Fprintf(stdout, "\nstored %d entries after %d chunks in %s (%s); %.1f tokens/s\n",
		stats.Len(), res.NChunks, f.out, format, res.TokensPerSecond)
	return nil
}

// writeImatrix writes stats to path atomically in format, dataset naming
// the text as it was given.
func writeImatrix(ctx context.Context, path string, stats *quant.ImatrixStats, format, dataset string, nCtx int, overwrite bool) error {
	out, err := atomicfile.Create(path, overwrite)
	if err != nil {
		return err
	}
	if format == "gguf" {
		err = stats.WriteGGUF(ctx, out, dataset, nCtx)
	} else {
		err = stats.WriteDat(out, dataset)
	}
	if err != nil {
		out.Abort()
		return fmt.Errorf("%s: %w", path, err)
	}
	return out.Commit()
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
