package block

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bestIndexBisect is ggml's best_index_int8 search, to check the lookup.
func bestIndexBisect(x float32) uint8 {
	val := &IQ4NLValues
	if x <= float32(val[0]) {
		return 0
	}
	if x >= float32(val[15]) {
		return 15
	}
	ml, mu := 0, 15
	for mu-ml > 1 {
		mav := (ml + mu) / 2
		if x < float32(val[mav]) {
			mu = mav
		} else {
			ml = mav
		}
	}
	if x-float32(val[mu-1]) < float32(val[mu])-x {
		return uint8(mu - 1)
	}
	return uint8(mu)
}

func TestBestIndexIQ4(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	check := func(x float32) {
		if got, want := bestIndexIQ4(x), bestIndexBisect(x); got != want {
			t.Fatalf("bestIndexIQ4(%v) = %d, bisection %d", x, got, want)
		}
	}
	for f := -130; f <= 130; f++ {
		for _, d := range []float32{0, 0.5, -0.5, 1e-6, -1e-6, 0.49999997, 0.50000006} {
			check(float32(f) + d)
			check(math.Nextafter32(float32(f)+d, 200))
			check(math.Nextafter32(float32(f)+d, -200))
		}
	}
	for i := 0; i < 100000; i++ {
		check(float32(r.NormFloat64() * 80))
	}
	check(float32(math.NaN()))
	check(float32(math.Inf(1)))
	check(float32(math.Inf(-1)))
}
