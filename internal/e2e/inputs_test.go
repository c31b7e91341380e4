package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/synth"
)

// synthSource yields deterministic pseudo-random F32 weights.
type synthSource struct {
	seed uint64
	n    int
	norm bool
}

func (s synthSource) Type() ggml.Type { return ggml.TypeF32 }
func (s synthSource) ReadRaw() ([]byte, error) {
	r := rand.New(rand.NewPCG(s.seed, 1))
	out := make([]byte, 4*s.n)
	for i := 0; i < s.n; i++ {
		v := float32(r.NormFloat64() * 0.05)
		if s.norm {
			v = 1 + v
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out, nil
}

// synthLlama is a small random-weight Llama in GGUF F32 layout with the
// metadata llama.cpp writes, big enough (about 30 MB) that quantizing it
// takes a moment to interrupt.
func synthLlama() *formats.Model { return synthLlamaSized(1024, 256, 768, 6) }

// synthLlamaSized is synthLlama with the given vocabulary (at least 259),
// width, feed-forward width and depth; 8 heads, 4 of them for K/V.
func synthLlamaSized(vocab, embd, ff, layers int) *formats.Model {
	const heads, headsKV = 8, 4
	kv := func(k string, v any) formats.KV { return formats.KV{Key: k, Value: v} }
	tokens := make([]string, vocab)
	scores := make([]float32, vocab)
	types := make([]int32, vocab)
	for i := range tokens {
		switch {
		case i < 3:
			tokens[i], types[i] = []string{"<unk>", "<s>", "</s>"}[i], 3
			if i == 0 {
				types[i] = 2
			}
		case i < 3+256:
			tokens[i], types[i] = fmt.Sprintf("<0x%02X>", i-3), 6
		default:
			tokens[i], types[i], scores[i] = fmt.Sprintf("▁t%d", i), 1, -float32(i)
		}
	}
	m := &formats.Model{Arch: "llama", KV: formats.KVs{
		kv("general.architecture", "llama"),
		kv("general.name", "synthetic"),
		kv("llama.block_count", uint32(layers)),
		kv("llama.context_length", uint32(256)),
		kv("llama.embedding_length", uint32(embd)),
		kv("llama.feed_forward_length", uint32(ff)),
		kv("llama.attention.head_count", uint32(heads)),
		kv("llama.attention.head_count_kv", uint32(headsKV)),
		kv("llama.rope.freq_base", float32(10000)),
		kv("llama.attention.layer_norm_rms_epsilon", float32(1e-5)),
		kv("general.file_type", uint32(0)),
		kv("llama.vocab_size", uint32(vocab)),
		kv("llama.rope.dimension_count", uint32(embd/heads)),
		kv("tokenizer.ggml.model", "llama"),
		kv("tokenizer.ggml.pre", "default"),
		kv("tokenizer.ggml.tokens", formats.Array{Elem: formats.ValString, Values: tokens}),
		kv("tokenizer.ggml.scores", formats.Array{Elem: formats.ValFloat32, Values: scores}),
		kv("tokenizer.ggml.token_type", formats.Array{Elem: formats.ValInt32, Values: types}),
		kv("tokenizer.ggml.bos_token_id", uint32(1)),
		kv("tokenizer.ggml.eos_token_id", uint32(2)),
		kv("tokenizer.ggml.add_bos_token", true),
		kv("tokenizer.ggml.add_eos_token", false),
		kv("general.quantization_version", uint32(2)),
	}}
	seed := uint64(0)
	add := func(name string, norm bool, shape ...int) {
		n := 1
		dims := make([]uint64, len(shape))
		for i, d := range shape {
			n *= d
			dims[i] = uint64(d)
		}
		seed++
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: name, Shape: dims, Type: ggml.TypeF32,
			Source: synthSource{seed: seed, n: n, norm: norm}})
	}
	kvDim := embd / heads * headsKV
	add("token_embd.weight", false, embd, vocab)
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", true, embd)
		add(p+"attn_q.weight", false, embd, embd)
		add(p+"attn_k.weight", false, embd, kvDim)
		add(p+"attn_v.weight", false, embd, kvDim)
		add(p+"attn_output.weight", false, embd, embd)
		add(p+"ffn_norm.weight", true, embd)
		add(p+"ffn_gate.weight", false, embd, ff)
		add(p+"ffn_up.weight", false, embd, ff)
		add(p+"ffn_down.weight", false, ff, embd)
	}
	add("output_norm.weight", true, embd)
	add("output.weight", false, embd, vocab)
	return m
}

