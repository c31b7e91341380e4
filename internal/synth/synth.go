// Package synth writes synthetic Hugging Face Llama checkpoints in the real
// on-disk format: config.json, safetensors weights (one file or sharded with
// model.safetensors.index.json; F32, F16 or BF16), a SentencePiece
// tokenizer.model, tokenizer_config.json, special_tokens_map.json and
// generation_config.json. Weights are seeded random but plausible (small
// Gaussian matrices, norm weights near 1), so a forward pass stays
// numerically sane. Tests, `make demo` and benchmarks use it instead of
// downloading a model.
package synth

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// Options describes a synthetic checkpoint.
type Options struct {
	Hidden, Intermediate, Layers, Heads, KVHeads, Vocab int
	// HeadDim, when set, is written to config.json; otherwise Hidden/Heads.
	HeadDim int
	// MaxPositions is max_position_embeddings (512 when 0).
	MaxPositions int
	// Tied ties lm_head to the embeddings: no lm_head.weight is written.
	Tied bool
	// DType of the weights: F32, F16 or BF16 (BF16 when empty).
	DType safetensors.DType
	// Shards splits the weights over this many files (1 when 0).
	Shards int
	Seed   uint64
	// Architecture is config.json's class name (LlamaForCausalLM when empty).
	Architecture string
	// RopeScaling, when set, is written as config.json's rope_scaling.
	RopeScaling map[string]any
	// RopeTheta is config.json's rope_theta (10000 when 0).
	RopeTheta float64
	// TokenizerDir, when set, holds a real Hugging Face tokenizer
	// (tokenizer.json, tokenizer_config.json and a config.json that gives
	// bos_token_id and eos_token_id): those files are copied instead of the
	// synthetic SentencePiece vocabulary, and Vocab must cover its ids.
	TokenizerDir string
}

// Tiny is a very small Llama (GQA, 2 layers) for tests.
func Tiny() Options {
	return Options{Hidden: 64, Intermediate: 160, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 384, DType: safetensors.BF16, Seed: 1}
}

// Demo is the shape `make demo` uses: small enough to run in seconds, with
// rows of 256 so that every K-quant applies without fallbacks.
func Demo() Options {
	return Options{Hidden: 256, Intermediate: 768, Layers: 4, Heads: 8, KVHeads: 4, Vocab: 2048,
		MaxPositions: 512, DType: safetensors.BF16, Shards: 2, Seed: 1}
}

// TinyLlama11B has the shape of TinyLlama-1.1B (BF16).
func TinyLlama11B() Options {
	return Options{Hidden: 2048, Intermediate: 5632, Layers: 22, Heads: 32, KVHeads: 4, Vocab: 32000,
		MaxPositions: 2048, DType: safetensors.BF16, Shards: 1, Seed: 1}
}

// Llama3 has the layout of a Llama 3.x checkpoint (the llama3 rope_scaling,
// rope_theta 500000, GQA, 128,256 ids) at the demo's small width. Give it
// the real Llama 3 tokenizer with TokenizerDir.
func Llama3() Options {
	return Options{Hidden: 256, Intermediate: 768, Layers: 4, Heads: 8, KVHeads: 2, Vocab: 128256,
		MaxPositions: 8192, DType: safetensors.BF16, Shards: 1, Seed: 1, RopeTheta: 500000,
		RopeScaling: map[string]any{"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
			"original_max_position_embeddings": 8192, "rope_type": "llama3"}}
}

// Shapes maps shape names (for the synthllama command) to options.
var Shapes = map[string]func() Options{"tiny": Tiny, "demo": Demo, "tinyllama-1.1b": TinyLlama11B, "llama3": Llama3}

