package eval

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/quant"
)

type memSource struct {
	t    ggml.Type
	data []byte
}

func (s memSource) Type() ggml.Type          { return s.t }
func (s memSource) ReadRaw() ([]byte, error) { return append([]byte(nil), s.data...), nil }

// synthConfig describes a small random llama model for self-contained tests.
type synthConfig struct {
	dim, ff, layers, heads, kvHeads, vocab, ctx int
	scaling                                     string  // "", "linear", "yarn"
	factor                                      float32 // rope.scaling.factor
	origCtx                                     int
	ropeFreqs                                   bool
	tied                                        bool
	weightType                                  ggml.Type
	seed                                        uint64
}

// synthModel holds the weights the naive implementation uses, as float64
// after the same rounding the file's storage type applies.
type synthModel struct {
	cfg    synthConfig
	embd   [][]float64 // [vocab][dim]
	out    [][]float64 // [vocab][dim]
	outN   []float64
	layers []synthLayer
	freqs  []float64
}

type synthLayer struct {
	attnN, ffnN                []float64
	wq, wk, wv, wo, wg, wu, wd [][]float64 // [rows][cols]
}

func encodeF32(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// writeSynth writes a random model to a GGUF file in dir and returns its
// path with the stored weights as float64.
func writeSynth(t testing.TB, dir string, cfg synthConfig) (string, *synthModel) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	hd := cfg.dim / cfg.heads
	sm := &synthModel{cfg: cfg}
	m := &formats.Model{Arch: "llama"}
	kv := &m.KV
	kv.Set("general.architecture", "llama")
	kv.Set("llama.context_length", uint32(cfg.ctx))
	kv.Set("llama.embedding_length", uint32(cfg.dim))
	kv.Set("llama.feed_forward_length", uint32(cfg.ff))
	kv.Set("llama.block_count", uint32(cfg.layers))
	kv.Set("llama.attention.head_count", uint32(cfg.heads))
	kv.Set("llama.attention.head_count_kv", uint32(cfg.kvHeads))
	kv.Set("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	kv.Set("llama.rope.freq_base", float32(10000))
	kv.Set("llama.rope.dimension_count", uint32(hd))
	kv.Set("llama.vocab_size", uint32(cfg.vocab))
	if cfg.scaling != "" {
		kv.Set("llama.rope.scaling.type", cfg.scaling)
		kv.Set("llama.rope.scaling.factor", cfg.factor)
	}
	if cfg.origCtx > 0 {
		kv.Set("llama.rope.scaling.original_context_length", uint32(cfg.origCtx))
	}
	wt := cfg.weightType
	// matrix adds a [rows][cols] weight whose values are what the file
	// will hold after rounding to its type.
	matrix := func(name string, rows, cols int, scale float64, typ ggml.Type) [][]float64 {
		vals := make([]float32, rows*cols)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * scale)
		}
		var raw []byte
		var err error
		switch typ {
		case ggml.TypeF32:
			raw = encodeF32(vals)
		default:
			raw, err = quant.Codec{}.Encode(typ, vals, cols)
			if err != nil {
				t.Fatal(err)
			}
		}
		stored, err := quant.Dequantize(typ, raw, rows*cols)
		if err != nil {
			t.Fatal(err)
		}
		out := make([][]float64, rows)
		for r := range out {
			out[r] = make([]float64, cols)
			for c := range out[r] {
				out[r][c] = float64(stored[r*cols+c])
			}
		}
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: name, Shape: []uint64{uint64(cols), uint64(rows)},
			Type: typ, Source: memSource{typ, raw}})
		return out
	}
	vector := func(name string, n int, gen func(i int) float64) []float64 {
		vals := make([]float32, n)
		out := make([]float64, n)
		for i := range vals {
			vals[i] = float32(gen(i))
			out[i] = float64(vals[i])
		}
		m.Tensors = append(m.Tensors, &formats.Tensor{Name: name, Shape: []uint64{uint64(n)},
			Type: ggml.TypeF32, Source: memSource{ggml.TypeF32, encodeF32(vals)}})
		return out
	}
	norm := func(int) float64 { return 1 + 0.2*rng.NormFloat64() }
	sm.embd = matrix("token_embd.weight", cfg.vocab, cfg.dim, 1, wt)
	sm.outN = vector("output_norm.weight", cfg.dim, norm)
	if cfg.tied {
		sm.out = sm.embd
	} else {
		sm.out = matrix("output.weight", cfg.vocab, cfg.dim, 0.3, wt)
	}
	if cfg.ropeFreqs {
		sm.freqs = vector("rope_freqs.weight", hd/2, func(i int) float64 { return 1 + float64(i%4) })
	}
	s := 1 / math.Sqrt(float64(cfg.dim))
	for l := range cfg.layers {
		n := func(x string) string { return fmt.Sprintf("blk.%d.%s.weight", l, x) }
		var L synthLayer
		L.attnN = vector(n("attn_norm"), cfg.dim, norm)
		L.wq = matrix(n("attn_q"), cfg.dim, cfg.dim, 2*s, wt)
		L.wk = matrix(n("attn_k"), cfg.kvHeads*hd, cfg.dim, 2*s, wt)
		L.wv = matrix(n("attn_v"), cfg.kvHeads*hd, cfg.dim, s, wt)
		L.wo = matrix(n("attn_output"), cfg.dim, cfg.dim, s, wt)
		L.ffnN = vector(n("ffn_norm"), cfg.dim, norm)
		L.wg = matrix(n("ffn_gate"), cfg.ff, cfg.dim, s, wt)
		L.wu = matrix(n("ffn_up"), cfg.ff, cfg.dim, s, wt)
		L.wd = matrix(n("ffn_down"), cfg.dim, cfg.ff, 1/math.Sqrt(float64(cfg.ff)), wt)
		sm.layers = append(sm.layers, L)
	}
	path := filepath.Join(dir, "synth.gguf")
	if err := gguf.WriteFile(context.Background(), path, m, gguf.WriteOptions{Threads: 1, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	return path, sm
}

// naiveLogits is a direct float64 transcription of the llama forward pass:
// every position attends to itself and all earlier ones.
func (sm *synthModel) naiveLogits(tokens []int32) [][]float64 {
	cfg := sm.cfg
	hd := cfg.dim / cfg.heads
	const eps = 1e-5
	matvec := func(w [][]float64, x []float64) []float64 {
		y := make([]float64, len(w))
		for r, row := range w {
			for c, v := range row {
				y[r] += v * x[c]
			}
		}
		return y
	}
	rms := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * inv * w[i]
		}
		return y
	}
	freqScale, ext, mscale := 1.0, 0.0, 1.0
	if cfg.scaling == "linear" || cfg.scaling == "yarn" {
		freqScale = 1 / float64(cfg.factor)
	}
	origCtx := cfg.ctx
	if cfg.origCtx > 0 {
		origCtx = cfg.origCtx
	}
	var low, high float64
	if cfg.scaling == "yarn" {
		ext = 1
		mscale = 1 + 0.1*math.Log(1/freqScale)
		corr := func(rot float64) float64 {
			return float64(hd) * math.Log(float64(origCtx)/(rot*2*math.Pi)) / (2 * math.Log(10000))
		}
		low = math.Max(0, math.Floor(corr(32)))
		high = math.Min(float64(hd-1), math.Ceil(corr(1)))
	}
	rotate := func(v []float64, pos int) {
		for i := 0; i < hd; i += 2 {
			theta := float64(pos) * math.Pow(10000, -float64(i)/float64(hd))
			if sm.freqs != nil {
				theta /= sm.freqs[i/2]
			}
			angle := freqScale * theta
			if ext != 0 {
				ramp := 1 - math.Min(1, math.Max(0, (float64(i/2)-low)/math.Max(0.001, high-low)))
				angle = angle*(1-ramp) + theta*ramp
			}
			c, s := math.Cos(angle)*mscale, math.Sin(angle)*mscale
			v[i], v[i+1] = v[i]*c-v[i+1]*s, v[i]*s+v[i+1]*c
		}
	}
	n := len(tokens)
	x := make([][]float64, n)
	for i, t := range tokens {
		x[i] = append([]float64(nil), sm.embd[t]...)
	}
	for _, L := range sm.layers {
		qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range n {
			h := rms(x[i], L.attnN)
			qs[i], ks[i], vs[i] = matvec(L.wq, h), matvec(L.wk, h), matvec(L.wv, h)
			for head := range cfg.heads {
				rotate(qs[i][head*hd:(head+1)*hd], i)
			}
			for head := range cfg.kvHeads {
				rotate(ks[i][head*hd:(head+1)*hd], i)
			}
		}
		for i := range n {
			att := make([]float64, cfg.dim)
			for head := range cfg.heads {
				g := head / (cfg.heads / cfg.kvHeads)
				q := qs[i][head*hd : (head+1)*hd]
				w := make([]float64, i+1)
				maxw := math.Inf(-1)
				for j := 0; j <= i; j++ {
					k := ks[j][g*hd : (g+1)*hd]
					for e := range q {
						w[j] += q[e] * k[e]
					}
					w[j] /= math.Sqrt(float64(hd))
					maxw = math.Max(maxw, w[j])
				}
				var sum float64
				for j := range w {
					w[j] = math.Exp(w[j] - maxw)
					sum += w[j]
				}
				for j := range w {
					v := vs[j][g*hd : (g+1)*hd]
					for e := range hd {
						att[head*hd+e] += w[j] / sum * v[e]
					}
				}
			}
			o := matvec(L.wo, att)
			for e := range o {
				x[i][e] += o[e]
			}
			h := rms(x[i], L.ffnN)
			g, u := matvec(L.wg, h), matvec(L.wu, h)
			for e := range g {
				g[e] = g[e] / (1 + math.Exp(-g[e])) * u[e]
			}
			d := matvec(L.wd, g)
			for e := range d {
				x[i][e] += d[e]
			}
		}
	}
	out := make([][]float64, n)
	for i := range n {
		out[i] = matvec(sm.out, rms(x[i], sm.outN))
	}
	return out
}