func writeSynthLlama(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "synth-f32.gguf")
	if err := gguf.WriteFile(context.Background(), path, synthLlama(), gguf.WriteOptions{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	return path
}

// raw builds GGUF bytes field by field, so a test can write any lie.
type raw struct{ bytes.Buffer }

func (b *raw) u32(v uint32) *raw { _ = binary.Write(&b.Buffer, binary.LittleEndian, v); return b }
func (b *raw) u64(v uint64) *raw { _ = binary.Write(&b.Buffer, binary.LittleEndian, v); return b }
func (b *raw) str(s string) *raw { b.u64(uint64(len(s))); b.WriteString(s); return b }
func (b *raw) tensor(name string, typ ggml.Type, off uint64, shape ...uint64) *raw {
	b.str(name).u32(uint32(len(shape)))
	for _, d := range shape {
		b.u64(d)
	}
	return b.u32(uint32(typ)).u64(off)
}
func (b *raw) pad(align, n int) *raw {
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, n))
	return b
}
func header(nT, nKV uint64) *raw {
	b := &raw{}
	b.u32(gguf.Magic).u32(3).u64(nT).u64(nKV)
	return b.str("general.architecture").u32(uint32(formats.ValString)).str("llama")
}

// hostileGGUFs writes lying GGUF files into dir: hand-made lies, truncations
// of a valid file and random corruptions of it. All hand-made ones and the
// truncations must be rejected; a corruption may happen to stay valid.
func hostileGGUFs(t *testing.T, dir string, valid []byte, corruptions int) (mustFail, mayFail []string) {
	t.Helper()
	const f32 = ggml.TypeF32
	big := uint64(math.MaxUint64)
	nested := header(0, 2).str("deep").u32(uint32(formats.ValArray))
	for i := 0; i < 1000; i++ {
		nested.u32(uint32(formats.ValArray)).u64(1)
	}
	hand := map[string][]byte{
		"not-gguf":          []byte("this is not a model\n"),
		"empty":             nil,
		"tensor-count-2^64": header(big, 1).Bytes(),
		"kv-count-2^64":     header(0, big).Bytes(),
		"string-too-long":   header(0, 2).str("s").u32(uint32(formats.ValString)).u64(1<<62).pad(1, 16).Bytes(),
		"array-2^64":        header(0, 2).str("a").u32(uint32(formats.ValArray)).u32(uint32(formats.ValUint8)).u64(big).Bytes(),
		"nested-1000":       nested.Bytes(),
		"dims-overflow":     header(1, 1).tensor("t", f32, 0, 1<<32, 1<<32).pad(32, 64).Bytes(),
		"data-past-eof":     header(1, 1).tensor("t", f32, 0, 1<<20).pad(32, 64).Bytes(),
		"offset-2^64":       header(1, 1).tensor("t", f32, big-31, 8).pad(32, 64).Bytes(),
		"overlap":           header(2, 1).tensor("a", f32, 0, 16).tensor("b", f32, 32, 16).pad(32, 128).Bytes(),
		"misaligned":        header(1, 1).tensor("t", f32, 4, 4).pad(32, 64).Bytes(),
		"unknown-type":      header(1, 1).tensor("t", ggml.Type(1000), 0, 4).pad(32, 64).Bytes(),
		"duplicate-tensor":  header(2, 1).tensor("a", f32, 0, 8).tensor("a", f32, 32, 8).pad(32, 64).Bytes(),
		"duplicate-key":     header(0, 2).str("general.architecture").u32(uint32(formats.ValString)).str("x").Bytes(),
		"alignment-3":       header(0, 2).str("general.alignment").u32(uint32(formats.ValUint32)).u32(3).Bytes(),
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name+".gguf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, data := range hand {
		mustFail = append(mustFail, write(name, data))
	}
	for _, frac := range []float64{0.001, 0.01, 0.3, 0.9, 0.999} {
		n := int(float64(len(valid)) * frac)
		mustFail = append(mustFail, write(fmt.Sprintf("truncated-%d", n), valid[:n]))
	}
	r := rand.New(rand.NewPCG(42, 7))
	headerLen := min(len(valid), 64<<10)
	for i := 0; i < corruptions; i++ {
		data := append([]byte(nil), valid...)
		for k := 0; k < 1+r.IntN(4); k++ {
			pos := r.IntN(headerLen)
			switch r.IntN(3) {
			case 0:
				data[pos] ^= byte(1 << r.IntN(8))
			case 1:
				data[pos] = 0xff
			default:
				binary.LittleEndian.PutUint64(data[pos&^7:], r.Uint64())
			}
		}
		mayFail = append(mayFail, write(fmt.Sprintf("corrupt-%02d", i), data))
	}
	return mustFail, mayFail
}

