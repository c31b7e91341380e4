package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
)

// synthSource yields deterministic pseudo-random F32 data.
type synthSource struct {
	n    int
	seed uint64
	nan  int // index to poison with NaN, or -1
}

func (s *synthSource) Type() ggml.Type { return ggml.TypeF32 }
func (s *synthSource) ReadRaw() ([]byte, error) {
	r := rand.New(rand.NewPCG(s.seed, 7))
	out := make([]byte, 4*s.n)
	for i := 0; i < s.n; i++ {
		v := float32(r.NormFloat64() * 0.02)
		if i == s.nan {
			v = float32(math.NaN())
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out, nil
}

// RawSize and ReadRange make synthSource a formats.RowSource, so that the
// writer streams the tensors quantized from it by rows.
func (s *synthSource) RawSize() int64 { return 4 * int64(s.n) }

func (s *synthSource) ReadRange(p []byte, off int64) error {
	raw, _ := s.ReadRaw()
	if off < 0 || off+int64(len(p)) > int64(len(raw)) {
		return fmt.Errorf("range [%d,%d) outside %d bytes", off, off+int64(len(p)), len(raw))
	}
	copy(p, raw[off:])
	return nil
}

// llamaShape describes a synthetic llama-family model.
type llamaShape struct {
	layers, heads, headsKV int
	embd, ff, vocab        int
	tied                   bool
	experts                int
	matrixType             ggml.Type // type of the 2-D weights in the input (F32 when zero)
}

func synthModel(s llamaShape) *formats.Model {
	m := &formats.Model{Arch: "llama"}
	m.KV = formats.KVs{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: "synthetic"},
		{Key: "llama.block_count", Value: uint32(s.layers)},
		{Key: "llama.embedding_length", Value: uint32(s.embd)},
		{Key: "llama.attention.head_count", Value: uint32(s.heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(s.headsKV)},
		{Key: "general.file_type", Value: uint32(0)},
		{Key: "general.quantization_version", Value: uint32(2)},
		{Key: "tokenizer.ggml.model", Value: "llama"},
	}
	if s.experts > 0 {
		m.KV = append(m.KV, formats.KV{Key: "llama.expert_count", Value: uint32(s.experts)})
	}
	mt := s.matrixType
	var seed uint64
	add := func(name string, typ ggml.Type, shape ...uint64) {
		seed++
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		var src formats.Source = &synthSource{n: n, seed: seed, nan: -1}
		if typ != ggml.TypeF32 {
			src = nil // decisions only
		}
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: name, Shape: shape, Type: typ, Source: src})
	}
	e, kv := uint64(s.embd), uint64(s.embd/s.heads*s.headsKV)
	ff, v := uint64(s.ff), uint64(s.vocab)
	add("token_embd.weight", mt, e, v)
	for i := range s.layers {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", ggml.TypeF32, e)
		add(p+"attn_q.weight", mt, e, e)
		add(p+"attn_k.weight", mt, e, kv)
		add(p+"attn_v.weight", mt, e, kv)
		add(p+"attn_output.weight", mt, e, e)
		add(p+"ffn_norm.weight", ggml.TypeF32, e)
		if s.experts > 0 {
			x := uint64(s.experts)
			add(p+"ffn_gate_inp.weight", ggml.TypeF32, e, x)
			add(p+"ffn_gate_exps.weight", mt, e, ff, x)
			add(p+"ffn_up_exps.weight", mt, e, ff, x)
			add(p+"ffn_down_exps.weight", mt, ff, e, x)
		} else {
			add(p+"ffn_gate.weight", mt, e, ff)
			add(p+"ffn_up.weight", mt, e, ff)
			add(p+"ffn_down.weight", mt, ff, e)
		}
	}
	add("output_norm.weight", ggml.TypeF32, e)
	if !s.tied {
		add("output.weight", mt, e, v)
	}
	if mt == 0 {
		for _, t := range m.Tensors {
			t.Type = ggml.TypeF32
		}
	}
	return m
}

