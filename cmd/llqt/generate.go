package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/eval"
)

type generateOptions struct {
	prompt        string
	file          string
	model         string
	nPredict      int
	nCtx          int
	threads       int
	temp          float32
	topK          int
	topP          float32
	minP          float32
	repeatPenalty float32
	repeatLastN   int
	ignoreEOS     bool
	seed          int64
	beams         int
	kv            kvFlags
	noEscape      bool
	lora          loraFlags
}

func newGenerateCmd() *cobra.Command {
	var o generateOptions
	cmd := &cobra.Command{
		Use:   "generate MODEL -p PROMPT [-n N]",
		Short: "Generate text from a prompt with the built-in engine",
		Example: `  # greedy continuation of a prompt
  llqt generate model.gguf -p "Once upon a time" -n 64 --temp 0
  # llama-cli's form: -m, a prompt file, a seed and sampling settings
  llqt generate -m model.gguf -f prompt.txt -n 128 -s 42 --top-k 40 --min-p 0.05 --repeat-penalty 1.1
  # beam search over 4 beams
  llqt generate model.gguf -p "The cat" -n 32 --beam 4`,
		Long: `Generate a continuation of PROMPT with the built-in CPU engine and stream
it to standard output; prompt and generation speeds go to standard error.

Sampling follows llama.cpp's chain: repeat penalty, top-k, top-p, min-p,
temperature, then a seeded random draw. --temp 0 is greedy decoding
(llama-simple's output). --beam N runs a beam search over N beams instead and
prints the best continuation at the end.

Generation stops after -n tokens (-1: until the context is full), at an
end-of-generation token (unless --ignore-eos), or when the context (-c) is
full; standard error says which. -n 0 only evaluates the prompt. -f FILE reads
the prompt from a file (one trailing newline dropped, as llama-cli does).`,
	}
	onModel(cmd, &o.model, func(ctx context.Context, cmd *cobra.Command, model string) error {
		if err := o.readPrompt(cmd); err != nil {
			return err
		}
		return runGenerate(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), model, o)
	})
	fl := cmd.Flags()
	fl.StringVarP(&o.prompt, "prompt", "p", "", "prompt text (escapes such as \\n are processed)")
	fl.StringVarP(&o.file, "file", "f", "", "read the prompt from FILE")
	fl.IntVarP(&o.nPredict, "n-predict", "n", 128, "tokens to generate (-1: until the context is full; 0: evaluate the prompt only)")
	fl.IntVarP(&o.nCtx, "ctx-size", "c", 0, "context size (0: prompt + n, at most the model's training context)")
	fl.Float32Var(&o.temp, "temp", 0.8, "temperature; 0 is greedy")
	fl.IntVar(&o.topK, "top-k", 40, "keep the K most likely tokens (0: all)")
	fl.Float32Var(&o.topP, "top-p", 0.95, "keep the most likely tokens up to probability P (1: all)")
	fl.Float32Var(&o.minP, "min-p", 0, "drop tokens less likely than P times the most likely one (0: off; llama-cli uses 0.05)")
	fl.Float32Var(&o.repeatPenalty, "repeat-penalty", 1, "penalize tokens among the last --repeat-last-n (1: off)")
	fl.IntVar(&o.repeatLastN, "repeat-last-n", 64, "tokens the repeat penalty looks back over (0: off, -1: the whole context)")
	fl.BoolVar(&o.ignoreEOS, "ignore-eos", false, "never stop at, or draw, an end-of-generation token")
	fl.Int64VarP(&o.seed, "seed", "s", -1, "random seed (-1: random)")
	fl.IntVar(&o.beams, "beam", 0, "beam search with N beams instead of sampling")
	fl.BoolVar(&o.noEscape, "no-escape", false, "do not process escapes in the prompt")
	addEngineFlags(cmd, &o.kv, &o.threads)
	withLoRA(cmd, &o.lora)
	return cmd
}

// readPrompt takes the prompt from -p or -f (exactly one).
func (o *generateOptions) readPrompt(cmd *cobra.Command) error {
	hasP := cmd.Flags().Changed("prompt")
	switch {
	case hasP && o.file != "":
		return errors.New("-p and -f both give a prompt: use one")
	case !hasP && o.file == "":
		return errors.New("no prompt: give -p TEXT or -f FILE")
	case o.file != "":
		b, err := os.ReadFile(o.file)
		if err != nil {
			return fmt.Errorf("-f: %w", err)
		}
		o.prompt = strings.TrimSuffix(string(b), "\n")
	}
	return nil
}

