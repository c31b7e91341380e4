package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/atomicfile"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/perplexity"
)

func init() { subcommands = append(subcommands, newEvalCmd) }

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure a model's quality (perplexity, KL-divergence)",
	}
	cmd.AddCommand(newPerplexityCmd())
	cmd.AddCommand(newMultipleChoiceCmds()...)
	return cmd
}

type perplexityFlags struct {
	text     string
	nCtx     int
	nBatch   int
	chunks   int
	threads  int
	json     bool
	klBase   string
	kl       bool
	force    bool
	kvF32    bool
	parallel int
	lora     loraFlags
}

func newPerplexityCmd() *cobra.Command {
	f := &perplexityFlags{}
	cmd := &cobra.Command{
		Use:   "perplexity MODEL -f TEXT [-c 512] [-b 2048] [--chunks N]",
		Short: "Perplexity and KL-divergence exactly as llama-perplexity computes them",
		Long: `Compute perplexity with llama-perplexity's method (llama.cpp b4748), so the
numbers compare directly with llama.cpp's:

  - TEXT is read with one trailing newline dropped and tokenized whole, with
    BOS in front when the vocabulary adds it;
  - the tokens are cut into non-overlapping chunks of -c tokens (the rest is
    dropped), the first token of each chunk is replaced by BOS, and each chunk
    is evaluated from an empty cache;
  - the logits at positions c/2 … c−2 score the next token (c−1−c/2 tokens per
    chunk); PPL = exp(mean NLL), ± = sqrt((mean(nll²)−mean(nll)²)/(N−1))·PPL.

The running estimate is printed after each chunk as [i]ppl, then
"Final estimate: PPL = … +/- …". -b and -t change only the speed.

KL-divergence takes two runs. First the reference model writes its
log-probabilities with --kl-divergence-base FILE (llama.cpp's _logits_ format,
interchangeable with llama-perplexity's; about n_vocab·n_tokens bytes). Then
each other model runs with --kl-divergence-base FILE --kl-divergence; the text
and context size come from FILE (-f is not needed), and llama-perplexity's
statistics blocks are printed: PPL(Q) against PPL(base), KL-divergence and
token-probability differences with percentiles, and how often both models put
the highest probability on the same token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := cli.SignalContext(cmd.Context())
			err := runPerplexity(ctx, cmd, args[0], f)
			return cli.Interrupted(err, stop())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.text, "file", "f", "", "text file to evaluate")
	fl.IntVarP(&f.nCtx, "ctx-size", "c", perplexity.DefaultNCtx, "tokens per chunk")
	fl.IntVarP(&f.nBatch, "batch-size", "b", perplexity.DefaultNBatch, "tokens per decode; a multiple of -c evaluates that many chunks at once")
	fl.IntVar(&f.chunks, "chunks", 0, "evaluate at most this many chunks (0: all)")
	fl.IntVar(&f.parallel, "parallel", 0, "chunks evaluated at once in separate contexts (0: as many as -b holds)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object instead of the running output")
	fl.StringVar(&f.klBase, "kl-divergence-base", "", "write (or, with --kl-divergence, read) the base log-probabilities FILE")
	fl.BoolVar(&f.kl, "kl-divergence", false, "compare with the base log-probabilities in --kl-divergence-base")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing --kl-divergence-base file")
	fl.BoolVar(&f.kvF32, "kv-f32", false, "keep the KV cache in F32 instead of F16 (llama.cpp's default)")
	addThreadsFlag(cmd, &f.threads)
	withLoRA(cmd, &f.lora)
	return cmd
}

// perplexityJSON is the --json output.
type perplexityJSON struct {
	Model    string `json:"model"`
	Text     string `json:"text,omitempty"`
	BaseFile string `json:"kl_divergence_base,omitempty"`
	Method   string `json:"method"`
	Threads  int    `json:"threads"`
	*perplexity.Result
}

const methodLine = "llama-perplexity (b4748): non-overlapping chunks, BOS first, positions n_ctx/2…n_ctx−2 scored"

func runPerplexity(ctx context.Context, cmd *cobra.Command, modelPath string, f *perplexityFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.kl && f.klBase == "" {
		return errors.New("--kl-divergence needs --kl-divergence-base FILE (written by an earlier run of the base model)")
	}
	if !f.kl && f.text == "" {
		return errors.New("no text: give -f TEXT")
	}
	if f.nCtx < 4 {
		return fmt.Errorf("-c %d is too small (at least 4)", f.nCtx)
	}
	if f.nBatch < 1 {
		return fmt.Errorf("-b %d must be positive", f.nBatch)
	}
	if f.kl {
		if _, err := os.Stat(f.klBase); err != nil {
			return fmt.Errorf("--kl-divergence-base: %w", err)
		}
	}
	if !f.kl && f.text != "" {
		if _, err := os.Stat(f.text); err != nil {
			return fmt.Errorf("-f: %w", err)
		}
	}

	opt := eval.Options{Threads: f.threads, KVF32: f.kvF32}
	m, err := loadModel(modelPath, opt, &f.lora)
	if err != nil {
		return err
	}
	defer m.Close()
	text := f.text
	if f.kl {
		text = "" // the tokens come from the base file
	}
	toks, popt, err := perplexity.EngineText(m, text)
	if err != nil {
		return err
	}
	popt.NBatch, popt.MaxChunks, popt.Threads, popt.Parallel = f.nBatch, f.chunks, f.threads, f.parallel

	var out io.Writer = stdout
	// On a terminal the progress bar (stderr) and the running output
	// (stdout) would overwrite each other: hold the running output until the
	// bar is done.
	var held bytes.Buffer
	if f.json {
		out = nil
	}
	runOut := out
	if out != nil && cli.IsTerminal(stderr) && cli.IsTerminal(stdout) {
		runOut = &held
	}
	settings := func(nCtx, nChunks, nTokens int) {
		if out == nil {
			return
		}
		fmt.Fprintf(out, "model: %s\nmethod: %s\n", modelPath, methodLine)
		fmt.Fprintf(out, "settings: n_ctx %d, n_batch %d, %d chunks of %d tokens (%d tokens scored of %d), threads %d, KV cache %s\n",
			nCtx, f.nBatch, nChunks, nCtx, nChunks*(nCtx-1-nCtx/2), nTokens, f.threads, m.KVType())
	}

	var res *perplexity.Result
	if f.kl {
		br, err := perplexity.OpenBase(f.klBase)
		if err != nil {
			return err
		}
		defer br.Close()
		if cmd.Flags().Changed("ctx-size") {
			popt.NCtx = f.nCtx
		}
		nChunks := br.NChunk
		if f.chunks > 0 {
			nChunks = min(nChunks, f.chunks)
		}
		settings(br.NCtx, nChunks, len(br.Tokens))
		if out != nil {
			fmt.Fprintf(out, "base: %s\n\n", f.klBase)
		}
		bar := cli.NewCountProgress(stderr, int64(nChunks), "kl-divergence")
		popt.Progress = func(done, _ int) { bar.Set(int64(done)) }
		popt.Out = runOut
		res, err = perplexity.KLDivergence(ctx, perplexity.FromEngine(m), br, popt)
		bar.Finish()
		stdout.Write(held.Bytes())
		if err != nil {
			return err
		}
	} else {
		popt.NCtx = f.nCtx
		nChunks := perplexity.NumChunks(len(toks), f.nCtx, f.chunks)
		settings(f.nCtx, nChunks, len(toks))
		var base *atomicfile.File
		if f.klBase != "" {
			base, err = atomicfile.Create(f.klBase, f.force)
			if err != nil {
				return err
			}
			defer base.Abort() // no-op after Commit
			popt.BaseOut = base
			if out != nil {
				fmt.Fprintf(out, "writing base log-probabilities to %s (%.1f MB)\n", f.klBase,
					float64(perplexity.BaseFileSize(f.nCtx, m.NVocab(), nChunks))/1e6)
			}
		}
		if out != nil {
			fmt.Fprintln(out)
		}
		bar := cli.NewCountProgress(stderr, int64(nChunks), "perplexity")
		popt.Progress = func(done, _ int) { bar.Set(int64(done)) }
		popt.Out = runOut
		res, err = perplexity.Perplexity(ctx, perplexity.FromEngine(m), toks, popt)
		bar.Finish()
		stdout.Write(held.Bytes())
		if err != nil {
			return fmt.Errorf("%s: %w", f.text, err)
		}
		if base != nil {
			if err := base.Commit(); err != nil {
				return err
			}
		}
	}
	if f.json {
		return cli.JSON(stdout, perplexityJSON{Model: modelPath, Text: f.text, BaseFile: f.klBase,
			Method: methodLine, Threads: f.threads, Result: res})
	}
	fmt.Fprintf(stdout, "\n%d tokens in %.2f s: %.1f tokens/s\n", res.NChunks*res.NCtx, res.Seconds, res.TokensPerSecond)
	return nil
}
