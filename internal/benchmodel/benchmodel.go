// Command benchmodel writes a random-weight Llama GGUF of a real model's
// shape, for speed measurements of the engine at realistic sizes without
// downloading weights:
//
//	go run ./internal/benchmodel -shape tinyllama-1.1b -type Q4_K_M -out /tmp/tl.gguf
//
// The tokenizer is Llama 2's, taken from the shared vocabulary fixture
// (vocab/ggml-vocab-llama-spm.gguf) when it is present, else a synthetic
// vocabulary of the same size. The weights are N(0, 0.02) values drawn per
// tensor from a seed and encoded with llqt's quantizers and llama-quantize's
// mix for the chosen type; tensors are generated and written one at a time,
// so the model is never held in memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// Shape is a Llama architecture's hyperparameters.
type Shape struct {
	Name                            string
	Dim, FF, Layers, Heads, KVHeads int
	Vocab, Ctx                      int
	RopeBase                        float32
}

// Shapes are the model shapes the generator knows.
var Shapes = []Shape{
	{Name: "tinyllama-1.1b", Dim: 2048, FF: 5632, Layers: 22, Heads: 32, KVHeads: 4, Vocab: 32000, Ctx: 2048, RopeBase: 10000},
	{Name: "llama2-7b", Dim: 4096, FF: 11008, Layers: 32, Heads: 32, KVHeads: 32, Vocab: 32000, Ctx: 4096, RopeBase: 10000},
	{Name: "stories110m", Dim: 768, FF: 2048, Layers: 12, Heads: 12, KVHeads: 12, Vocab: 32000, Ctx: 1024, RopeBase: 10000},
}

// ShapeByName finds a shape.
func ShapeByName(name string) (Shape, error) {
	var names []string
	for _, s := range Shapes {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Shape{}, fmt.Errorf("unknown shape %q (known: %s)", name, strings.Join(names, ", "))
}

func main() {
	shapeName := flag.String("shape", "tinyllama-1.1b", "model shape: tinyllama-1.1b, llama2-7b or stories110m")
	typeName := flag.String("type", "Q4_K_M", "llama-quantize type preset: F32, F16, Q8_0, Q4_K_M, …")
	out := flag.String("out", "", "output GGUF file")
	vocab := flag.String("vocab", "", "vocabulary GGUF to copy the tokenizer from (default: the shared Llama 2 vocabulary if present)")
	seed := flag.Uint64("seed", 1, "random seed")
	threads := flag.Int("threads", 2, "encoding threads")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "benchmodel: -out is required")
		os.Exit(2)
	}
	ctx, stop := cli.SignalContext(context.Background())
	err := run(ctx, *shapeName, *typeName, *out, *vocab, *seed, *threads)
	if err = cli.Interrupted(err, stop()); err != nil {
		fmt.Fprintln(os.Stderr, "benchmodel:", err)
		os.Exit(cli.Code(err))
	}
}

func run(ctx context.Context, shapeName, typeName, out, vocabPath string, seed uint64, threads int) error {
	shape, err := ShapeByName(shapeName)
	if err != nil {
		return err
	}
	preset, err := quant.ParsePreset(typeName)
	if err != nil {
		return err
	}
	if vocabPath == "" {
		if d := fixtures.Dir(); d != "" {
			p := d + "/vocab/ggml-vocab-llama-spm.gguf"
			if _, err := os.Stat(p); err == nil {
				vocabPath = p
			}
		}
	}
	m, err := Build(shape, vocabPath, seed)
	if err != nil {
		return err
	}
	planned, _, err := quant.Plan(m, quant.Options{Preset: preset, Threads: threads, Context: ctx})
	if err != nil {
		return err
	}
	layout, err := gguf.Plan(planned)
	if err != nil {
		return err
	}
	total := int64(layout.DataSize)
	prog := cli.NewProgress(os.Stderr, total, "writing "+out)
	err = gguf.WriteFile(ctx, out, planned, gguf.WriteOptions{
		Threads: 1, Overwrite: true, Codec: quant.Codec{},
		Progress: func(done, _ int64) { prog.Set(done) },
	})
	prog.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchmodel: wrote %s (%s, %s, %.2f GiB of tensor data; vocabulary %s)\n",
		out, shape.Name, preset.Name, float64(total)/(1<<30), vocabDesc(vocabPath))
	return nil
}

func vocabDesc(p string) string {
	if p == "" {
		return "synthetic"
	}
	return p
}

