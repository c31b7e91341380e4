package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
)

// Self-contained checks of the steps the architectures add to the shared
// block (the golden comparisons, which need the shared testdata, are in
// arch_golden_test.go and the arch_*_test.go twins).

// TestRopeNeoxIsPermutedNormal: NEOX mode rotates (x[i], x[i+n/2]) by the
// angle normal mode uses for (x[2i], x[2i+1]).
func TestRopeNeoxIsPermutedNormal(t *testing.T) {
	h := Hparams{NRot: 16, RopeOrigCtx: 64, RopeAttnFactor: 1, YarnBetaFast: 32, YarnBetaSlow: 1}
	p := ropeParams{base: 10000, scale: 1}
	normal, neox := newRope(h, p, false, 64), newRope(h, p, true, 64)
	rng := rand.New(rand.NewPCG(1, 2))
	const heads = 3
	x := make([]float32, heads*h.NRot)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	cs := make([]float32, h.NRot)
	for _, pos := range []int{0, 1, 7, 63} {
		normal.cache(cs, pos)
		// Interleave each head's halves, rotate in normal mode, undo.
		perm := make([]float32, len(x))
		half := h.NRot / 2
		for hd := range heads {
			for i := range half {
				perm[hd*h.NRot+2*i] = x[hd*h.NRot+i]
				perm[hd*h.NRot+2*i+1] = x[hd*h.NRot+i+half]
			}
		}
		normal.apply(perm, heads, h.NRot, cs)
		got := append([]float32(nil), x...)
		neox.apply(got, heads, h.NRot, cs)
		for hd := range heads {
			for i := range half {
				if got[hd*h.NRot+i] != perm[hd*h.NRot+2*i] || got[hd*h.NRot+i+half] != perm[hd*h.NRot+2*i+1] {
					t.Fatalf("position %d head %d pair %d: NEOX (%g, %g), normal (%g, %g)", pos, hd, i,
						got[hd*h.NRot+i], got[hd*h.NRot+i+half], perm[hd*h.NRot+2*i], perm[hd*h.NRot+2*i+1])
				}
			}
		}
	}
}

// TestLongRopeFactorsByContext: LongRoPE's long factors apply above the
// original context, the short ones up to it.
func TestLongRopeFactorsByContext(t *testing.T) {
	h := Hparams{NRot: 4, RopeOrigCtx: 64, RopeAttnFactor: 1}
	short, long := []float32{1, 2}, []float32{3, 4}
	p := ropeParams{base: 10000, scale: 1, freqs: short, long: long}
	for _, tc := range []struct {
		nCtx int
		want []float32
	}{{32, short}, {64, short}, {65, long}, {128, long}} {
		if got := newRope(h, p, true, tc.nCtx).freqs; &got[0] != &tc.want[0] {
			t.Errorf("n_ctx %d: factors %v, want %v", tc.nCtx, got, tc.want)
		}
	}
}

