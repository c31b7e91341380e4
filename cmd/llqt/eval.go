package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/atomicfile"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/perplexity"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure a model's quality (perplexity, KL-divergence)",
		Example: `  llqt eval perplexity model.gguf -f wiki.test.raw
  llqt eval perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20`,
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
	kv       kvFlags
	parallel int
	model    string
	ubatch   int
	stride   int
	outType  int
	lora     loraFlags
}

func newPerplexityCmd() *cobra.Command {
	f := &perplexityFlags{}
	cmd := &cobra.Command{
		Use: "perplexity MODEL -f TEXT [-c 512] [-b 2048] [--chunks N]",
		Example: `  # perplexity on WikiText-2 with llama-perplexity's defaults (-c 512)
  llqt eval perplexity model.gguf -f wiki.test.raw
  # the same command line as llama-perplexity's
  llqt eval perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20 -t 8
  # KL-divergence of a quantized model against the F16 one
  llqt eval perplexity f16.gguf -f wiki.test.raw --kl-divergence-base f16.kld
  llqt eval perplexity q4_k_m.gguf --kl-divergence-base f16.kld --kl-divergence
  # JSON for scripts
  llqt eval perplexity model.gguf -f wiki.test.raw --chunks 4 --json`,
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
"Final estimate: PPL = … +/- …". -b, -ub and -t change only the speed.
-c 0 uses the model's training context; a larger -c than that is allowed
with a warning, as in llama.cpp.

A value that overflows the F16 KV cache (or any value that is not finite)
stops the run with an error naming the layer and token position; llama.cpp
prints "nan" there. --kv-f32 (or -ctk f32 -ctv f32) keeps the cache in F32.

--ppl-stride N uses llama-perplexity's strided method instead: windows of
-c + N/2 tokens every N tokens, the last N of each scored, no BOS in front.
(llama-perplexity b4748 also multiplies the window by -b/-c when -b is
larger than -c; give -b equal to -c there to compare.)

KL-divergence takes two runs. First the reference model writes its
log-probabilities with --kl-divergence-base FILE (llama.cpp's _logits_ format,
interchangeable with llama-perplexity's; about n_vocab·n_tokens bytes). Then
each other model runs with --kl-divergence-base FILE --kl-divergence; the text
and context size come from FILE (-f is not needed), and llama-perplexity's
statistics blocks are printed: PPL(Q) against PPL(base), KL-divergence and
token-probability differences with percentiles, and how often both models put
the highest probability on the same token.`,
	}
	onModel(cmd, &f.model, func(ctx context.Context, cmd *cobra.Command, model string) error {
		return runPerplexity(ctx, cmd, model, f)
	})
	fl := cmd.Flags()
	fl.StringVarP(&f.text, "file", "f", "", "text file to evaluate")
	fl.IntVarP(&f.nCtx, "ctx-size", "c", perplexity.DefaultNCtx, "tokens per chunk (0: the model's training context)")
	fl.IntVar(&f.ubatch, "ubatch-size", 512, "-ub: tokens per forward pass (speed only)")
	fl.IntVar(&f.stride, "ppl-stride", 0, "strided perplexity: a window of -c tokens every N tokens, its last N scored (0: llama-perplexity's chunks)")
	fl.IntVar(&f.outType, "ppl-output-type", 0, "0: running estimate as [i]ppl; 1: one line per chunk (first token, PPL, mean NLL, its error)")
	fl.IntVarP(&f.nBatch, "batch-size", "b", perplexity.DefaultNBatch, "tokens per decode; a multiple of -c evaluates that many chunks at once")
	fl.IntVar(&f.chunks, "chunks", 0, "evaluate at most this many chunks (0 or -1: all)")
	fl.IntVar(&f.parallel, "parallel", 0, "chunks evaluated at once in separate contexts (0: as many as -b holds)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object instead of the running output")
	fl.StringVar(&f.klBase, "kl-divergence-base", "", "write (or, with --kl-divergence, read) the base log-probabilities FILE")
	fl.BoolVar(&f.kl, "kl-divergence", false, "compare with the base log-probabilities in --kl-divergence-base")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing --kl-divergence-base file")
	addEngineFlags(cmd, &f.kv, &f.threads)
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
	// Warnings are the run's warnings (also printed on standard error).
	Warnings []string `json:"warnings,omitempty"`
	*perplexity.Result
}

const (
	methodLine   = "llama-perplexity (b4748): non-overlapping chunks, BOS first, positions n_ctx/2…n_ctx−2 scored"
	strideMethod = "llama-perplexity --ppl-stride %d (b4748): a window of n_ctx tokens every %[1]d, its last %[1]d scored, no BOS"
)

func runPerplexity(ctx context.Context, cmd *cobra.Command, modelPath string, f *perplexityFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.kl && f.klBase == "" {
		return errors.New("--kl-divergence needs --kl-divergence-base FILE (written by an earlier run of the base model)")
	}
	if !f.kl && f.text == "" {
		return errors.New("no text: give -f TEXT")
	}
	if f.nCtx < 4 && f.nCtx != 0 {
		return fmt.Errorf("-c %d is too small (at least 4, or 0 for the model's training context)", f.nCtx)
	}
	if f.nBatch < 1 {
		return fmt.Errorf("-b %d must be positive", f.nBatch)
	}
	if f.ubatch < 1 {
		return fmt.Errorf("-ub %d must be positive", f.ubatch)
	}
	if f.outType != 0 && f.outType != 1 {
		return fmt.Errorf("--ppl-output-type %d: want 0 or 1", f.outType)
	}
	if f.stride < 0 {
		return fmt.Errorf("--ppl-stride %d: the stride must be positive (0: no stride)", f.stride)
	}
	if f.stride > 0 && (f.kl || f.klBase != "") {
		return errors.New("--ppl-stride cannot be combined with --kl-divergence-base (llama-perplexity ignores the stride there)")
	}
	kvF32, err := f.kv.kvF32()
	if err != nil {
		return err
	}
	if f.kl {
		if _, err := os.Stat(f.klBase); err != nil {
			return fmt.Errorf("--kl-divergence-base: %w", err)
		}
	}
	if !f.kl && f.text != "" {
		if st, err := os.Stat(f.text); err != nil {
			return fmt.Errorf("-f: %w", err)
		} else if st.IsDir() {
			return fmt.Errorf("-f %s: is a directory; give the text file", f.text)
		}
	}
	if !f.kl && f.klBase != "" {
		if st, err := os.Stat(filepath.Dir(f.klBase)); err != nil || !st.IsDir() {
			return fmt.Errorf("--kl-divergence-base %s: the folder %s does not exist", f.klBase, filepath.Dir(f.klBase))
		}
		if st, err := os.Stat(f.klBase); err == nil && st.IsDir() {
			return fmt.Errorf("--kl-divergence-base %s: is a directory; give a file name", f.klBase)
		} else if err == nil && !f.force {
			return fmt.Errorf("--kl-divergence-base %s: the file exists; add --kl-divergence to compare with it, or --force to overwrite it", f.klBase)
		}
	}

	opt := eval.Options{Threads: f.threads, KVF32: kvF32, UBatch: f.ubatch}
	m, err := loadModel(modelPath, opt, &f.lora)
	if err != nil {
		return err
	}
	defer m.Close()
	if f.nCtx == 0 {
		f.nCtx = m.Hparams.NCtxTrain
		if f.nCtx < 4 {
			return fmt.Errorf("-c 0: %s does not give a usable training context (%d); give -c", modelPath, m.Hparams.NCtxTrain)
		}
	}
	var warnings []string
	if w := ctxTrainWarning(f.nCtx, m.Hparams.NCtxTrain); w != "" && !(f.kl && !cmd.Flags().Changed("ctx-size")) {
		warnings = append(warnings, w)
		fmt.Fprintln(stderr, "warning:", w)
	}
	text := f.text
	if f.kl {
		text = "" // the tokens come from the base file
	}
	toks, popt, err := perplexity.EngineText(m, text)
	if err != nil {
		return err
	}
	popt.NBatch, popt.MaxChunks, popt.Threads, popt.Parallel = f.nBatch, f.chunks, f.threads, f.parallel
	popt.OutputType = f.outType

	// The settings lines go to out before the progress bar starts; the
	// per-chunk lines go to running, held back on a terminal.
	var out io.Writer = stdout
	if f.json {
		out = nil
	}
	running := cli.NewRunningOutput(stdout, stderr, f.json)
	method := methodLine
	if f.stride > 0 {
		method = fmt.Sprintf(strideMethod, f.stride)
	}
	settings := func(nCtx, nChunks, nTokens int) {
		if out == nil {
			return
		}
		fmt.Fprintf(out, "model: %s\nmethod: %s\n", modelPath, method)
		scored := nChunks * (nCtx - 1 - nCtx/2)
		if f.stride > 0 {
			scored = nChunks * f.stride
		}
		fmt.Fprintf(out, "settings: n_ctx %d, n_batch %d, %d chunks of %d tokens (%d tokens scored of %d), threads %d, KV cache %s\n",
			nCtx, f.nBatch, nChunks, nCtx, scored, nTokens, f.threads, m.KVType())
		for _, w := range warnings {
			fmt.Fprintln(out, "warning:", w)
		}
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
		popt.Out = running.Writer()
		res, err = perplexity.KLDivergence(ctx, perplexity.FromEngine(m), br, popt)
		bar.Finish()
		running.Release()
		if err != nil {
			return fmt.Errorf("%s: %w", modelPath, err)
		}
	} else {
		popt.NCtx = f.nCtx
		nChunks := perplexity.NumChunks(len(toks), f.nCtx, f.chunks)
		nCtx := f.nCtx
		if f.stride > 0 {
			nChunks = perplexity.NumStrided(len(toks), f.nCtx, f.stride, f.chunks)
			nCtx += f.stride / 2
		}
		settings(nCtx, nChunks, len(toks))
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
		popt.Out = running.Writer()
		if f.stride > 0 {
			res, err = perplexity.PerplexityStrided(ctx, perplexity.FromEngine(m), toks, f.stride, popt)
		} else {
			res, err = perplexity.Perplexity(ctx, perplexity.FromEngine(m), toks, popt)
		}
		bar.Finish()
		running.Release()
		if err != nil {
			return blameRun(err, modelPath, f.text)
		}
		if base != nil {
			if err := base.Commit(); err != nil {
				return err
			}
		}
	}
	if f.json {
		return cli.JSON(stdout, perplexityJSON{Model: modelPath, Text: f.text, BaseFile: f.klBase,
			Method: method, Threads: f.threads, Warnings: warnings, Result: res})
	}
	fmt.Fprintf(stdout, "\n%d tokens in %.2f s: %.1f tokens/s\n", res.NChunks*res.NCtx, res.Seconds, res.TokensPerSecond)
	return nil
}

// blameRun names the file a failed run over a text is blamed on: the model
// for a value that blew up in the forward pass (eval.NumericError), the
// text for anything else.
func blameRun(err error, modelPath, textPath string) error {
	var ne *eval.NumericError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: %w", modelPath, err)
	}
	return fmt.Errorf("%s: %w", textPath, err)
}