func (o *Options) defaults() error {
	if o.DType == "" {
		o.DType = safetensors.BF16
	}
	switch o.DType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
	default:
		return fmt.Errorf("synth: dtype %s (want F32, F16 or BF16)", o.DType)
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.MaxPositions == 0 {
		o.MaxPositions = 512
	}
	if o.RopeTheta == 0 {
		o.RopeTheta = 10000
	}
	if o.Architecture == "" {
		o.Architecture = "LlamaForCausalLM"
	}
	if o.KVHeads == 0 {
		o.KVHeads = o.Heads
	}
	if o.Hidden <= 0 || o.Intermediate <= 0 || o.Layers <= 0 || o.Heads <= 0 || o.Vocab <= 0 {
		return fmt.Errorf("synth: dimensions must be positive: %+v", *o)
	}
	if o.Heads%o.KVHeads != 0 || (o.HeadDim == 0 && o.Hidden%o.Heads != 0) {
		return fmt.Errorf("synth: %d heads, %d kv heads, hidden %d do not fit", o.Heads, o.KVHeads, o.Hidden)
	}
	if o.Vocab < 3+256+1 {
		return fmt.Errorf("synth: vocab %d too small (need <unk>, <s>, </s>, 256 byte pieces and more)", o.Vocab)
	}
	return nil
}

func (o *Options) headDim() int {
	if o.HeadDim > 0 {
		return o.HeadDim
	}
	return o.Hidden / o.Heads
}

// tensorSpec is one weight: torch shape and the distribution of its values.
type tensorSpec struct {
	name  string
	shape []uint64
	norm  bool // ≈1 (RMSNorm weight) rather than ≈0
}

// Tensors lists the checkpoint's tensors in the order they are written.
func (o *Options) tensors() []tensorSpec {
	h, f, v := uint64(o.Hidden), uint64(o.Intermediate), uint64(o.Vocab)
	q, kv := uint64(o.Heads*o.headDim()), uint64(o.KVHeads*o.headDim())
	out := []tensorSpec{{name: "model.embed_tokens.weight", shape: []uint64{v, h}}}
	for l := 0; l < o.Layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		out = append(out,
			tensorSpec{p + "input_layernorm.weight", []uint64{h}, true},
			tensorSpec{p + "mlp.down_proj.weight", []uint64{h, f}, false},
			tensorSpec{p + "mlp.gate_proj.weight", []uint64{f, h}, false},
			tensorSpec{p + "mlp.up_proj.weight", []uint64{f, h}, false},
			tensorSpec{p + "post_attention_layernorm.weight", []uint64{h}, true},
			tensorSpec{p + "self_attn.k_proj.weight", []uint64{kv, h}, false},
			tensorSpec{p + "self_attn.o_proj.weight", []uint64{h, q}, false},
			tensorSpec{p + "self_attn.q_proj.weight", []uint64{q, h}, false},
			tensorSpec{p + "self_attn.v_proj.weight", []uint64{kv, h}, false},
		)
	}
	out = append(out, tensorSpec{name: "model.norm.weight", shape: []uint64{h}, norm: true})
	if !o.Tied {
		out = append(out, tensorSpec{name: "lm_head.weight", shape: []uint64{v, h}})
	}
	return out
}

// Params is the number of parameters the options describe.
func (o Options) Params() uint64 {
	var n uint64
	for _, t := range o.tensors() {
		e := uint64(1)
		for _, d := range t.shape {
			e *= d
		}
		n += e
	}
	return n
}

const chunk = 1 << 20 // elements per independently seeded RNG stream

// fill writes the tensor's values: N(0, 0.02) for matrices, 1 + N(0, 0.02)
// for norms. Each chunk of elements has its own RNG stream, seeded from
// (seed, tensor, chunk), so chunks can be generated in parallel and the
// output does not depend on the number of CPUs.
func fill(buf []byte, dt safetensors.DType, seed uint64, index int, spec tensorSpec) error {
	n := len(buf) / dt.Size()
	chunks := (n + chunk - 1) / chunk
	workers := min(runtime.NumCPU(), chunks)
	var wg sync.WaitGroup
	next := make(chan int, chunks)
	for c := 0; c < chunks; c++ {
		next <- c
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float32, chunk)
			for c := range next {
				lo, hi := c*chunk, min((c+1)*chunk, n)
				rng := rand.New(rand.NewPCG(seed, uint64(index)<<32|uint64(c)))
				for i := range vals[:hi-lo] {
					x := float32(rng.NormFloat64() * 0.02)
					if spec.norm {
						x += 1
					}
					vals[i] = x
				}
				encode(buf[lo*dt.Size():hi*dt.Size()], vals[:hi-lo], dt)
			}
		}()
	}
	wg.Wait()
	return nil
}

