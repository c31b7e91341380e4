package quant

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// bruteForce is the exact optimum of a small choice problem.
func bruteForce(ts []TensorChoices, budget uint64) float64 {
	best := math.Inf(1)
	var rec func(i int, bytes uint64, loss float64)
	rec = func(i int, bytes uint64, loss float64) {
		if bytes > budget {
			return
		}
		if i == len(ts) {
			best = min(best, loss)
			return
		}
		for _, c := range ts[i].Choices {
			rec(i+1, bytes+c.Bytes, loss+c.Loss)
		}
	}
	rec(0, 0, 0)
	return best
}

// TestChooseTypes: the choice fits the budget and comes close to the exact
// optimum on random problems of 2-6 tensors, shaped as quantization losses
// are (falling as bytes grow): within 1% on average and 25% at worst. Few
// tensors are the hard case for the Lagrangian method; with a model's
// hundreds of tensors the gap shrinks.
func TestChooseTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var ratioSum float64
	const trials = 200
	for trial := range trials {
		n := 2 + rng.IntN(5)
		var ts []TensorChoices
		var lo, hi uint64
		for i := range n {
			size := uint64(100 + rng.IntN(1000))
			sens := rng.Float64() * 10
			var cs []Choice
			for k, bits := range []float64{2.6, 3.4, 4.5, 5.5, 6.6, 8.5} {
				cs = append(cs, Choice{Type: ggml.Type(k), Bytes: uint64(bits * float64(size) / 8), Loss: sens * math.Exp2(-2*bits)})
			}
			lo += cs[0].Bytes
			hi += cs[len(cs)-1].Bytes
			ts = append(ts, TensorChoices{Name: string(rune('a' + i)), Choices: cs})
		}
		budget := lo + uint64(rng.Float64()*float64(hi-lo))
		got, err := ChooseTypes(ts, budget)
		if err != nil {
			t.Fatal(err)
		}
		var bytes uint64
		var loss float64
		for _, c := range got {
			bytes += c.Bytes
			loss += c.Loss
		}
		if bytes > budget {
			t.Fatalf("trial %d: %d bytes over the budget %d", trial, bytes, budget)
		}
		opt := bruteForce(ts, budget)
		if loss > opt*1.25+1e-12 {
			t.Errorf("trial %d: loss %g, optimum %g", trial, loss, opt)
		}
		ratioSum += loss / max(opt, 1e-300)
	}
	if mean := ratioSum / trials; mean > 1.01 {
		t.Errorf("mean loss / optimum %g", mean)
	}
	if _, err := ChooseTypes([]TensorChoices{{Name: "x", Choices: []Choice{{Bytes: 10}}}}, 5); !errors.Is(err, ErrTargetTooSmall) {
		t.Errorf("budget below the smallest types: %v", err)
	}
	if _, err := ChooseTypes([]TensorChoices{{Name: "x", Choices: []Choice{{Bytes: 1, Loss: math.NaN()}}}}, 5); err == nil {
		t.Error("a NaN loss was accepted")
	}
}

// TestProxyLoss: the proxy falls as the types get wider, scales with the
// importance weights, and sampling rows keeps its scale.
func TestProxyLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const ne0, rows = 256, 64
	data := make([]float32, ne0*rows)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	prev := math.Inf(1)
	for _, typ := range []ggml.Type{ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeQ8_0} {
		p, err := ProxyLoss(typ, data, ne0, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !(p < prev) || p <= 0 {
			t.Errorf("%v: proxy %g after %g", typ, p, prev)
		}
		prev = p
		sampled, err := ProxyLoss(typ, data, ne0, nil, 16)
		if err != nil {
			t.Fatal(err)
		}
		if r := sampled / p; r < 0.7 || r > 1.4 {
			t.Errorf("%v: 16 sampled rows give %g, all rows %g", typ, sampled, p)
		}
	}
	// Importance weights scale each column's error.
	w := make([]float32, ne0)
	for j := range w {
		w[j] = 2
	}
	plain, _ := ProxyLoss(ggml.TypeQ8_0, data, ne0, nil, 0)
	if p, err := ProxyLoss(ggml.TypeQ8_0, data, ne0, w, 0); err != nil || math.Abs(p/plain-2) > 0.01 {
		t.Errorf("importance weights of 2: proxy %g, %g without (%v)", p, plain, err)
	}
	if got := CandidatesFor(100, 200, true); len(got) != 0 {
		t.Errorf("a 100-column row takes %v", got)
	}
	if got := CandidatesFor(32, 64, false); len(got) == 0 || got[0].Bytes == 0 {
		t.Errorf("a 32-column row takes %v", got)
	}
}