func planTypes(t *testing.T, m *formats.Model, opts Options) map[string]ggml.Type {
	t.Helper()
	_, ds, err := Plan(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ggml.Type{}
	for _, d := range ds {
		out[d.Name] = d.To
	}
	return out
}

// moreBits is use_more_bits written out independently for the tests.
func moreBits(i, n int) bool {
	eighth := n / 8
	if i < eighth || i >= 7*n/8 {
		return true
	}
	return (i-eighth)%3 == 2
}

func pick(cond bool, a, b ggml.Type) ggml.Type {
	if cond {
		return a
	}
	return b
}

// TestMix70B: an 80-layer GQA model (64 heads, 8 KV heads) is llama.cpp's
// "70B", whose attn_v gets at least Q5_K.
func TestMix70B(t *testing.T) {
	shape := llamaShape{layers: 80, heads: 64, headsKV: 8, embd: 8192, ff: 28672, vocab: 32000}
	const n = 80
	tests := []struct {
		preset                     string
		attnV, ffnDown, attnOutput func(i int) ggml.Type
		other, output, embd        ggml.Type
	}{
		{"Q4_K_M",
			func(i int) ggml.Type { return pick(moreBits(i, n), ggml.TypeQ6_K, ggml.TypeQ5_K) },
			func(i int) ggml.Type { return pick(moreBits(i, n), ggml.TypeQ6_K, ggml.TypeQ4_K) },
			func(int) ggml.Type { return ggml.TypeQ4_K },
			ggml.TypeQ4_K, ggml.TypeQ6_K, ggml.TypeQ4_K},
		{"Q5_K_M",
			func(i int) ggml.Type { return pick(moreBits(i, n), ggml.TypeQ6_K, ggml.TypeQ5_K) },
			func(i int) ggml.Type { return pick(moreBits(i, n), ggml.TypeQ6_K, ggml.TypeQ5_K) },
			func(int) ggml.Type { return ggml.TypeQ5_K },
			ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeQ5_K},
		{"Q2_K",
			func(int) ggml.Type { return ggml.TypeQ5_K },
			func(int) ggml.Type { return ggml.TypeQ3_K },
			func(int) ggml.Type { return ggml.TypeQ3_K },
			ggml.TypeQ2_K, ggml.TypeQ6_K, ggml.TypeQ2_K},
		{"Q3_K_M",
			func(int) ggml.Type { return ggml.TypeQ5_K },
			func(i int) ggml.Type { return pick(i < n/16, ggml.TypeQ5_K, ggml.TypeQ4_K) },
			func(int) ggml.Type { return ggml.TypeQ4_K },
			ggml.TypeQ3_K, ggml.TypeQ6_K, ggml.TypeQ3_K},
		{"Q3_K_S",
			func(int) ggml.Type { return ggml.TypeQ5_K },
			func(int) ggml.Type { return ggml.TypeQ3_K },
			func(int) ggml.Type { return ggml.TypeQ3_K },
			ggml.TypeQ3_K, ggml.TypeQ6_K, ggml.TypeQ3_K},
		{"Q4_K_S",
			func(int) ggml.Type { return ggml.TypeQ5_K },
			func(i int) ggml.Type { return pick(i < n/8, ggml.TypeQ5_K, ggml.TypeQ4_K) },
			func(int) ggml.Type { return ggml.TypeQ4_K },
			ggml.TypeQ4_K, ggml.TypeQ6_K, ggml.TypeQ4_K},
		{"IQ4_XS",
			func(int) ggml.Type { return ggml.TypeQ5_K },
			func(i int) ggml.Type { return pick(i < n/8, ggml.TypeQ5_K, ggml.TypeIQ4_XS) },
			func(int) ggml.Type { return ggml.TypeIQ4_XS },
			ggml.TypeIQ4_XS, ggml.TypeQ6_K, ggml.TypeIQ4_XS},
		{"Q8_0",
			func(int) ggml.Type { return ggml.TypeQ8_0 },
			func(int) ggml.Type { return ggml.TypeQ8_0 },
			func(int) ggml.Type { return ggml.TypeQ8_0 },
			ggml.TypeQ8_0, ggml.TypeQ8_0, ggml.TypeQ8_0},
		{"Q4_0",
			func(int) ggml.Type { return ggml.TypeQ4_0 },
			func(int) ggml.Type { return ggml.TypeQ4_0 },
			func(int) ggml.Type { return ggml.TypeQ4_0 },
			ggml.TypeQ4_0, ggml.TypeQ6_K, ggml.TypeQ4_0},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			got := planTypes(t, synthModel(shape), Options{Preset: mustPreset(t, tc.preset)})
			check := func(name string, want ggml.Type) {
				t.Helper()
				if got[name] != want {
					t.Errorf("%s = %s, want %s", name, got[name], want)
				}
			}
			check("output.weight", tc.output)
			check("token_embd.weight", tc.embd)
			check("output_norm.weight", ggml.TypeF32)
			for i := range n {
				p := fmt.Sprintf("blk.%d.", i)
				check(p+"attn_v.weight", tc.attnV(i))
				check(p+"ffn_down.weight", tc.ffnDown(i))
				check(p+"attn_output.weight", tc.attnOutput(i))
				for _, o := range []string{"attn_q", "attn_k", "ffn_gate", "ffn_up"} {
					check(p+o+".weight", tc.other)
				}
				check(p+"attn_norm.weight", ggml.TypeF32)
			}
		})
	}
	// Without GQA the same depth is "65B": no attn_v bump.
	mha := shape
	mha.headsKV = 64
	got := planTypes(t, synthModel(mha), Options{Preset: mustPreset(t, "Q4_K_M")})
	if got["blk.20.attn_v.weight"] != ggml.TypeQ4_K || got["blk.21.attn_v.weight"] != ggml.TypeQ6_K {
		t.Errorf("65B attn_v: %s, %s; want Q4_K, Q6_K", got["blk.20.attn_v.weight"], got["blk.21.attn_v.weight"])
	}
}