func randomTokens(rng *rand.Rand, n, vocab int) []int32 {
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32(rng.IntN(vocab))
	}
	return toks
}

func baseSynth() synthConfig {
	return synthConfig{dim: 64, ff: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 96, ctx: 64,
		weightType: ggml.TypeF32, seed: 1}
}

// TestForwardMatchesNaive checks the engine against the float64 forward pass
// above on random models covering GQA, tied output and each RoPE scaling.
func TestForwardMatchesNaive(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*synthConfig)
		kv   Options
		tol  float64 // relative to max|logit|
	}{
		{"plain", func(*synthConfig) {}, Options{Threads: 2, KVF32: true}, 2e-5},
		{"plain-kvF16", func(*synthConfig) {}, Options{Threads: 2}, 3e-3},
		{"mha-tied", func(c *synthConfig) { c.kvHeads = 4; c.tied = true }, Options{Threads: 3, KVF32: true}, 2e-5},
		{"linear", func(c *synthConfig) { c.scaling, c.factor = "linear", 4 }, Options{Threads: 1, KVF32: true}, 2e-5},
		{"yarn", func(c *synthConfig) { c.scaling, c.factor, c.origCtx = "yarn", 4, 16 }, Options{Threads: 2, KVF32: true}, 2e-5},
		{"rope-freqs", func(c *synthConfig) { c.ropeFreqs = true }, Options{Threads: 2, KVF32: true}, 2e-5},
		{"q8_0", func(c *synthConfig) { c.weightType = ggml.TypeQ8_0 }, Options{Threads: 2, KVF32: true}, 6e-2}, // activations go through Q8_0 too
		{"f16", func(c *synthConfig) { c.weightType = ggml.TypeF16 }, Options{Threads: 2}, 5e-3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseSynth()
			tc.mod(&cfg)
			path, sm := writeSynth(t, t.TempDir(), cfg)
			m, err := Load(path, tc.kv)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			toks := randomTokens(rand.New(rand.NewPCG(2, 3)), 40, cfg.vocab)
			want := sm.naiveLogits(toks)
			c := m.NewContext(cfg.ctx)
			defer c.Close()
			got, err := c.Decode(toks, true)
			if err != nil {
				t.Fatal(err)
			}
			var maxAbs, maxDiff, ss, sd float64
			for i := range toks {
				for v := range cfg.vocab {
					d := float64(got[i*cfg.vocab+v]) - want[i][v]
					maxAbs = max(maxAbs, math.Abs(want[i][v]))
					maxDiff = max(maxDiff, math.Abs(d))
					ss += want[i][v] * want[i][v]
					sd += d * d
				}
			}
			t.Logf("max|Δ| %.3g, max|logit| %.3g, rms(Δ)/rms(logit) %.3g", maxDiff, maxAbs, math.Sqrt(sd/ss))
			if maxDiff > tc.tol*maxAbs {
				t.Errorf("max|Δlogit| %.4g exceeds %.g × %.4g", maxDiff, tc.tol, maxAbs)
			}
		})
	}
}