// Build makes the F32 model graph of a shape with lazily generated random
// weights and the tokenizer of vocabPath (synthetic when "").
func Build(s Shape, vocabPath string, seed uint64) (*formats.Model, error) {
	m := &formats.Model{Arch: "llama"}
	kv := &m.KV
	kv.Set("general.architecture", "llama")
	kv.Set("general.type", "model")
	kv.Set("general.name", "random "+s.Name)
	kv.Set("llama.block_count", uint32(s.Layers))
	kv.Set("llama.context_length", uint32(s.Ctx))
	kv.Set("llama.embedding_length", uint32(s.Dim))
	kv.Set("llama.feed_forward_length", uint32(s.FF))
	kv.Set("llama.attention.head_count", uint32(s.Heads))
	kv.Set("llama.attention.head_count_kv", uint32(s.KVHeads))
	kv.Set("llama.rope.freq_base", s.RopeBase)
	kv.Set("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	kv.Set("general.file_type", uint32(0))
	kv.Set("llama.vocab_size", uint32(s.Vocab))
	kv.Set("llama.rope.dimension_count", uint32(s.Dim/s.Heads))
	tokKV, err := vocabKV(vocabPath, s.Vocab)
	if err != nil {
		return nil, err
	}
	*kv = append(*kv, tokKV...)

	add := func(name string, shape []uint64, std float64) {
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: name, Shape: shape, Type: ggml.TypeF32,
			Source: &randomSource{name: name, n: int(shape[0]) * int(product(shape[1:])), std: std, seed: seed}})
	}
	d, ff, kvDim := uint64(s.Dim), uint64(s.FF), uint64(s.Dim/s.Heads*s.KVHeads)
	add("token_embd.weight", []uint64{d, uint64(s.Vocab)}, 0.02)
	add("output_norm.weight", []uint64{d}, -1)
	add("output.weight", []uint64{d, uint64(s.Vocab)}, 0.02)
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", []uint64{d}, -1)
		add(p+"attn_q.weight", []uint64{d, d}, 0.02)
		add(p+"attn_k.weight", []uint64{d, kvDim}, 0.02)
		add(p+"attn_v.weight", []uint64{d, kvDim}, 0.02)
		add(p+"attn_output.weight", []uint64{d, d}, 0.02)
		add(p+"ffn_norm.weight", []uint64{d}, -1)
		add(p+"ffn_gate.weight", []uint64{d, ff}, 0.02)
		add(p+"ffn_up.weight", []uint64{d, ff}, 0.02)
		add(p+"ffn_down.weight", []uint64{ff, d}, 0.02)
	}
	return m, nil
}

func product(xs []uint64) uint64 {
	p := uint64(1)
	for _, x := range xs {
		p *= x
	}
	return p
}

// randomSource yields a tensor's F32 bytes, drawn afresh from a generator
// seeded by the tensor's name on every read. std < 0 makes norm weights
// (ones with a little noise).
type randomSource struct {
	name string
	n    int
	std  float64
	seed uint64
}

func (r *randomSource) Type() ggml.Type { return ggml.TypeF32 }

func (r *randomSource) ReadRaw() ([]byte, error) {
	h := fnv.New64a()
	h.Write([]byte(r.name))
	rng := rand.New(rand.NewPCG(r.seed, h.Sum64()))
	vals := make([]float32, r.n)
	for i := range vals {
		if r.std < 0 {
			vals[i] = float32(1 + 0.05*rng.NormFloat64())
		} else {
			vals[i] = float32(r.std * rng.NormFloat64())
		}
	}
	return formats.PlainCodec{}.Encode(ggml.TypeF32, vals, r.n)
}

// vocabKV returns the tokenizer metadata: copied from a vocabulary GGUF, or
// a synthetic SentencePiece-style vocabulary of n tokens.
func vocabKV(path string, n int) (formats.KVs, error) {
	var out formats.KVs
	if path != "" {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		for _, kv := range f.KV {
			if strings.HasPrefix(kv.Key, "tokenizer.") {
				out = append(out, kv)
			}
		}
		if v, ok := out.Get("tokenizer.ggml.tokens"); ok {
			if a, isArr := v.(formats.Array); isArr && a.Len() != n {
				return nil, fmt.Errorf("%s: vocabulary has %d tokens, the shape needs %d", path, a.Len(), n)
			}
		}
		return out, nil
	}
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	tokens[0], tokens[1], tokens[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = 2, 3, 3
	for b := range 256 {
		tokens[3+b] = fmt.Sprintf("<0x%02X>", b)
		types[3+b] = 6
	}
	for i := 259; i < n; i++ {
		tokens[i] = fmt.Sprintf("\u2581t%d", i)
		scores[i] = -float32(i)
		types[i] = 1
	}
	out.Set("tokenizer.ggml.model", "llama")
	out.Set("tokenizer.ggml.pre", "default")
	out.Set("tokenizer.ggml.tokens", formats.Array{Elem: formats.ValString, Values: tokens})
	out.Set("tokenizer.ggml.scores", formats.Array{Elem: formats.ValFloat32, Values: scores})
	out.Set("tokenizer.ggml.token_type", formats.Array{Elem: formats.ValInt32, Values: types})
	out.Set("tokenizer.ggml.bos_token_id", uint32(1))
	out.Set("tokenizer.ggml.eos_token_id", uint32(2))
	out.Set("tokenizer.ggml.unknown_token_id", uint32(0))
	out.Set("tokenizer.ggml.add_bos_token", true)
	out.Set("tokenizer.ggml.add_eos_token", false)
	return out, nil
}
