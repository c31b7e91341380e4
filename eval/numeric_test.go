package eval

import (
	"math"
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

func BenchmarkSoftmax(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%97) * 0.1
	}
	y := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		copy(y, x)
		softmaxInPlace(y)
	}
}