// TestMixFallbacks: rows that are not a multiple of 256 take the fallback
// types, and F16 when even those do not divide.
func TestMixFallbacks(t *testing.T) {
	// 320 = 10×32: the 32-element formats fit, the 256-element ones do not.
	m := synthModel(llamaShape{layers: 8, heads: 5, headsKV: 5, embd: 320, ff: 864, vocab: 1000})
	tests := []struct {
		preset                      string
		q, vMore, vLess, out, embed ggml.Type
	}{
		{"Q4_K_M", ggml.TypeQ5_0, ggml.TypeQ8_0, ggml.TypeQ5_0, ggml.TypeQ8_0, ggml.TypeQ5_0},
		{"Q3_K_L", ggml.TypeIQ4_NL, ggml.TypeQ5_1, ggml.TypeQ5_1, ggml.TypeQ8_0, ggml.TypeIQ4_NL},
		{"Q6_K", ggml.TypeQ8_0, ggml.TypeQ8_0, ggml.TypeQ8_0, ggml.TypeQ8_0, ggml.TypeQ8_0},
		{"IQ4_XS", ggml.TypeIQ4_NL, ggml.TypeIQ4_NL, ggml.TypeIQ4_NL, ggml.TypeQ8_0, ggml.TypeIQ4_NL},
		{"Q4_0", ggml.TypeQ4_0, ggml.TypeQ4_0, ggml.TypeQ4_0, ggml.TypeQ8_0, ggml.TypeQ4_0},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			_, ds, err := Plan(m, Options{Preset: mustPreset(t, tc.preset)})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Decision{}
			for _, d := range ds {
				got[d.Name] = d
			}
			want := map[string]ggml.Type{
				"blk.3.attn_q.weight": tc.q, "blk.0.attn_v.weight": tc.vMore, "blk.2.attn_v.weight": tc.vLess,
				"output.weight": tc.out, "token_embd.weight": tc.embed,
			}
			for name, w := range want {
				if got[name].To != w {
					t.Errorf("%s = %s (%s), want %s", name, got[name].To, got[name].Reason, w)
				}
			}
			if d := got["blk.3.attn_q.weight"]; (d.To != ggml.TypeQ4_0) != d.Fallback {
				t.Errorf("attn_q fallback flag %v for %s", d.Fallback, d.To)
			}
		})
	}
	// Q4_0's output wants Q6_K, which does not divide 320: Q8_0 instead.
	// 100 columns divide no block at all: every fallback ends at F16 —
	// except output.weight's Q8_0, which llama-quantize refuses ("Unsupported
	// tensor size"), so it is left as it is here.
	odd := synthModel(llamaShape{layers: 2, heads: 4, headsKV: 4, embd: 100, ff: 256, vocab: 50})
	if _, _, err := Plan(odd, Options{Preset: mustPreset(t, "Q4_K_M")}); err == nil || !strings.Contains(err.Error(), "output.weight") {
		t.Errorf("Q4_K_M with a 100-column output: err = %v", err)
	}
	got := planTypes(t, odd, Options{Preset: mustPreset(t, "Q4_K_M"), LeaveOutputTensor: true})
	if got["blk.0.attn_q.weight"] != ggml.TypeF16 || got["blk.0.ffn_down.weight"] != ggml.TypeQ4_K || got["blk.1.ffn_down.weight"] != ggml.TypeQ6_K {
		t.Errorf("odd widths: attn_q %s (want F16), ffn_down %s, %s (want Q4_K, Q6_K)", got["blk.0.attn_q.weight"],
			got["blk.0.ffn_down.weight"], got["blk.1.ffn_down.weight"])
	}
	if _, _, err := Plan(odd, Options{Preset: mustPreset(t, "Q4_0"), LeaveOutputTensor: true}); err == nil || !strings.Contains(err.Error(), "no fallback") {
		t.Errorf("Q4_0 on 100 columns: err = %v, want a no-fallback error", err)
	}
	if _, _, err := Plan(odd, Options{Preset: mustPreset(t, "Q4_K_M"), Pure: true}); err == nil || !strings.Contains(err.Error(), "not a multiple") {
		t.Errorf("--pure Q4_K on 100 columns: err = %v", err)
	}
}