func runGenerate(ctx context.Context, out, errw io.Writer, path string, o generateOptions) error {
	if o.nPredict < -1 {
		return fmt.Errorf("-n %d: give a token count, 0 (prompt only) or -1 (until the context is full)", o.nPredict)
	}
	if o.nCtx < 0 {
		return fmt.Errorf("-c %d: the context size must be positive (0: prompt + n)", o.nCtx)
	}
	if o.beams < 0 {
		return fmt.Errorf("--beam %d: the number of beams must be positive", o.beams)
	}
	for _, c := range []struct {
		bad  bool
		flag string
		v    any
		want string
	}{
		{!(o.temp >= 0), "--temp", o.temp, "0 (greedy) or more"},
		{o.topK < 0, "--top-k", o.topK, "0 (all) or more"},
		{!(o.topP >= 0 && o.topP <= 1), "--top-p", o.topP, "between 0 and 1"},
		{!(o.minP >= 0 && o.minP <= 1), "--min-p", o.minP, "between 0 and 1"},
		{!(o.repeatPenalty >= 0), "--repeat-penalty", o.repeatPenalty, "0 or more (1: off)"},
		{o.repeatLastN < -1, "--repeat-last-n", o.repeatLastN, "0 (off), -1 (the context) or more"},
	} {
		if c.bad {
			return fmt.Errorf("%s %v: want %s", c.flag, c.v, c.want)
		}
	}
	kvF32, err := o.kv.kvF32()
	if err != nil {
		return err
	}
	m, tok, err := loadModelTokenizer(path, eval.Options{Threads: o.threads, KVF32: kvF32}, &o.lora)
	if err != nil {
		return err
	}
	defer m.Close()
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
	train := m.Hparams.NCtxTrain
	nCtx := o.nCtx
	if nCtx == 0 {
		nCtx = len(ids) + max(o.nPredict, 1)
		if o.nPredict < 0 || (train > 0 && nCtx > train) {
			nCtx = max(train, len(ids)+1)
			if train <= 0 {
				nCtx = max(eval.DefaultContext, len(ids)+1)
			}
		}
	}
	if len(ids) > nCtx || (len(ids) == nCtx && o.nPredict != 0) {
		return fmt.Errorf("the prompt is %d tokens and the context (-c) %d: give -c %d or more, or a shorter prompt", len(ids), nCtx, len(ids)+max(o.nPredict, 1))
	}
	if w := ctxTrainWarning(nCtx, train); w != "" {
		fmt.Fprintln(errw, "warning:", w)
	}
	nPredict := o.nPredict
	if nPredict < 0 || nPredict > nCtx-len(ids) {
		if nPredict > nCtx-len(ids) {
			fmt.Fprintf(errw, "note: -n %d does not fit the context of %d with a %d-token prompt: at most %d tokens will be generated\n",
				nPredict, nCtx, len(ids), nCtx-len(ids))
		}
		nPredict = nCtx - len(ids)
	}
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
		var best []int32
		if nPredict > 0 {
			stop := tok.IsEOG
			if o.ignoreEOS {
				stop = func(int32) bool { return false }
			}
			if best, err = eval.BeamSearch(c, ids, eval.BeamOptions{Beams: o.beams, NPredict: nPredict, Stop: stop}); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
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

	sopt := eval.SamplerOptions{Temp: o.temp, TopK: o.topK, TopP: o.topP, MinP: o.minP, Seed: seed,
		RepeatPenalty: o.repeatPenalty, RepeatLastN: o.repeatLastN}
	if sopt.RepeatLastN < 0 {
		sopt.RepeatLastN = nCtx
	}
	if o.ignoreEOS {
		for id := range int32(m.NVocab()) {
			if tok.IsEOG(id) {
				sopt.Ban = append(sopt.Ban, id)
			}
		}
	}
	sampler := eval.NewSampler(sopt)
	for _, id := range ids {
		sampler.Accept(id)
	}
	t0 := time.Now()
	logits, err := c.Decode(ids, false)
	if err != nil {
		return fmt.Errorf("%s: prompt: %w", path, err)
	}
	tPrompt := time.Since(t0)
	t1 := time.Now()
	nGen := 0
	reason := "prompt only (-n 0)"
	if nPredict > 0 {
		reason = fmt.Sprintf("-n %d reached", nPredict)
		if o.nPredict < 0 || o.nPredict > nPredict {
			reason = fmt.Sprintf("the context of %d is full (raise -c)", nCtx)
		}
	}
	for nGen < nPredict {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := sampler.Sample(logits)
		if tok.IsEOG(next) && !o.ignoreEOS {
			reason = "end-of-generation token"
			break
		}
		sampler.Accept(next)
		if _, err := io.WriteString(out, tok.TokenToPiece(next, true)); err != nil {
			return err
		}
		nGen++
		if nGen == nPredict {
			break
		}
		if logits, err = c.Decode([]int32{next}, false); err != nil {
			return fmt.Errorf("%s: token %d: %w", path, nGen, err)
		}
	}
	tGen := time.Since(t1)
	fmt.Fprintln(out)
	fmt.Fprintln(errw)
	if o.temp > 0 {
		fmt.Fprintf(errw, "seed %d\n", seed)
	}
	fmt.Fprintf(errw, "stopped: %s\n", reason)
	fmt.Fprintf(errw, "prompt:     %5d tokens in %8.2f ms (%s)\n", len(ids), ms(tPrompt), rate(len(ids), tPrompt))
	fmt.Fprintf(errw, "generation: %5d tokens in %8.2f ms (%s)\n", nGen, ms(tGen), rate(nGen, tGen))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// rate is tokens per second, or "not measured" when nothing was timed.
func rate(n int, d time.Duration) string {
	if n == 0 || d <= 0 {
		return "t/s not measured"
	}
	return fmt.Sprintf("%8.2f t/s", float64(n)/d.Seconds())
}