// TestGeluF16: ggml's table semantics (0 and x beyond ±10, else GELU of the
// half-rounded input rounded to half), close to the exact GELU.
func TestGeluF16(t *testing.T) {
	for _, tc := range []struct{ x, want float32 }{
		{-10, 0}, {-12.5, 0}, {10, 10}, {11.25, 11.25}, {0, 0},
	} {
		if got := geluF16(tc.x); got != tc.want {
			t.Errorf("geluF16(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		x := rng.Float32()*19.9 - 9.95
		h := block.HalfToFloat(block.FloatToHalf(x))
		want := block.HalfToFloat(block.FloatToHalf(gelu(h)))
		if got := geluF16(x); got != want {
			t.Fatalf("geluF16(%g) = %g, want %g", x, got, want)
		}
		if d := math.Abs(float64(geluF16(x) - gelu(x))); d > 2e-3*(1+math.Abs(float64(x))) {
			t.Fatalf("geluF16(%g) = %g is %g from GELU %g", x, geluF16(x), d, gelu(x))
		}
	}
}

// TestSoftcap: cap·tanh(x/cap) to float32 precision, never beyond ±cap,
// odd, and nearly the identity for small x.
func TestSoftcap(t *testing.T) {
	const c = 30
	x := []float32{-1e6, -60, -0.01, 0, 0.01, 30, 1e6}
	got := append([]float32(nil), x...)
	softcap(got, c)
	for i, v := range x {
		want := c * math.Tanh(float64(v)/c)
		if d := math.Abs(float64(got[i]) - want); d > 1e-6*c || math.Abs(float64(got[i])) > c {
			t.Errorf("softcap(%g) = %g, want %g within ±%d", v, got[i], want, c)
		}
	}
	if got[0] != -got[len(got)-1] || got[2] != -got[4] || math.Abs(float64(got[4]-0.01)) > 1e-6 {
		t.Errorf("softcap not odd or not near identity at 0.01: %v", got)
	}
}

// loadSynthStyled loads a synthetic llama model and sets the block's
// switches as an architecture's loader would.
func loadSynthStyled(t *testing.T, opt Options, style func(m *Model)) *Model {
	t.Helper()
	path, _ := writeSynth(t, t.TempDir(), baseSynth())
	m, err := Load(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	style(m)
	return m
}

// TestStyledDecodeMatchesBatch: with every optional step on (NEOX, scaled
// embeddings and queries, soft-caps, GELU, sliding windows, a second RoPE
// variant), batches and token-by-token decoding agree: the window is applied
// the same way on both attention paths.
func TestStyledDecodeMatchesBatch(t *testing.T) {
	for _, kvF32 := range []bool{false, true} {
		m := loadSynthStyled(t, Options{Threads: 2, KVF32: kvF32}, func(m *Model) {
			m.style = blockStyle{neox: true, embedScale: 2, queryScale: 0.25, attnSoftcap: 5, finalSoftcap: 10, gelu: true}
			m.ropes = append(m.ropes, ropeParams{base: 500, scale: 0.5})
			m.Layers[0].Window, m.Layers[0].Rope = 5, 1
		})
		vocab := m.NVocab()
		toks := randomTokens(rand.New(rand.NewPCG(7, 8)), 30, vocab)
		c := m.NewContext(64)
		c.attnChunk = 7
		full, err := c.Decode(toks, true)
		if err != nil {
			t.Fatal(err)
		}
		full = append([]float32(nil), full...)
		c.Reset()
		for i, tok := range toks {
			got, err := c.Decode([]int32{tok}, false)
			if err != nil {
				t.Fatal(err)
			}
			want := full[i*vocab : (i+1)*vocab]
			for v := range want {
				if d := math.Abs(float64(got[v] - want[v])); d > 1e-4*(1+math.Abs(float64(want[v]))) {
					t.Fatalf("kvF32=%v position %d logit %d: %g one by one, %g in a batch", kvF32, i, v, got[v], want[v])
				}
				if math.Abs(float64(got[v])) > 10 {
					t.Fatalf("logit %g beyond the final soft-cap 10", got[v])
				}
			}
		}
	}
}

// TestWindowOfOne: a layer whose window is 1 attends to its own position
// only; with every layer so, a token's logits do not depend on what came
// before it (RoPE rotates queries and keys, not values).
func TestWindowOfOne(t *testing.T) {
	m := loadSynthStyled(t, Options{Threads: 2, KVF32: true}, func(m *Model) {
		for i := range m.Layers {
			m.Layers[i].Window = 1
		}
	})
	c := m.NewContext(16)
	alone, err := c.Decode([]int32{5}, false)
	if err != nil {
		t.Fatal(err)
	}
	alone = append([]float32(nil), alone...)
	c.Reset()
	after, err := c.Decode([]int32{9, 3, 17, 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	for v := range alone {
		if d := math.Abs(float64(after[v] - alone[v])); d > 1e-5*(1+math.Abs(float64(alone[v]))) {
			t.Fatalf("logit %d: %g after three tokens, %g alone", v, after[v], alone[v])
		}
	}
}

// TestMoEMatchesNaive: the routed feed-forward equals the weighted sum, over
// the two most probable experts (probabilities renormalised), of each
// expert's own feed-forward.
func TestMoEMatchesNaive(t *testing.T) {
	m := loadSynthStyled(t, Options{Threads: 2}, func(*Model) {})
	h := m.Hparams
	l0, l1 := m.Layers[0], m.Layers[1]
	const nExp = 3
	rng := rand.New(rand.NewPCG(9, 10))
	router := make([]float32, nExp*h.NEmbd)
	for i := range router {
		router[i] = float32(rng.NormFloat64())
	}
	e := &Experts{
		Router: &Weight{Name: "router", Type: ggml.TypeF32, Data: encodeF32(router), Rows: nExp, Cols: h.NEmbd},
		Gate:   []*Weight{l0.WGate, l1.WGate, l0.WUp},
		Up:     []*Weight{l0.WUp, l1.WUp, l1.WGate},
		Down:   []*Weight{l0.WDown, l1.WDown, l1.WDown},
		NUsed:  2,
	}
	m.Layers[0].Experts = e
	c := m.NewContext(16)
	const nb = 6
	x := make([]float32, nb*h.NEmbd)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	got := make([]float32, nb*h.NEmbd)
	c.moeFFN(e, got, x, nb)
	one := make([]float32, h.NEmbd)
	picked := map[int]bool{}
	for i := range nb {
		xi := x[i*h.NEmbd : (i+1)*h.NEmbd]
		// Router probabilities in float64.
		p := make([]float64, nExp)
		var sum float64
		for ex := range nExp {
			for j, v := range xi {
				p[ex] += float64(router[ex*h.NEmbd+j]) * float64(v)
			}
		}
		mx := max(p[0], p[1], p[2])
		for ex := range p {
			p[ex] = math.Exp(p[ex] - mx)
			sum += p[ex]
		}
		worst := 0
		for ex := range p {
			if p[ex] < p[worst] {
				worst = ex
			}
		}
		want := make([]float64, h.NEmbd)
		var wsum float64
		for ex := range nExp {
			if ex != worst {
				wsum += p[ex] / sum
			}
		}
		for ex := range nExp {
			if ex == worst {
				continue
			}
			picked[ex] = true
			c.ffn(one, e.Gate[ex], e.Up[ex], e.Down[ex], xi, 1)
			for j, v := range one {
				want[j] += p[ex] / sum / wsum * float64(v)
			}
		}
		for j, w := range want {
			if d := math.Abs(float64(got[i*h.NEmbd+j]) - w); d > 1e-4*(1+math.Abs(w)) {
				t.Fatalf("token %d element %d: %g, naive %g", i, j, got[i*h.NEmbd+j], w)
			}
		}
	}
	if len(picked) < 2 {
		t.Errorf("the router picked only experts %v: the test exercises too little", picked)
	}
}

// TestArchLoadErrors: files an architecture cannot run fail to load with one
// line naming the file and the problem.
func TestArchLoadErrors(t *testing.T) {
	path, _ := writeSynth(t, t.TempDir(), baseSynth())
	cases := []struct {
		name, arch string
		set        map[string]any
		want       string
	}{
		{"unknown", "gpt2", nil, `architecture "gpt2" is not supported (supported: gemma, gemma2, gemma3, llama, phi3, qwen2, qwen3)`},
		{"experts-used", "llama", map[string]any{"llama.expert_count": uint32(4), "llama.expert_used_count": uint32(5)}, "expert_used_count = 5"},
		{"experts-missing", "llama", map[string]any{"llama.expert_count": uint32(4), "llama.expert_used_count": uint32(2)}, "missing tensor blk.0.ffn_gate_inp.weight"},
		{"qwen2-bias", "qwen2", nil, "missing tensor blk.0.attn_q.bias"},
		{"qwen3-norm", "qwen3", nil, "missing tensor blk.0.attn_q_norm.weight"},
		{"gemma2-layers", "gemma2", nil, "26, 42 or 46 layers"},
		{"gemma3-norms", "gemma3", nil, "missing tensor blk.0.attn_q_norm.weight"},
		{"phi3-fused-up", "phi3", nil, "tensor blk.0.ffn_up.weight has shape [64 96], hyperparameters need [64 192]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := rewriteArch(t, path, tc.arch, tc.set)
			_, err := Load(out, Options{Threads: 1})
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, out) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line naming %s and %q", msg, out, tc.want)
			}
		})
	}
}

// rewriteArch copies the GGUF at path with general.architecture set to arch
// (its keys renamed to match) and the keys in set added.
func rewriteArch(t *testing.T, path, arch string, set map[string]any) string {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := f.Model()
	for i := range m.KV {
		if k, ok := strings.CutPrefix(m.KV[i].Key, "llama."); ok {
			m.KV[i].Key = arch + "." + k
		}
	}
	m.KV.Set("general.architecture", arch)
	for k, v := range set {
		m.KV.Set(k, v)
	}
	out := filepath.Join(t.TempDir(), arch+".gguf")
	if err := gguf.WriteFile(context.Background(), out, m, gguf.WriteOptions{Threads: 1}); err != nil {
		t.Fatal(err)
	}
	return out
}