// TestMixTiedEmbeddings: without output.weight the embeddings are the
// output and take its type.
func TestMixTiedEmbeddings(t *testing.T) {
	q8 := ggml.TypeQ8_0
	q5 := ggml.TypeQ5_K
	tests := []struct {
		preset string
		tied   bool
		opts   Options
		embd   ggml.Type
		output ggml.Type
	}{
		{"Q4_K_M", false, Options{}, ggml.TypeQ4_K, ggml.TypeQ6_K},
		{"Q4_K_M", true, Options{}, ggml.TypeQ6_K, 0},
		{"Q8_0", true, Options{}, ggml.TypeQ8_0, 0},
		{"Q2_K", true, Options{}, ggml.TypeQ6_K, 0},
		{"Q4_K_M", true, Options{OutputTensorType: &q8}, ggml.TypeQ8_0, 0},
		{"Q4_K_M", true, Options{TokenEmbeddingType: &q5}, ggml.TypeQ5_K, 0},
		{"Q4_K_M", false, Options{TokenEmbeddingType: &q5, OutputTensorType: &q8}, ggml.TypeQ5_K, ggml.TypeQ8_0},
		{"Q4_K_M", false, Options{LeaveOutputTensor: true}, ggml.TypeQ4_K, ggml.TypeF32},
		{"Q4_K_M", true, Options{Pure: true}, ggml.TypeQ4_K, 0},
		{"F16", false, Options{}, ggml.TypeF16, ggml.TypeF16},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i, tc.preset, tc.tied), func(t *testing.T) {
			m := synthModel(llamaShape{layers: 4, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300, tied: tc.tied})
			opts := tc.opts
			opts.Preset = mustPreset(t, tc.preset)
			got := planTypes(t, m, opts)
			if got["token_embd.weight"] != tc.embd {
				t.Errorf("token_embd = %s, want %s", got["token_embd.weight"], tc.embd)
			}
			if out, ok := got["output.weight"]; ok != !tc.tied || out != tc.output {
				t.Errorf("output = %s (present %v), want %s", out, ok, tc.output)
			}
		})
	}
}

func TestMixRegexOverrides(t *testing.T) {
	m := synthModel(llamaShape{layers: 4, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300})
	var overrides []TensorTypeOverride
	for _, s := range []string{"attn_q=q8_0", `blk\.0\.attn_q=Q5_K`, "ffn_(up|gate)=BF16"} {
		o, err := ParseTensorTypeOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		overrides = append(overrides, o)
	}
	got := planTypes(t, m, Options{Preset: mustPreset(t, "Q4_K_M"), TensorTypes: overrides})
	for name, want := range map[string]ggml.Type{
		"blk.0.attn_q.weight": ggml.TypeQ5_K, "blk.1.attn_q.weight": ggml.TypeQ8_0, "blk.3.ffn_up.weight": ggml.TypeBF16,
		"blk.2.ffn_gate.weight": ggml.TypeBF16, "blk.2.attn_k.weight": ggml.TypeQ4_K, "blk.0.attn_norm.weight": ggml.TypeF32,
	} {
		if got[name] != want {
			t.Errorf("%s = %s, want %s", name, got[name], want)
		}
	}
	for _, bad := range []string{"attn_q", "=Q4_K", "attn_q=", "attn_q=Q9_K", "(=Q4_K"} {
		if _, err := ParseTensorTypeOverride(bad); err == nil {
			t.Errorf("ParseTensorTypeOverride(%q) accepted", bad)
		}
	}
	// An override whose block does not divide the row is refused by name.
	odd := synthModel(llamaShape{layers: 1, heads: 5, headsKV: 5, embd: 320, ff: 512, vocab: 10})
	_, _, err := Plan(odd, Options{Preset: mustPreset(t, "Q8_0"), TensorTypes: []TensorTypeOverride{{Regex: "attn_q", Type: ggml.TypeQ4_K}}})
	if err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") {
		t.Errorf("err = %v, want one naming blk.0.attn_q.weight", err)
	}
}

