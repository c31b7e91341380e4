package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSiLUMulSets checks SiLUMul in every kernel set against SiLU element
// by element, bit for bit: activations of every scale, the bounds of the
// assembly's range (±700) and beyond, where math.Exp overflows or goes
// denormal, and NaN, ±Inf and ±0, at lengths that leave tails.
func TestSiLUMulSets(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	g, u := make([]float32, 4099), make([]float32, 4099)
	for i := range g {
		scale := float32(math.Pow(10, float64(rng.IntN(7)-3))) // 1e-3 … 1e3
		g[i] = (rng.Float32()*2 - 1) * scale
		u[i] = (rng.Float32()*2 - 1) * 4
	}
	special := []float32{700, -700, 700.0001, -700.0001, 745.2, -745.2, 800, -800, 1e30, -1e30,
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		math.SmallestNonzeroFloat32, -88.7, 88.7, 104, -104}
	for i, v := range special {
		g[37*i+5] = v
	}
	want := make([]float32, len(g))
	for i, v := range g {
		want[i] = SiLU(v) * u[i]
	}
	for _, set := range Sets() {
		useSet(t, set)
		for _, n := range []int{0, 1, 3, 4, 5, 8, 64, 743, len(g)} {
			got := append([]float32(nil), g[:n]...)
			SiLUMul(got, u[:n])
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%s n=%d: silu(%g)·%g = %g (%#x), Go %g (%#x)", set, n, g[i], u[i], got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}

func BenchmarkSiLUMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(43, 44))
	g, u := make([]float32, 5632), make([]float32, 5632)
	for i := range g {
		g[i], u[i] = rng.Float32()*8-4, rng.Float32()*2-1
	}
	work := make([]float32, len(g))
	for _, set := range Sets() {
		b.Run(set, func(b *testing.B) {
			useSet(b, set)
			b.SetBytes(int64(8 * len(g)))
			for b.Loop() {
				copy(work, g)
				SiLUMul(work, u)
			}
		})
	}
}