// safetensorsFile builds a .safetensors file from a header and data.
func safetensorsFile(header any, data []byte) []byte {
	h, _ := json.Marshal(header)
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(h)))
	b.Write(h)
	b.Write(data)
	return b.Bytes()
}

// synthHF writes a synthetic Hugging Face checkpoint (F32, about 30 MB, so
// converting it takes long enough to interrupt).
func synthHF(t *testing.T, dir string) string {
	t.Helper()
	o := synth.Options{Hidden: 256, Intermediate: 768, Layers: 4, Heads: 8, KVHeads: 4, Vocab: 4096,
		DType: safetensors.F32, Shards: 2, Seed: 3}
	if err := synth.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostileHFDirs writes Hugging Face checkpoint directories whose
// model.safetensors lies, with a valid config.json and the tokenizer files
// of a synthetic checkpoint, so the converter reaches the tensors.
func hostileHFDirs(t *testing.T, dir string) []string {
	t.Helper()
	tokenizerDir := t.TempDir()
	if err := synth.Write(tokenizerDir, synth.Tiny()); err != nil {
		t.Fatal(err)
	}
	config := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_size": 64,
		"intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
		"vocab_size": 384, "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": false,
	}
	cfg, _ := json.Marshal(config)
	tensor := func(dtype string, shape []uint64, begin, end uint64) map[string]any {
		return map[string]any{"dtype": dtype, "shape": shape, "data_offsets": []uint64{begin, end}}
	}
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, math.MaxUint64)
	pastEOF := make([]byte, 16)
	binary.LittleEndian.PutUint64(pastEOF, 1<<40)
	cases := map[string][]byte{
		"st-empty":          nil,
		"st-header-2^64":    hugeLen,
		"st-header-too-big": pastEOF,
		"st-not-json":       append([]byte{9, 0, 0, 0, 0, 0, 0, 0}, "{not json"...),
		"st-data-past-eof": safetensorsFile(map[string]any{
			"model.embed_tokens.weight": tensor("F32", []uint64{4096, 64}, 0, 4096*64*4)}, make([]byte, 64)),
		"st-shape-overflow": safetensorsFile(map[string]any{
			"model.embed_tokens.weight": tensor("F32", []uint64{1 << 32, 1 << 32}, 0, 64)}, make([]byte, 64)),
		"st-unknown-dtype": safetensorsFile(map[string]any{
			"model.embed_tokens.weight": tensor("Q9", []uint64{4}, 0, 16)}, make([]byte, 16)),
		"st-offsets-reversed": safetensorsFile(map[string]any{
			"model.embed_tokens.weight": tensor("F32", []uint64{4}, 16, 0)}, make([]byte, 16)),
		"st-size-mismatch": safetensorsFile(map[string]any{
			"model.embed_tokens.weight": tensor("F32", []uint64{4096, 64}, 0, 16)}, make([]byte, 16)),
		"st-overlap": safetensorsFile(map[string]any{
			"model.norm.weight":         tensor("F32", []uint64{64}, 0, 256),
			"model.embed_tokens.weight": tensor("F32", []uint64{64}, 128, 384)}, make([]byte, 384)),
	}
	var dirs []string
	for name, st := range cases {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		must(t, os.WriteFile(filepath.Join(d, "config.json"), cfg, 0o644))
		must(t, os.WriteFile(filepath.Join(d, "model.safetensors"), st, 0o644))
		for _, f := range []string{"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"} {
			if b, err := os.ReadFile(filepath.Join(tokenizerDir, f)); err == nil {
				must(t, os.WriteFile(filepath.Join(d, f), b, 0o644))
			}
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