func encode(dst []byte, v []float32, dt safetensors.DType) {
	switch dt {
	case safetensors.F32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case safetensors.F16:
		formats.F32ToF16(dst, v)
	case safetensors.BF16:
		formats.F32ToBF16(dst, v)
	}
}

// Write creates dir (if needed) and writes the checkpoint into it.
func Write(dir string, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeWeights(dir, &o); err != nil {
		return err
	}
	if o.TokenizerDir != "" {
		return writeRealTokenizer(dir, &o)
	}
	files := map[string]any{
		"config.json":             o.config(),
		"tokenizer_config.json":   tokenizerConfig(),
		"special_tokens_map.json": specialTokensMap(),
		"generation_config.json":  map[string]any{"bos_token_id": 1, "eos_token_id": 2, "max_length": o.MaxPositions, "do_sample": false},
	}
	for name, v := range files {
		if err := writeJSON(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "tokenizer.model"), convert.EncodeSentencePiece(Vocabulary(o.Vocab)), 0o644)
}

// writeRealTokenizer copies the tokenizer files of o.TokenizerDir and writes
// config.json with that tokenizer's BOS and EOS ids.
func writeRealTokenizer(dir string, o *Options) error {
	var ids struct {
		BOS *int `json:"bos_token_id"`
		EOS any  `json:"eos_token_id"`
	}
	cfg := filepath.Join(o.TokenizerDir, "config.json")
	b, err := os.ReadFile(cfg)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := json.Unmarshal(b, &ids); err != nil || ids.BOS == nil || ids.EOS == nil {
		return fmt.Errorf("synth: %s: want bos_token_id and eos_token_id", cfg)
	}
	c := o.config()
	c["bos_token_id"], c["eos_token_id"] = *ids.BOS, ids.EOS
	if err := writeJSON(filepath.Join(dir, "config.json"), c); err != nil {
		return err
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(o.TokenizerDir, name))
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeWeights(dir string, o *Options) error {
	specs := o.tensors()
	var total uint64
	sizes := make([]uint64, len(specs))
	for i, s := range specs {
		sizes[i] = uint64(o.DType.Size())
		for _, d := range s.shape {
			sizes[i] *= d
		}
		total += sizes[i]
	}
	// Split into shards of about total/Shards bytes, in write order.
	var groups [][]int
	per := (total + uint64(o.Shards) - 1) / uint64(o.Shards)
	var acc uint64
	for i := range specs {
		if len(groups) == 0 || (acc >= per*uint64(len(groups)) && len(groups) < o.Shards) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
		acc += sizes[i]
	}
	weightMap := map[string]string{}
	for g, idx := range groups {
		name := "model.safetensors"
		if o.Shards > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", g+1, len(groups))
		}
		var ws []safetensors.WriteTensor
		for _, i := range idx {
			spec, i := specs[i], i
			weightMap[spec.name] = name
			ws = append(ws, safetensors.WriteTensor{Name: spec.name, DType: o.DType, Shape: spec.shape,
				Fill: func(buf []byte) error { return fill(buf, o.DType, o.Seed, i, spec) }})
		}
		if err := safetensors.WriteFile(filepath.Join(dir, name), ws, map[string]string{"format": "pt"}); err != nil {
			return err
		}
	}
	if o.Shards > 1 {
		return writeJSON(filepath.Join(dir, safetensors.IndexName), map[string]any{
			"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
	}
	return nil
}

func (o *Options) config() map[string]any {
	c := map[string]any{
		"architectures":           []string{o.Architecture},
		"model_type":              "llama",
		"hidden_act":              "silu",
		"hidden_size":             o.Hidden,
		"intermediate_size":       o.Intermediate,
		"num_attention_heads":     o.Heads,
		"num_key_value_heads":     o.KVHeads,
		"num_hidden_layers":       o.Layers,
		"rms_norm_eps":            1e-5,
		"rope_theta":              o.RopeTheta,
		"rope_scaling":            nil,
		"max_position_embeddings": o.MaxPositions,
		"vocab_size":              o.Vocab,
		"bos_token_id":            1,
		"eos_token_id":            2,
		"tie_word_embeddings":     o.Tied,
		"attention_bias":          false,
		"mlp_bias":                false,
		"torch_dtype":             map[safetensors.DType]string{safetensors.F32: "float32", safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[o.DType],
	}
	if o.HeadDim > 0 {
		c["head_dim"] = o.HeadDim
	}
	if o.RopeScaling != nil {
		c["rope_scaling"] = o.RopeScaling
	}
	if o.Architecture == "MistralForCausalLM" {
		c["model_type"] = "mistral"
	}
	return c
}

func specialToken(content string) map[string]any {
	return map[string]any{"content": content, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}
}

func tokenizerConfig() map[string]any {
	dec := map[string]any{}
	for i, s := range []string{"<unk>", "<s>", "</s>"} {
		e := specialToken(s)
		e["special"] = true
		dec[strconv.Itoa(i)] = e
	}
	return map[string]any{
		"add_bos_token": true, "add_eos_token": false, "added_tokens_decoder": dec,
		"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": nil,
		"clean_up_tokenization_spaces": false, "legacy": true, "model_max_length": 512,
		"sp_model_kwargs": map[string]any{}, "tokenizer_class": "LlamaTokenizer",
	}
}

func specialTokensMap() map[string]any {
	return map[string]any{"bos_token": specialToken("<s>"), "eos_token": specialToken("</s>"), "unk_token": specialToken("<unk>")}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Vocabulary is the synthetic SentencePiece BPE vocabulary of n pieces:
// <unk>, <s>, </s>, the byte pieces <0x00>…<0xFF>, then "▁" and merged
// pieces (letters, then longer lower-case strings with and without the
// word-start mark) with decreasing scores, as a trained BPE model ranks its
// merges.
func Vocabulary(n int) *convert.SPModel {
	m := &convert.SPModel{ModelType: 2, ByteFallback: true, AddDummyPrefix: true}
	m.Pieces = append(m.Pieces,
		convert.Piece{Text: "<unk>", Type: convert.PieceUnknown},
		convert.Piece{Text: "<s>", Type: convert.PieceControl},
		convert.Piece{Text: "</s>", Type: convert.PieceControl})
	for b := 0; b < 256; b++ {
		m.Pieces = append(m.Pieces, convert.Piece{Text: fmt.Sprintf("<0x%02X>", b), Type: convert.PieceByte})
	}
	seen := map[string]bool{}
	add := func(s string) {
		if len(m.Pieces) < n && !seen[s] {
			seen[s] = true
			m.Pieces = append(m.Pieces, convert.Piece{Text: s, Score: -float32(len(m.Pieces) - 259)})
		}
	}
	add("\u2581")
	for c := 'a'; c <= 'z'; c++ {
		add(string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		add(string(c))
	}
	var words []string
	for length := 2; len(m.Pieces) < n; length++ {
		words = words[:0]
		var gen func(prefix string)
		gen = func(prefix string) {
			if len(words) > 4*n {
				return
			}
			if len(prefix) == length {
				words = append(words, prefix)
				return
			}
			for c := 'a'; c <= 'z'; c++ {
				gen(prefix + string(c))
			}
		}
		gen("")
		sort.Strings(words)
		for _, w := range words {
			add("\u2581" + w)
			add(w)
		}
	}
	return m
}
