package convert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/synth"
)

func writeSynth(t *testing.T, o synth.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synth-llama")
	if err := synth.Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// decode reads a tensor of a checkpoint as float32.
func decode(t *testing.T, c *safetensors.Checkpoint, name string) []float32 {
	t.Helper()
	x, ok := c.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	raw, err := x.ReadRaw()
	if err != nil {
		t.Fatal(err)
	}
	f, err := formats.PlainCodec{}.Decode(x.Type(), raw, int(x.Elements()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// permuteRef is the Q/K permutation written directly from its definition:
// reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).
func permuteRef(w []float32, rows, cols, nHead int) []float32 {
	half := rows / nHead / 2
	out := make([]float32, len(w))
	for h := 0; h < nHead; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				dst := (h*half+i)*2 + j
				src := (h*2+j)*half + i
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

func TestSyntheticRoundTrip(t *testing.T) {
	cases := []struct {
		name    string
		opt     func(*synth.Options)
		outType string
		want    ggml.Type
	}{
		{"bf16 single to bf16", func(o *synth.Options) {}, "bf16", ggml.TypeBF16},
		{"bf16 sharded auto", func(o *synth.Options) { o.Shards = 3 }, "auto", ggml.TypeBF16},
		{"f16 to f16 auto", func(o *synth.Options) { o.DType = safetensors.F16 }, "", ggml.TypeF16},
		{"f32 to f32", func(o *synth.Options) { o.DType = safetensors.F32; o.Shards = 2 }, "f32", ggml.TypeF32},
		{"f32 auto is f16", func(o *synth.Options) { o.DType = safetensors.F32 }, "auto", ggml.TypeF16},
		{"bf16 to f16 tied", func(o *synth.Options) { o.Tied = true }, "f16", ggml.TypeF16},
		{"mha no gqa", func(o *synth.Options) { o.KVHeads = o.Heads }, "f32", ggml.TypeF32},
		{"head_dim", func(o *synth.Options) { o.HeadDim = 32 }, "bf16", ggml.TypeBF16},
		{"mistral", func(o *synth.Options) { o.Architecture = "MistralForCausalLM" }, "bf16", ggml.TypeBF16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := synth.Tiny()
			tc.opt(&o)
			dir := writeSynth(t, o)
			res, err := convert.Convert(dir, convert.Options{OutType: tc.outType})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			out := filepath.Join(t.TempDir(), "m.gguf")
			if err := gguf.WriteFile(context.Background(), out, res.Model, gguf.WriteOptions{Threads: 2}); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ckpt, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ckpt.Close()
			checkModel(t, f, ckpt, o, tc.want)
		})
	}
}

func checkModel(t *testing.T, f *gguf.File, ckpt *safetensors.Checkpoint, o synth.Options, want ggml.Type) {
	t.Helper()
	headDim := o.Hidden / o.Heads
	if o.HeadDim > 0 {
		headDim = o.HeadDim
	}
	u := func(k string) uint64 {
		v, ok := f.KV.Uint(k)
		if !ok {
			t.Errorf("missing %s", k)
		}
		return v
	}
	for k, v := range map[string]int{
		"llama.block_count": o.Layers, "llama.embedding_length": o.Hidden, "llama.feed_forward_length": o.Intermediate,
		"llama.attention.head_count": o.Heads, "llama.attention.head_count_kv": o.KVHeads, "llama.vocab_size": o.Vocab,
		"llama.rope.dimension_count": headDim,
	} {
		if got := u(k); got != uint64(v) {
			t.Errorf("%s = %d, want %d", k, got, v)
		}
	}
	_, hasKeyLen := f.KV.Get("llama.attention.key_length")
	if hasKeyLen != (o.HeadDim > 0) {
		t.Errorf("key_length present %v with head_dim %d", hasKeyLen, o.HeadDim)
	}
	toks, _ := f.KV.Get("tokenizer.ggml.tokens")
	if a, ok := toks.(formats.Array); !ok || a.Len() != o.Vocab {
		t.Errorf("tokens: %v", short(toks))
	}
	nTensors := 2 + 9*o.Layers
	if !o.Tied {
		nTensors++
	}
	if len(f.Tensors) != nTensors {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), nTensors)
	}
	if _, ok := f.Tensor("output.weight"); ok == o.Tied {
		t.Errorf("output.weight present %v with tied %v", ok, o.Tied)
	}
	hfName := map[string]string{"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		src, ok := hfName[ti.Name]
		var layer, part string
		if !ok {
			parts := strings.SplitN(ti.Name, ".", 3)
			layer, part = parts[1], parts[2]
			src = "model.layers." + layer + "." + map[string]string{
				"attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
				"attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
				"attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
				"ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
			}[part]
		}
		x, ok := ckpt.Tensor(src)
		if !ok {
			t.Fatalf("%s: no source %s", ti.Name, src)
		}
		wantShape := []uint64{x.Shape[len(x.Shape)-1]}
		if len(x.Shape) == 2 {
			wantShape = append(wantShape, x.Shape[0])
		}
		if !reflect.DeepEqual(ti.Shape, wantShape) {
			t.Errorf("%s: shape %v, want %v", ti.Name, ti.Shape, wantShape)
		}
		wantType := want
		if len(x.Shape) == 1 {
			wantType = ggml.TypeF32
		}
		if ti.Type != wantType {
			t.Errorf("%s: type %s, want %s", ti.Name, ti.Type, wantType)
		}
		data, err := f.Data(ti)
		if err != nil {
			t.Fatal(err)
		}
		got, err := formats.PlainCodec{}.Decode(ti.Type, data, int(ti.Elements()))
		if err != nil {
			t.Fatal(err)
		}
		ref := decode(t, ckpt, src)
		switch part {
		case "attn_q.weight":
			ref = permuteRef(ref, int(x.Shape[0]), int(x.Shape[1]), o.Heads)
		case "attn_k.weight":
			ref = permuteRef(ref, int(x.Shape[0]), int(x.Shape[1]), o.KVHeads)
		}
		// Converting to a narrower type rounds once; compare in that type.
		if wantType != ggml.TypeF32 {
			enc, _ := formats.PlainCodec{}.Encode(wantType, ref, len(ref))
			ref, _ = formats.PlainCodec{}.Decode(wantType, enc, len(ref))
		}
		for j := range ref {
			if got[j] != ref[j] {
				t.Errorf("%s[%d] = %g, want %g", ti.Name, j, got[j], ref[j])
				break
			}
		}
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

func TestQ8FallsBackToF16(t *testing.T) {
	o := synth.Tiny()
	o.Hidden, o.Heads, o.KVHeads, o.Intermediate = 48, 4, 2, 96 // rows of 48 are not Q8_0 blocks
	dir := writeSynth(t, o)
	res, err := convert.Convert(dir, convert.Options{OutType: "q8_0"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for _, x := range res.Model.Tensors {
		want := ggml.TypeF16
		if len(x.Shape) == 1 {
			want = ggml.TypeF32
		} else if x.Shape[0]%32 == 0 {
			want = ggml.TypeQ8_0
		}
		if x.Type != want {
			t.Errorf("%s %v: %s, want %s", x.Name, x.Shape, x.Type, want)
		}
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning about the F16 fallback")
	}
	if ft, _ := res.Model.KV.Uint("general.file_type"); ft != 7 {
		t.Errorf("file_type %d", ft)
	}
}

func TestRopeScaling(t *testing.T) {
	t.Run("linear", func(t *testing.T) {
		o := synth.Tiny()
		o.RopeScaling = map[string]any{"type": "linear", "factor": 4.0}
		m := convertModel(t, o)
		if s, _ := m.KV.String("llama.rope.scaling.type"); s != "linear" {
			t.Errorf("scaling type %q", s)
		}
		if f, _ := m.KV.Float("llama.rope.scaling.factor"); f != 4 {
			t.Errorf("factor %g", f)
		}
	})
	t.Run("yarn", func(t *testing.T) {
		o := synth.Tiny()
		o.RopeScaling = map[string]any{"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 256}
		m := convertModel(t, o)
		if s, _ := m.KV.String("llama.rope.scaling.type"); s != "yarn" {
			t.Errorf("scaling type %q", s)
		}
		if n, _ := m.KV.Uint("llama.rope.scaling.original_context_length"); n != 256 {
			t.Errorf("original context %d", n)
		}
	})
	t.Run("llama3", func(t *testing.T) {
		o := synth.Tiny()
		o.HeadDim = 128
		o.Heads, o.KVHeads = 2, 1
		o.RopeScaling = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
		m := convertModel(t, o)
		rf := m.Tensors[0]
		if rf.Name != "rope_freqs.weight" || rf.Type != ggml.TypeF32 || !reflect.DeepEqual(rf.Shape, []uint64{64}) {
			t.Fatalf("first tensor %s %s %v", rf.Name, rf.Type, rf.Shape)
		}
		raw, _ := rf.Source.ReadRaw()
		f, _ := formats.PlainCodec{}.Decode(ggml.TypeF32, raw, 64)
		// High frequencies are kept, low ones divided by the factor, and
		// the band between is smooth and monotonic.
		if f[0] != 1 || f[63] != 8 {
			t.Errorf("factors start %g end %g", f[0], f[63])
		}
		for i := 1; i < 64; i++ {
			if f[i] < f[i-1] {
				t.Errorf("factor %d = %g < %g", i, f[i], f[i-1])
			}
		}
		for i, x := range f {
			freq := 1 / math.Pow(10000, float64(2*i)/128)
			wl := 2 * math.Pi / freq
			var want float64
			switch {
			case wl < 8192/4.0:
				want = 1
			case wl > 8192:
				want = 8
			default:
				s := (8192/wl - 1) / 3
				want = 1 / ((1-s)/8 + s)
			}
			if math.Abs(float64(x)-want) > 1e-5*want {
				t.Errorf("factor %d = %g, want %g", i, x, want)
			}
		}
	})
}

func convertModel(t *testing.T, o synth.Options) *formats.Model {
	t.Helper()
	res, err := convert.Convert(writeSynth(t, o), convert.Options{OutType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return res.Model
}

// editJSON rewrites dir/name through fn.
func editJSON(t *testing.T, dir, name string, fn func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name    string
		outType string
		edit    func(t *testing.T, dir string)
		want    []string
		is      error
	}{
		{"missing config", "", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "config.json")) }, []string{"config.json", "missing"}, convert.ErrConfig},
		{"invalid config", "", func(t *testing.T, d string) { os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o644) }, []string{"config.json", "not a JSON object"}, convert.ErrConfig},
		{"unknown arch", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["architectures"] = []string{"GPT2LMHeadModel"} })
		}, []string{"GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM"}, convert.ErrConfig},
		{"no architectures", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { delete(m, "architectures") })
		}, []string{"architectures"}, convert.ErrConfig},
		{"hidden mismatch", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["hidden_size"] = 128 })
		}, []string{"model.embed_tokens.weight", "hidden_size 128", "config.json"}, convert.ErrConfig},
		{"kv heads mismatch", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["num_key_value_heads"] = 4 })
		}, []string{"k_proj", "4 kv heads"}, convert.ErrConfig},
		{"too few layers in checkpoint", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["num_hidden_layers"] = 3 })
		}, []string{"model.layers.2.", "missing"}, convert.ErrConfig},
		{"too many layers in checkpoint", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["num_hidden_layers"] = 1 })
		}, []string{"model.layers.1.", "1 layers"}, convert.ErrConfig},
		{"float layer count", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["num_hidden_layers"] = 2.5 })
		}, []string{"num_hidden_layers", "integer"}, convert.ErrConfig},
		{"missing vocab_size", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { delete(m, "vocab_size") })
		}, []string{"vocab_size", "missing"}, convert.ErrConfig},
		{"missing lm_head", "", func(t *testing.T, d string) {
			rewriteWeights(t, d, func(ws []safetensors.WriteTensor) []safetensors.WriteTensor {
				return ws[:len(ws)-1]
			})
		}, []string{"lm_head.weight", "missing"}, convert.ErrConfig},
		{"unmappable tensor", "", func(t *testing.T, d string) {
			rewriteWeights(t, d, func(ws []safetensors.WriteTensor) []safetensors.WriteTensor {
				return append(ws, safetensors.WriteTensor{Name: "model.vision.weight", DType: safetensors.BF16, Shape: []uint64{2}, Data: make([]byte, 4)})
			})
		}, []string{"model.vision.weight", "cannot be mapped", "model.safetensors"}, nil},
		{"unsupported dtype", "", func(t *testing.T, d string) {
			rewriteWeights(t, d, func(ws []safetensors.WriteTensor) []safetensors.WriteTensor {
				n := ws[1] // input_layernorm [64]
				ws[1] = safetensors.WriteTensor{Name: n.Name, DType: safetensors.I32, Shape: n.Shape, Data: make([]byte, 4*64)}
				return ws
			})
		}, []string{"input_layernorm", "I32", "model.safetensors"}, nil},
		{"truncated weights", "", func(t *testing.T, d string) {
			p := filepath.Join(d, "model.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-100)
		}, []string{"model.safetensors", "truncated"}, safetensors.ErrFormat},
		{"no tokenizer", "", func(t *testing.T, d string) { os.Remove(filepath.Join(d, "tokenizer.model")) }, []string{"no tokenizer.model or tokenizer.json"}, convert.ErrTokenizer},
		{"corrupt tokenizer", "", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, "tokenizer.model"), []byte{0x0a, 0xff, 0xff}, 0o644)
		}, []string{"tokenizer.model"}, convert.ErrTokenizer},
		{"vocab larger than config", "", func(t *testing.T, d string) {
			editJSON(t, d, "config.json", func(m map[string]any) { m["vocab_size"] = 300 })
			rewriteWeights(t, d, func(ws []safetensors.WriteTensor) []safetensors.WriteTensor {
				for i := range ws {
					if ws[i].Shape[0] == 384 {
						ws[i].Shape = []uint64{300, 64}
						ws[i].Data = ws[i].Data[:300*64*2]
					}
				}
				return ws
			})
		}, []string{"384 pieces", "vocab_size is 300"}, convert.ErrTokenizer},
		{"bad outtype", "q4_0", func(t *testing.T, d string) {}, []string{"q4_0", "f32, f16, bf16, q8_0, auto"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeSynth(t, synth.Tiny())
			tc.edit(t, dir)
			res, err := convert.Convert(dir, convert.Options{OutType: tc.outType})
			if err == nil {
				res.Close()
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

// rewriteWeights loads model.safetensors, edits its tensor list and
// writes it back.
func rewriteWeights(t *testing.T, dir string, fn func([]safetensors.WriteTensor) []safetensors.WriteTensor) {
	t.Helper()
	p := filepath.Join(dir, "model.safetensors")
	c, err := safetensors.OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var ws []safetensors.WriteTensor
	for _, x := range c.Tensors {
		b, _ := x.ReadRaw()
		ws = append(ws, safetensors.WriteTensor{Name: x.Name, DType: x.DType, Shape: x.Shape, Data: b})
	}
	c.Close()
	if err := safetensors.WriteFile(p, fn(ws), nil); err != nil {
		t.Fatal(err)
	}
}

func TestInputUntouched(t *testing.T) {
	dir := writeSynth(t, synth.Tiny())
	before := snapshot(t, dir)
	res, err := convert.Convert(dir, convert.Options{OutType: "f16"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gguf.Write(context.Background(), &buf, res.Model, gguf.WriteOptions{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	res.Close()
	if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Error("conversion changed the input directory")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	o := synth.Tiny()
	o.Shards = 2
	a, b := writeSynth(t, o), writeSynth(t, o)
	if !reflect.DeepEqual(snapshot(t, a), snapshot(t, b)) {
		t.Error("synth is not deterministic for a fixed seed")
	}
}

// TestTiedDropsLMHead: with tie_word_embeddings an lm_head.weight in the
// checkpoint is not written (llama.cpp reuses token_embd.weight).
func TestTiedDropsLMHead(t *testing.T) {
	dir := writeSynth(t, synth.Tiny())
	editJSON(t, dir, "config.json", func(m map[string]any) { m["tie_word_embeddings"] = true })
	res, err := convert.Convert(dir, convert.Options{OutType: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for _, x := range res.Model.Tensors {
		if x.Name == "output.weight" {
			t.Error("output.weight written for a tied model")
		}
	}
	if last := res.Model.Tensors[len(res.Model.Tensors)-1].Name; last != "output_norm.weight" {
		t.Errorf("last tensor %s", last)
	}
}
