package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpNonPositive(t *testing.T) {
	var worst float64
	for i := 0; i <= 2_000_000; i++ {
		x := -87.3 * float32(i) / 2_000_000
		got := float64(expNonPositive(x))
		want := math.Exp(float64(x))
		ulp := float64(math.Nextafter32(float32(want), 1)) - float64(float32(want))
		if ulp > 0 {
			worst = max(worst, math.Abs(got-want)/ulp)
		}
	}
	if worst > 2 {
		t.Errorf("worst error %.2f ulp", worst)
	}
	for _, x := range []float32{-88, -1000, float32(math.Inf(-1))} {
		if got := expNonPositive(x); got != 0 {
			t.Errorf("exp(%g) = %g, want 0", x, got)
		}
	}
	if got := expNonPositive(0); got != 1 {
		t.Errorf("exp(0) = %g", got)
	}
	if got := expNonPositive(float32(math.NaN())); got == got {
		t.Errorf("exp(NaN) = %g", got)
	}
}

// TestExpShiftedSets checks ExpShifted in every kernel set against the Go
// steps, bit for bit, on scores around the cut-off, the extremes and NaN.
func TestExpShiftedSets(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	x := make([]float32, 1003)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = -rng.Float32() * 100
		case 1:
			x[i] = -87.3 + (rng.Float32()-0.5)*1e-4
		default:
			x[i] = -rng.Float32() * 10
		}
	}
	x[3], x[17], x[40], x[41] = float32(math.NaN()), float32(math.Inf(-1)), 0, -math.SmallestNonzeroFloat32
	const shift = 1.5
	for i := range x {
		x[i] += shift
	}
	want := make([]float32, len(x))
	for i, v := range x {
		want[i] = expNonPositive(v - shift)
	}
	for _, set := range Sets() {
		useSet(t, set)
		for _, n := range []int{0, 1, 7, 8, 9, 64, len(x)} {
			got := append([]float32(nil), x[:n]...)
			ExpShifted(got, shift)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%s n=%d: exp(%g) = %g (%#x), Go %g (%#x)", set, n, x[i]-shift, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}

// TestWeightedSumF16Sets checks WeightedSumF16 in every kernel set against
// AxpyF16 once per key from zero, bit for bit, for head sizes that exercise
// each strip width.
func TestWeightedSumF16Sets(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, set := range Sets() {
		useSet(t, set)
		for _, hd := range []int{1, 7, 8, 40, 64, 96, 128, 256} {
			for _, keys := range []int{0, 1, 5, 33} {
				w := make([]float32, keys)
				for j := range w {
					w[j] = rng.Float32()
				}
				vals := make([]float32, keys*hd)
				for i := range vals {
					vals[i] = rng.Float32()*4 - 2
				}
				v := make([]byte, 2*len(vals)+6) // longer than needed
				F32ToF16(v[:2*len(vals)], vals)
				want := make([]float32, hd)
				for j, p := range w {
					AxpyF16(want, p, v[2*j*hd:2*(j+1)*hd])
				}
				got := make([]float32, hd+1)
				for i := range got {
					got[i] = 42
				}
				WeightedSumF16(got[:hd], w, v)
				for e := range want {
					if math.Float32bits(got[e]) != math.Float32bits(want[e]) {
						t.Fatalf("%s hd=%d keys=%d: out[%d] = %g, per-key axpy %g", set, hd, keys, e, got[e], want[e])
					}
				}
				if got[hd] != 42 {
					t.Fatalf("%s hd=%d keys=%d: wrote past out", set, hd, keys)
				}
			}
		}
	}
}

func BenchmarkExpShifted(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = -float32(i%97) * 0.1
	}
	y := make([]float32, len(x))
	for _, set := range Sets() {
		useSet(b, set)
		b.Run(set, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				copy(y, x)
				ExpShifted(y, 0)
			}
		})
	}
}

func BenchmarkWeightedSumF16(b *testing.B) {
	const hd, keys = 64, 512
	w := make([]float32, keys)
	for j := range w {
		w[j] = 1 / float32(keys)
	}
	v := make([]byte, 2*hd*keys)
	out := make([]float32, hd)
	for _, set := range Sets() {
		useSet(b, set)
		b.Run(fmt.Sprintf("%s/hd=%d/keys=%d", set, hd, keys), func(b *testing.B) {
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				WeightedSumF16(out, w, v)
			}
		})
	}
}