// TestKVCacheDecodeMatchesBatch feeds the same tokens in one batch, one at a
// time and in uneven pieces: the cache must make every split give the same
// logits.
func TestKVCacheDecodeMatchesBatch(t *testing.T) {
	for _, wt := range []ggml.Type{ggml.TypeF32, ggml.TypeQ4_K} {
		for _, kv := range []Options{{Threads: 2}, {Threads: 2, KVF32: true}} {
			t.Run(fmt.Sprintf("%s-kvf32=%v", wt, kv.KVF32), func(t *testing.T) {
				cfg := baseSynth()
				cfg.weightType = wt
				cfg.dim, cfg.ff = 256, 256 // K-quants need 256-element rows
				cfg.heads, cfg.kvHeads = 8, 2
				path, _ := writeSynth(t, t.TempDir(), cfg)
				m, err := Load(path, kv)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				toks := randomTokens(rand.New(rand.NewPCG(5, 6)), 30, cfg.vocab)
				c := m.NewContext(cfg.ctx)
				defer c.Close()
				// Batches attend in chunks; make them small so that the
				// 30-token batch spans several.
				c.attnChunk = 7
				full, err := c.Decode(toks, true)
				if err != nil {
					t.Fatal(err)
				}
				full = append([]float32(nil), full...)
				for _, split := range [][]int{{1}, {3, 1, 7}, {13, 17}} {
					c.Reset()
					pos := 0
					for k := 0; pos < len(toks); k++ {
						step := min(split[k%len(split)], len(toks)-pos)
						got, err := c.Decode(toks[pos:pos+step], false)
						if err != nil {
							t.Fatal(err)
						}
						pos += step
						if c.Pos() != pos {
							t.Fatalf("Pos() = %d after %d tokens", c.Pos(), pos)
						}
						want := full[(pos-1)*cfg.vocab : pos*cfg.vocab]
						for v := range want {
							if d := math.Abs(float64(got[v] - want[v])); d > 1e-4*(1+math.Abs(float64(want[v]))) {
								t.Fatalf("split %v, position %d, logit %d: %g, batch gave %g", split, pos-1, v, got[v], want[v])
							}
						}
					}
				}
			})
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cfg := baseSynth()
	path, _ := writeSynth(t, t.TempDir(), cfg)
	m, err := Load(path, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.NewContext(4)
	defer c.Close()
	for name, toks := range map[string][]int32{
		"empty": {}, "negative": {-1}, "beyond vocabulary": {int32(cfg.vocab)}, "beyond context": {1, 2, 3, 4, 5},
	} {
		if _, err := c.Decode(toks, false); err == nil {
			t.Errorf("%s: no error", name)
		}
		if c.Pos() != 0 {
			t.Fatalf("%s: a rejected Decode moved the position to %d", name, c.Pos())
		}
	}
	if _, err := c.Decode([]int32{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode([]int32{1, 2}, false); err == nil {
		t.Error("decoding past the context succeeded")
	}
	c.Truncate(1)
	if c.Pos() != 1 {
		t.Errorf("Truncate(1) left Pos %d", c.Pos())
	}
	if _, err := c.Decode([]int32{1, 2, 3}, false); err != nil {
		t.Errorf("after Truncate: %v", err)
	}
	other := m.NewContext(8)
	defer other.Close()
	if err := other.CopyFrom(c); err == nil {
		t.Error("CopyFrom between context sizes succeeded")
	}
}

// TestLoadRejectsBadShapes: a tensor whose shape disagrees with the
// hyperparameters is named in the error.
func TestLoadRejectsBadShapes(t *testing.T) {
	cfg := baseSynth()
	path, _ := writeSynth(t, t.TempDir(), cfg)
	base, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	for _, tc := range []struct{ key, want string }{
		{"llama.feed_forward_length", "ffn_gate"},
		{"llama.vocab_size", "token_embd"},
		{"llama.embedding_length", "rope.dimension_count"},
		{"llama.attention.head_count_kv", "attn_k"},
	} {
		m := base.Model()
		v, _ := m.KV.Uint(tc.key)
		m.KV.Set(tc.key, uint32(v/2))
		out := filepath.Join(t.TempDir(), "bad.gguf")
		if err := gguf.WriteFile(context.Background(), out, m, gguf.WriteOptions{Threads: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := Load(out, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s halved: error %v, want one naming %s", tc.key, err, tc.want)
		}
	}
}
