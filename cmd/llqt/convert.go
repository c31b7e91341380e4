package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval/tokenizer"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/quant"
)

type convertFlags struct {
	outType   string
	name      string
	force     bool
	json      bool
	threads   int
	vocabOnly bool
	pre       string
	split     splitFlags
}

func newConvertCmd() *cobra.Command {
	var f convertFlags
	cmd := &cobra.Command{
		Use: "convert HF_DIR OUT.gguf",
		Example: `  # convert as convert_hf_to_gguf.py does (f16, or bf16 for bf16 weights)
  llqt convert ./Llama-3.2-1B llama-3.2-1b-f16.gguf
  # keep full precision, then quantize
  llqt convert ./Llama-3.2-1B llama-f32.gguf --outtype f32
  llqt quantize llama-f32.gguf llama-Q4_K_M.gguf Q4_K_M`,
		Short: "Convert a Hugging Face checkpoint to GGUF as llama.cpp's convert_hf_to_gguf.py does",
		Long: `Convert a Hugging Face checkpoint directory (config.json, safetensors weights,
tokenizer.model or tokenizer.json) to a GGUF file, reproducing llama.cpp's
convert_hf_to_gguf.py (b4748): same metadata, tensor names, order, types and bytes.

Weights are read from model*.safetensors or, when there are none, from
pytorch_model*.bin (without running its pickle). A BPE tokenizer.json's
pre-tokenizer is detected as llama.cpp does (chkhsh); --pre names it instead.
--vocab-only writes the metadata and vocabulary without tensors.

--outtype auto picks bf16 for bf16 weights and f16 otherwise. Nothing is
written unless the whole conversion succeeds; the input is only read.
Supported architectures: ` + strings.Join(convert.Supported(), ", ") + ".",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1], f)
		},
	}
	cmd.Flags().StringVar(&f.outType, "outtype", "auto", "output type: "+strings.Join(convert.OutTypes, ", "))
	cmd.Flags().StringVar(&f.name, "name", "", "general.name (default: the input directory's name in title form)")
	cmd.Flags().BoolVarP(&f.force, "force", "f", false, "overwrite an existing output file")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the summary as JSON")
	cmd.Flags().BoolVar(&f.vocabOnly, "vocab-only", false, "write the vocabulary and metadata only, no tensors")
	cmd.Flags().StringVar(&f.pre, "pre", "", "BPE pre-tokenizer name (tokenizer.ggml.pre) instead of detecting it")
	addThreadsFlag(cmd, &f.threads)
	f.split.add(cmd, true)
	return cmd
}

// convertSummary is what convert reports when done.
type convertSummary struct {
	Input       string   `json:"input"`
	Output      string   `json:"output"`
	Arch        string   `json:"architecture"`
	OutType     string   `json:"outtype"`
	Tensors     int      `json:"tensors"`
	InputBytes  int64    `json:"input_bytes"`
	OutputBytes int64    `json:"output_bytes"`
	Seconds     float64  `json:"seconds"`
	MBPerSecond float64  `json:"mb_per_s"`
	Threads     int      `json:"threads"`
	Warnings    []string `json:"warnings,omitempty"`
	// Shards lists the files written when the output was split.
	Shards []string `json:"files,omitempty"`
}

func runConvert(parent context.Context, stdout, stderr io.Writer, dir, out string, f convertFlags) error {
	if parent == nil {
		parent = context.Background()
	}
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("input: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("%s: input must be a Hugging Face model directory", dir)
	}
	if err := checkNotInInput(dir, out); err != nil {
		return err
	}
	if err := cli.CheckOutputFile(out, f.force); err != nil {
		return err
	}
	splitOpt, err := f.split.options(gguf.StyleConverter)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := convert.Convert(dir, convert.Options{OutType: f.outType, Name: f.name,
		VocabOnly: f.vocabOnly, Pre: f.pre, Encoder: tokenizer.EncodeHF})
	if err != nil {
		return err
	}
	defer res.Close()
	layout, err := gguf.Plan(res.Model)
	if err != nil {
		return err
	}
	if err := checkSpace(out, int64(layout.DataSize)); err != nil {
		return err
	}
	if !f.json {
		for _, w := range res.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	ctx, stop := cli.SignalContext(parent)
	written, err := writeModelOrShards(ctx, stderr, out, res.Model, gguf.WriteOptions{
		Codec:     quant.Codec{},
		Threads:   f.threads,
		Overwrite: f.force,
	}, splitOpt, "converting")
	if err := cli.Interrupted(err, stop()); err != nil {
		return err
	}
	elapsed := time.Since(start)
	outBytes, err := filesSize(written)
	if err != nil {
		return err
	}
	sum := convertSummary{
		Input: dir, Output: out, Arch: res.HFArch, OutType: res.OutType,
		Tensors: len(res.Model.Tensors), InputBytes: res.InputBytes, OutputBytes: outBytes, Shards: written,
		Seconds: elapsed.Seconds(), Threads: f.threads, Warnings: res.Warnings,
	}
	if s := elapsed.Seconds(); s > 0 {
		sum.MBPerSecond = float64(res.InputBytes) / 1e6 / s
	}
	if f.json {
		return cli.JSON(stdout, sum)
	}
	if len(written) > 1 {
		out = fmt.Sprintf("%s … %s (%d shards)", written[0], written[len(written)-1], len(written))
	}
	fmt.Fprintf(stdout, "wrote %s: %s %s, %d tensors, %s (from %s of weights) in %.2fs, %.1f MB/s\n",
		out, res.HFArch, strings.ToUpper(res.OutType), sum.Tensors, humanBytes(sum.OutputBytes),
		humanBytes(sum.InputBytes), sum.Seconds, sum.MBPerSecond)
	return nil
}

// checkNotInInput refuses an output that would replace a file of the
// input directory, even with --force: the input is only ever read.
func checkNotInInput(dir, out string) error {
	if st, err := os.Stat(out); err != nil || st.IsDir() {
		return nil
	}
	absDir, err1 := filepath.Abs(dir)
	absOut, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && filepath.Dir(absOut) == absDir {
		return fmt.Errorf("%s: refusing to overwrite a file of the input directory", out)
	}
	return nil
}

// checkSpace fails early when the output's file system lacks room for the
// tensor data, rather than after minutes of work.
func checkSpace(out string, need int64) error {
	dir := filepath.Dir(out)
	free, ok := freeSpace(dir)
	if ok && free < need {
		return fmt.Errorf("%s: not enough space: the output needs %s, %s is free in %s", out, humanBytes(need), humanBytes(free), dir)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