func TestRefusals(t *testing.T) {
	quantized := synthModel(llamaShape{layers: 2, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300, matrixType: ggml.TypeQ8_0})
	_, _, err := Plan(quantized, Options{Preset: mustPreset(t, "Q4_K_M")})
	if err == nil || !strings.Contains(err.Error(), "already quantized") || !strings.Contains(err.Error(), "--allow-requantize") {
		t.Errorf("requantize: err = %v", err)
	}
	_, ds, err := Plan(quantized, Options{Preset: mustPreset(t, "Q4_K_M"), AllowRequantize: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := find(ds, "token_embd.weight"); d.From != ggml.TypeQ8_0 || d.To != ggml.TypeQ4_K || !d.Quantize {
		t.Errorf("allowed requantize: %+v", d)
	}
	// Same type: nothing to do, so no refusal either (as llama-quantize).
	if _, _, err := Plan(quantized, Options{Preset: mustPreset(t, "Q8_0")}); err != nil {
		t.Errorf("Q8_0 → Q8_0: %v", err)
	}

	plain := synthModel(llamaShape{layers: 2, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300})
	if _, _, err := Plan(plain, Options{Preset: mustPreset(t, "Q2_K_S")}); err == nil || !strings.Contains(err.Error(), "importance matrix") {
		t.Errorf("Q2_K_S without imatrix: err = %v", err)
	}
	for _, name := range []string{"IQ2_XXS", "IQ1_S"} {
		if _, _, err := Plan(plain, Options{Preset: mustPreset(t, name)}); err == nil {
			t.Errorf("%s without imatrix accepted", name)
		}
	}
	// With importance weights for every matrix Q2_K_S runs.
	im := map[string][]float32{}
	for _, tt := range plain.Tensors {
		if len(tt.Shape) > 1 {
			w := make([]float32, tt.Shape[0])
			for i := range w {
				w[i] = 1
			}
			im[tt.Name] = w
		}
	}
	out, ds, err := Plan(plain, Options{Preset: mustPreset(t, "Q2_K_S"), Imatrix: im, ImatrixFile: "x.dat"})
	if err != nil {
		t.Fatal(err)
	}
	if d := find(ds, "blk.1.attn_q.weight"); d.To != ggml.TypeQ2_K || !d.Imatrix {
		t.Errorf("Q2_K_S attn_q: %+v", d)
	}
	if v, _ := out.KV.Get("quantize.imatrix.entries_count"); v != int32(len(im)) {
		t.Errorf("entries_count = %v", v)
	}
	im["blk.0.attn_q.weight"] = im["blk.0.attn_q.weight"][:10]
	if _, _, err := Plan(plain, Options{Preset: mustPreset(t, "Q4_K_M"), Imatrix: im}); err == nil || !strings.Contains(err.Error(), "imatrix size") {
		t.Errorf("short imatrix: err = %v", err)
	}
	im["blk.0.attn_q.weight"] = []float32{float32(math.Inf(1))}
	if _, _, err := Plan(plain, Options{Preset: mustPreset(t, "Q4_K_M"), Imatrix: im}); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Errorf("inf imatrix: err = %v", err)
	}
	if _, _, err := Plan(plain, Options{}); err == nil {
		t.Error("no preset accepted")
	}
	noMeta := synthModel(llamaShape{layers: 2, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300})
	noMeta.KV.Delete("llama.block_count")
	if _, _, err := Plan(noMeta, Options{Preset: mustPreset(t, "Q4_K_M")}); err == nil || !strings.Contains(err.Error(), "block_count") {
		t.Errorf("no block_count: err = %v", err)
	}
	if _, _, err := Plan(noMeta, Options{Preset: mustPreset(t, "F16")}); err != nil {
		t.Errorf("F16 needs no mix metadata: %v", err)
	}
}

func find(ds []Decision, name string) Decision {
	for _, d := range ds {
		if d.Name == name {
			return d
		}
	}
	return Decision{}
}

func TestNeverQuantized(t *testing.T) {
	m := &formats.Model{Arch: "llama", KV: formats.KVs{
		{Key: "llama.block_count", Value: uint32(1)}, {Key: "llama.attention.head_count", Value: uint32(1)},
	}}
	for _, tc := range []struct {
		name  string
		shape []uint64
		keep  bool
	}{
		{"blk.0.attn_norm.weight", []uint64{256}, true},
		{"blk.0.ffn_gate_inp.weight", []uint64{256, 8}, true},
		{"blk.0.attn_q.bias", []uint64{256, 2}, true},
		{"blk.0.flat.weight", []uint64{256, 1, 1}, true},
		{"blk.0.x_norm.weight", []uint64{256, 256}, true},
		{"position_embd.weight", []uint64{256, 256}, true},
		{"blk.0.ssm_conv1d.weight", []uint64{256, 4}, true},
		{"blk.0.attn_rel_b.weight", []uint64{256, 32}, true},
		{"blk.0.attn_q.weight", []uint64{256, 256}, false},
		{"blk.0.ffn_up_exps.weight", []uint64{256, 512, 4}, false},
		{"abcde", []uint64{256, 256}, false}, // the 5-byte quirk of the "ends with weight" test
	} {
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: tc.name, Shape: tc.shape, Type: ggml.TypeF32})
		_, ds, err := Plan(m, Options{Preset: mustPreset(t, "Q8_0")})
		if err != nil {
			t.Fatal(err)
		}
		d := find(ds, tc.name)
		if d.Quantize == tc.keep {
			t.Errorf("%s %v: quantize = %v (%s)", tc.name, tc.shape, d.Quantize, d.Reason)
		}
		m.Tensors = m.Tensors[:len(m.Tensors)-1]
	}
}

