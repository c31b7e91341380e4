package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/cli"
)

func init() { subcommands = append(subcommands, newGenerateCmd) }

type generateOptions struct {
	prompt   string
	nPredict int
	nCtx     int
	threads  int
	temp     float32
	topK     int
	topP     float32
	seed     int64
	beams    int
	kvF32    bool
	noEscape bool
	lora     loraFlags
}

func newGenerateCmd() *cobra.Command {
	var o generateOptions
	cmd := &cobra.Command{
		Use:   "generate MODEL -p PROMPT [-n N]",
		Short: "Generate text from a prompt with the built-in engine",
		Long: `Generate a continuation of PROMPT with the built-in CPU engine and stream
it to standard output; prompt and generation speeds go to standard error.

Sampling follows llama.cpp's chain: top-k, top-p, temperature, then a seeded
random draw. --temp 0 is greedy decoding (llama-simple's output). --beam N
runs a beam search over N beams instead and prints the best continuation at
the end. Generation stops after N tokens or at an end-of-generation token.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := cli.SignalContext(cmd.Context())
			err := runGenerate(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
			return cli.Interrupted(err, stop())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.prompt, "prompt", "p", "", "prompt text (escapes such as \\n are processed)")
	fl.IntVarP(&o.nPredict, "n-predict", "n", 128, "tokens to generate")
	fl.IntVarP(&o.nCtx, "ctx-size", "c", 0, "context size (default: prompt + n, at most the model's)")
	fl.Float32Var(&o.temp, "temp", 0.8, "temperature; 0 is greedy")
	fl.IntVar(&o.topK, "top-k", 40, "keep the K most likely tokens (0: all)")
	fl.Float32Var(&o.topP, "top-p", 0.95, "keep the most likely tokens up to probability P (1: all)")
	fl.Int64Var(&o.seed, "seed", -1, "random seed (-1: random)")
	fl.IntVar(&o.beams, "beam", 0, "beam search with N beams instead of sampling")
	fl.BoolVar(&o.kvF32, "kv-f32", false, "keep the KV cache in F32 instead of F16")
	fl.BoolVar(&o.noEscape, "no-escape", false, "do not process escapes in the prompt")
	addThreadsFlag(cmd, &o.threads)
	_ = cmd.MarkFlagRequired("prompt")
	withLoRA(cmd, &o.lora)
	return cmd
}

func runGenerate(ctx context.Context, out, errw io.Writer, path string, o generateOptions) error {
	if o.nPredict < 0 {
		return fmt.Errorf("-n must not be negative")
	}
	m, err := loadModel(path, eval.Options{Threads: o.threads, KVF32: o.kvF32}, &o.lora)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		return err
	}
	prompt := o.prompt
	if !o.noEscape {
		prompt = processEscapes(prompt)
	}
	ids, err := tok.Encode(prompt, true, true)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("the prompt has no tokens")
	}
	nCtx := o.nCtx
	if nCtx <= 0 {
		nCtx = min(len(ids)+o.nPredict, m.Hparams.NCtxTrain)
	}
	if len(ids) >= nCtx {
		return fmt.Errorf("prompt of %d tokens does not fit a context of %d", len(ids), nCtx)
	}
	nPredict := min(o.nPredict, nCtx-len(ids))
	c := m.NewContext(nCtx)
	defer c.Close()

	seed := uint64(o.seed)
	if o.seed < 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// The prompt is echoed as given; the continuation follows it.
	if _, err := io.WriteString(out, prompt); err != nil {
		return err
	}

	if o.beams > 0 {
		t0 := time.Now()
		best, err := eval.BeamSearch(c, ids, eval.BeamOptions{Beams: o.beams, NPredict: nPredict, Stop: tok.IsEOG})
		if err != nil {
			return err
		}
		for _, id := range best {
			if _, err := io.WriteString(out, tok.TokenToPiece(id, true)); err != nil {
				return err
			}
		}
		fmt.Fprintln(out)
		el := time.Since(t0)
		fmt.Fprintf(errw, "\nbeam search: %d beams, %d prompt + %d generated tokens in %.2f s\n",
			o.beams, len(ids), len(best), el.Seconds())
		return nil
	}

	sampler := eval.NewSampler(eval.SamplerOptions{Temp: o.temp, TopK: o.topK, TopP: o.topP, Seed: seed})
	t0 := time.Now()
	logits, err := c.Decode(ids, false)
	if err != nil {
		return err
	}
	tPrompt := time.Since(t0)
	t1 := time.Now()
	nGen := 0
	for nGen < nPredict {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := sampler.Sample(logits)
		if tok.IsEOG(next) {
			break
		}
		if _, err := io.WriteString(out, tok.TokenToPiece(next, true)); err != nil {
			return err
		}
		nGen++
		if nGen == nPredict {
			break
		}
		if logits, err = c.Decode([]int32{next}, false); err != nil {
			return err
		}
	}
	tGen := time.Since(t1)
	fmt.Fprintln(out)
	fmt.Fprintln(errw)
	if o.temp > 0 {
		fmt.Fprintf(errw, "seed %d\n", seed)
	}
	fmt.Fprintf(errw, "prompt:     %5d tokens in %8.2f ms (%8.2f t/s)\n", len(ids), ms(tPrompt), rate(len(ids), tPrompt))
	fmt.Fprintf(errw, "generation: %5d tokens in %8.2f ms (%8.2f t/s)\n", nGen, ms(tGen), rate(nGen, tGen))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
