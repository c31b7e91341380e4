package target

import (
	"context"
	"math"
	"testing"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/perplexity"
	"github.com/llqt/llqt/quant"
)

// TestProxyTracksKLD: on the tiny model, the KL-divergence one tensor adds
// in each type, measured, against the proxy (the squared error of its
// products): both fall together from Q2_K to Q8_0, and their ratio, the
// gain MethodHybrid measures once per tensor, stays within a factor of
// four from Q2_K to Q6_K — while it differs between tensors by over ten
// times, which is why it is measured per tensor. (At Q8_0 the measured
// loss levels off at the error of the activations' own Q8 rounding, which
// the proxy leaves out; those types are cheap in the choice anyway.)
func TestProxyTracksKLD(t *testing.T) {
	path := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	m, err := eval.Load(path, eval.Options{KVF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks, opt, err := perplexity.EngineText(m, fixtures.Path(t, "text/tinystories_train.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := m.NewContext(128)
	defer c.Close()
	probe, err := perplexity.NewKLDProbe(context.Background(), c, m.NVocab(), toks, 128, 2, opt.BOS, opt.AddBOS, 2)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	graph := f.Model()
	var gains []float64
	for _, name := range []string{"blk.0.attn_v.weight", "blk.3.ffn_down.weight", "output.weight"} {
		var data []float32
		var ne0 int
		for _, tt := range graph.Tensors {
			if tt.Name == name {
				if data, err = readFloats(tt); err != nil {
					t.Fatal(err)
				}
				ne0 = int(tt.Shape[0])
			}
		}
		prevKLD, prevProxy := math.Inf(1), math.Inf(1)
		var lo, hi float64 = math.Inf(1), 0
		for _, typ := range []ggml.Type{ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeQ4_K, ggml.TypeQ6_K, ggml.TypeQ8_0} {
			q, err := quant.Quantize(typ, data, ne0, nil)
			if err != nil {
				t.Fatal(err)
			}
			restore, err := m.ReplaceWeight(name, typ, q)
			if err != nil {
				t.Fatal(err)
			}
			kld, err := probe.Measure(context.Background())
			restore()
			if err != nil {
				t.Fatal(err)
			}
			proxy, err := quant.ProxyLoss(typ, data, ne0, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !(kld < prevKLD) || !(proxy < prevProxy) {
				t.Errorf("%s %v: KLD %g (before %g), proxy %g (before %g): not falling", name, typ, kld, prevKLD, proxy, prevProxy)
			}
			prevKLD, prevProxy = kld, proxy
			g := kld / proxy
			if typ != ggml.TypeQ8_0 {
				lo, hi = min(lo, g), max(hi, g)
			}
			t.Logf("%-22s %-5v KLD %.3e  proxy %.3e  gain %.3e", name, typ, kld, proxy, g)
		}
		if hi/lo > 4 {
			t.Errorf("%s: the gain KLD/proxy ranges over %.1f× from Q2_K to Q6_K", name, hi/lo)
		}
		gains = append(gains, math.Sqrt(lo*hi))
	}
	spread := 0.0
	for _, a := range gains {
		for _, b := range gains {
			spread = max(spread, a/b)
		}
	}
	if spread < 10 {
		t.Errorf("gains differ between tensors by only %.1f×; a single gain would do", spread)
	}
}

func TestReplaceWeightErrors(t *testing.T) {
	m, err := eval.Load(fixtures.Path(t, "golden/tiny-llama-f32.gguf"), eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ReplaceWeight("blk.0.nothing.weight", ggml.TypeQ8_0, nil); err == nil {
		t.Error("an unknown weight was replaced")
	}
	if _, err := m.ReplaceWeight("blk.0.attn_q.weight", ggml.TypeQ8_0, make([]byte, 10)); err == nil {
		t.Error("data of the wrong size was accepted")
	}
}