func TestPlanMetadataAndOrder(t *testing.T) {
	m := synthModel(llamaShape{layers: 12, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 300})
	m.KV = append(m.KV, formats.KV{Key: "split.count", Value: uint16(1)}, formats.KV{Key: "zz.last", Value: "x"})
	// Reverse the tensors: the output order must not depend on the input's.
	for i, j := 0, len(m.Tensors)-1; i < j; i, j = i+1, j-1 {
		m.Tensors[i], m.Tensors[j] = m.Tensors[j], m.Tensors[i]
	}
	in := append(formats.KVs(nil), m.KV...)
	out, ds, err := Plan(m, Options{Preset: mustPreset(t, "Q5_K_S")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range out.KV {
		keys = append(keys, kv.Key)
	}
	want := "general.architecture general.name llama.block_count llama.embedding_length llama.attention.head_count " +
		"llama.attention.head_count_kv tokenizer.ggml.model zz.last general.quantization_version general.file_type"
	if strings.Join(keys, " ") != want {
		t.Errorf("keys:\n%s\nwant\n%s", strings.Join(keys, " "), want)
	}
	if v, _ := out.KV.Get("general.file_type"); v != uint32(FileTypeQ5_K_S) {
		t.Errorf("file_type = %v", v)
	}
	if fmt.Sprint(m.KV) != fmt.Sprint(in) {
		t.Error("input metadata modified")
	}
	var names []string
	for i, tt := range out.Tensors {
		names = append(names, tt.Name)
		if tt.Name != ds[i].Name || tt.Type != ds[i].To {
			t.Errorf("tensor %d: %s %s vs decision %s %s", i, tt.Name, tt.Type, ds[i].Name, ds[i].To)
		}
	}
	joined := strings.Join(names, " ")
	if !strings.HasPrefix(joined, "output.weight output_norm.weight token_embd.weight blk.0.attn_k.weight blk.0.attn_norm.weight") ||
		!strings.Contains(joined, "blk.9.ffn_up.weight blk.10.attn_k.weight") || !strings.HasSuffix(joined, "blk.11.ffn_up.weight") {
		t.Errorf("order: %s", joined)
	}

	// COPY keeps everything and the input's file type.
	out, ds, err = Plan(m, Options{Preset: mustPreset(t, "COPY")})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Quantize {
			t.Errorf("COPY re-encodes %s", d.Name)
		}
	}
	if v, _ := out.KV.Get("general.file_type"); v != uint32(0) {
		t.Errorf("COPY file_type = %v", v)
	}
	m.KV.Delete("general.file_type")
	if out, _, err = Plan(m, Options{Preset: mustPreset(t, "COPY")}); err != nil {
		t.Fatal(err)
	}
	if v, _ := out.KV.Get("general.file_type"); v != uint32(FileTypeF32|FileTypeGuessed) {
		t.Errorf("COPY guessed file_type = %v", v)
	}
}

func TestMixExperts(t *testing.T) {
	m := synthModel(llamaShape{layers: 32, heads: 32, headsKV: 8, embd: 256, ff: 512, vocab: 300, experts: 8})
	got := planTypes(t, m, Options{Preset: mustPreset(t, "Q4_K_M")})
	for name, want := range map[string]ggml.Type{
		"blk.3.attn_v.weight": ggml.TypeQ8_0, "blk.3.attn_k.weight": ggml.TypeQ8_0, "blk.3.attn_output.weight": ggml.TypeQ5_K,
		"blk.3.ffn_down_exps.weight": ggml.TypeQ6_K, "blk.5.ffn_down_exps.weight": ggml.TypeQ4_K,
		"blk.3.ffn_gate_inp.weight": ggml.TypeF32, "blk.3.ffn_up_exps.weight": ggml.TypeQ4_K,
	} {
		if got[name] != want {
			t.Errorf("%s = %s, want %s", name, got[name], want)
		}
	}
}

func TestParsePreset(t *testing.T) {
	for in, want := range map[string]string{"q4_k": "Q4_K_M", "Q4_K_M": "Q4_K_M", "q3_k": "Q3_K_M", "Q5_K": "Q5_K_M",
		"15": "Q4_K_M", "copy": "COPY", "bf16": "BF16", "0": "F32", "q2_k_s": "Q2_K_S", "iq4_xs": "IQ4_XS"} {
		p, err := ParsePreset(in)
		if err != nil || p.Name != want {
			t.Errorf("ParsePreset(%q) = %q, %v; want %s", in, p.Name, err, want)
		}
	}
	for _, bad := range []string{"", "Q4", "Q4_K_X", "99"} {
		if _, err := ParsePreset(bad); err == nil {
			t.Errorf("ParsePreset(%q) accepted", bad)
		}
	}
	for _, name := range []string{"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_S", "Q6_K", "Q8_0", "Q4_0", "IQ4_NL", "IQ2_XXS", "IQ2_XS", "F16", "COPY"} {
		if !mustPreset(t, name).Supported() {
			t.Errorf("%s not supported", name)
		}
	}
	if FileTypeName(FileTypeQ4_K_M) != "Q4_K_M" || FileTypeName(FileTypeF32|FileTypeGuessed) != "F32 (guessed)" {
		t.Errorf("FileTypeName: %s, %s", FileTypeName(FileTypeQ4_K_M), FileTypeName(FileTypeF32|FileTypeGuessed))
	}
}

func TestLessTensorName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"output.weight", "blk.0.attn_q.weight", true},
		{"blk.9.x", "blk.10.a", true},
		{"blk.10.a", "blk.9.x", false},
		{"blk.1.a", "blk.1.b", true},
		{"a", "b", true},
		{"blk.x", "blk.0.a", true}, // no number: counts as -1
	} {
		if got := lessTensorName(tc.a, tc.b); got != tc.less {
			t.Errorf("less(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func writePlan(t *testing.T, m *formats.Model, opts Options) ([]byte, error) {
	t.Helper()
	out, _, err := Plan(m, opts)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(t.TempDir(), "q.gguf")
	if err := gguf.WriteFile(context.Background(), path, out, gguf.WriteOptions{Threads: opts.Threads}); err != nil {
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("failed write left %s behind", path)
		}
		return nil, err
	}
	return os.ReadFile(path)
}

// TestPlanThreadsIdentical encodes a synthetic model whose tensors span many
// row chunks with 1, 2 and 8 threads.
func TestPlanThreadsIdentical(t *testing.T) {
	m := synthModel(llamaShape{layers: 2, heads: 4, headsKV: 2, embd: 256, ff: 768, vocab: 1024})
	var first []byte
	for _, threads := range []int{1, 2, 8} {
		got, err := writePlan(t, m, Options{Preset: mustPreset(t, "Q4_K_M"), Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		} else if !bytes.Equal(first, got) {
			t.Errorf("threads=%d: output differs", threads)
		}
	}
	// The bytes equal encoding each tensor in one piece.
	f, err := gguf.Parse(bytes.NewReader(first), int64(len(first)), "q.gguf")
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := f.Tensor("token_embd.weight")
	src := m.Tensors[0]
	raw, _ := src.Source.ReadRaw()
	x, _ := formats.PlainCodec{}.Decode(ggml.TypeF32, raw, int(src.Elements()))
	want, err := Quantize(ggml.TypeQ4_K, x, 256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Data(ti); !bytes.Equal(got, want) {
		t.Error("token_embd differs from one-piece Quantize")
	}
}

func TestPlanRefusesNaN(t *testing.T) {
	m := synthModel(llamaShape{layers: 1, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 64})
	for _, tt := range m.Tensors {
		if tt.Name == "blk.0.ffn_up.weight" {
			tt.Source.(*synthSource).nan = 700
		}
	}
	_, err := writePlan(t, m, Options{Preset: mustPreset(t, "Q4_K_M"), Threads: 2})
	if err == nil || !strings.Contains(err.Error(), "blk.0.ffn_up.weight") || !strings.Contains(err.Error(), "row 2") {
		t.Errorf("err = %v, want one naming blk.0.ffn_up.weight row 2", err)
	}
	// A NaN in a tensor that is only copied is refused too.
	m = synthModel(llamaShape{layers: 1, heads: 4, headsKV: 2, embd: 256, ff: 512, vocab: 64})
	m.Tensors[1].Source.(*synthSource).nan = 3 // blk.0.attn_norm.weight
	if _, err := writePlan(t, m, Options{Preset: mustPreset(t, "Q8_0"), Threads: 1}); err == nil || !strings.Contains(err.Error(), "attn_norm") {
		t.Errorf("err = %v", err)
	}
}

// scaleTransform stands in for a converter's transform (such as the q/k
// permutation): the tensor must be staged through its declared type first.
type scaleTransform struct{}

func (scaleTransform) Apply(d []float32, _ []uint64) error {
	for i := range d {
		d[i] *= 3
	}
	return nil
}
func (scaleTransform) Name() string { return "scale" }

// TestPlanStagesThroughDeclaredType: a tensor declared F16 whose source is
// F32 (as a converter's graph) is rounded to F16 before quantizing, so
// converting and quantizing in one pass equals doing it in two.
func TestPlanStagesThroughDeclaredType(t *testing.T) {
	src := &synthSource{n: 256 * 64, seed: 9, nan: -1}
	m := &formats.Model{Arch: "llama", KV: formats.KVs{{Key: "llama.block_count", Value: uint32(1)}, {Key: "llama.attention.head_count", Value: uint32(4)}}}
	m.Tensors = []*formats.Tensor{{Name: "blk.0.attn_q.weight", Shape: []uint64{256, 64}, Type: ggml.TypeF16, Source: src, Transforms: []formats.Transform{scaleTransform{}}}}
	out, _, err := Plan(m, Options{Preset: mustPreset(t, "Q8_0"), Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := out.Tensors[0].Source.ReadRaw()
	if err != nil {
		t.Fatal(err)
	}
	staged, err := formats.Materialize(m.Tensors[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := formats.PlainCodec{}.Decode(ggml.TypeF16, staged, 256*64)
	want, _ := Quantize(ggml.TypeQ8_0, x, 256, nil)
	if !bytes.Equal(got, want) {
		t.Error("one-pass result differs from two-pass")
	}
}

func BenchmarkPlanEncodeQ4KM(b *testing.B) {
	m := synthModel(llamaShape{layers: 1, heads: 4, headsKV: 2, embd: 512, ff: 1536, vocab: 2048})
	out, _, err := Plan(m, Options{Preset: mustPreset(b, "Q4_K_M"), Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, t := range m.Tensors {
		n += int64(t.Elements()) * 4
	}
	b.SetBytes(n)
	for b.Loop() {
		for _, t := range out.Tensors {
			if _, err := t.Source.ReadRaw(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// FuzzParseTensorTypeOverride: any input is parsed or refused, never a
// panic, and an accepted override round-trips.
func FuzzParseTensorTypeOverride(f *testing.F) {
	for _, s := range []string{"attn_q=Q8_0", `blk\.\d+\.ffn_down=q6_k`, "=", "a=b=Q4_K", "(=Q4_0", "x=bf16"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseTensorTypeOverride(s)
		if err != nil {
			return
		}
		again, err := ParseTensorTypeOverride(o.Regex + "=" + o.Type.String())
		if err != nil || again != o {
			t.Errorf("%q: round trip %+v, %v", s, again, err)
		}
	})
}

func FuzzParsePreset(f *testing.F) {
	for _, s := range []string{"q4_k_m", "15", "COPY", "", "-1", "Q4_K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePreset(s)
		if err == nil && (p.Name == "" || p.Alias != "") {
			t.Errorf("%q: %+v", s, p)
		}
	})
}
