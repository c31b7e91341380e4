package block

import (
	"math"
	"math/rand/v2"
	"testing"
)

// subBlockCases are 32-value sub-blocks that exercise the search's
// branches: Gaussian and skewed data, constants (max == min), all
// positive (min clamped to 0), zeros, a single spike, tiny values.
func subBlockCases(rng *rand.Rand, n int) [][]float32 {
	var out [][]float32
	for c := 0; c < n; c++ {
		x := make([]float32, 32)
		switch c % 8 {
		case 0, 1, 2:
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 0.02)
			}
		case 3:
			v := float32(rng.NormFloat64())
			for i := range x {
				x[i] = v
			}
		case 4:
			for i := range x {
				x[i] = float32(rng.ExpFloat64())
			}
		case 5:
			x[rng.IntN(32)] = float32(rng.NormFloat64() * 100)
		case 6:
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 1e-30)
			}
		case 7:
			for i := range x {
				x[i] = float32(math.Round(rng.NormFloat64() * 3))
			}
		}
		out = append(out, x)
	}
	return out
}

// TestMakeQkx2Quants4MatchesOne runs the lockstep search against the
// one-sub-block search, with the Q4_K, Q5_K and imatrix parameters.
func TestMakeQkx2Quants4MatchesOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := subBlockCases(rng, 4000)
	params := []struct {
		nmax         int
		rmin, rdelta float32
		nstep        int
	}{{15, -1, 0.1, 20}, {31, -0.5, 0.1, 15}, {15, -0.9, 0.05, 36}, {31, -0.9, 0.05, 36}, {15, -1, 0.1, 0}}
	for _, p := range params {
		for c := 0; c+4 <= len(cases); c += 4 {
			var x, w [4][]float32
			var L [4][]uint8
			for k := range 4 {
				x[k] = cases[c+k]
				w[k] = make([]float32, 32)
				for i, v := range x[k] {
					w[k][i] = float32(rng.Float64())*0.1 + abs32(v)
				}
				L[k] = make([]uint8, 32)
			}
			scale, negMin := makeQkx2Quants4(p.nmax, &x, &w, &L, p.rmin, p.rdelta, p.nstep)
			for k := range 4 {
				want := make([]uint8, 32)
				ws, wm := makeQkx2Quants(32, p.nmax, x[k], w[k], want, make([]uint8, 32), p.rmin, p.rdelta, p.nstep, false)
				if math.Float32bits(ws) != math.Float32bits(scale[k]) || math.Float32bits(wm) != math.Float32bits(negMin[k]) || string(want) != string(L[k]) {
					t.Fatalf("%+v case %d lane %d: got %v %v %v, want %v %v %v", p, c, k, scale[k], negMin[k], L[k], ws, wm, want)
				}
			}
		}
	}
}

// TestMakeQxQuants4MatchesOne runs the lockstep Q6_K search against the
// one-sub-block search, with x² weights and with importance weights.
func TestMakeQxQuants4MatchesOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var cases [][]float32
	for _, c := range subBlockCases(rng, 4000) {
		cases = append(cases, c[:16], c[16:])
	}
	for _, weighted := range []bool{false, true} {
		for c := 0; c+4 <= len(cases); c += 4 {
			var x, w [4][]float32
			var L [4][]int8
			for k := range 4 {
				x[k] = cases[c+k]
				w[k] = make([]float32, 16)
				for i := range w[k] {
					w[k][i] = float32(rng.ExpFloat64())
				}
				L[k] = make([]int8, 16)
			}
			var wp *[4][]float32
			if weighted {
				wp = &w
			}
			scale := makeQxQuants4(32, &x, &L, wp)
			for k := range 4 {
				want := make([]int8, 16)
				var qw []float32
				if weighted {
					qw = w[k]
				}
				ws := makeQxQuants(16, 32, x[k], want, 1, qw)
				if math.Float32bits(ws) != math.Float32bits(scale[k]) || string(toBytes(want)) != string(toBytes(L[k])) {
					t.Fatalf("weighted %v case %d lane %d: got %v %v, want %v %v", weighted, c, k, scale[k], L[k], ws, want)
				}
			}
		}
	}
}

func toBytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// sameFloat is bit equality, with any two NaNs equal: which NaN payload
// an operation on two NaNs returns depends on the order the compiler
// gives its operands, and no result here can depend on it (NaN terms
// make NaN sums, which lose every comparison).
func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// termPicker returns a source of test values for the term kernels: one in
// ten from special, one in ten any bit pattern, the rest normal.
func termPicker(rng *rand.Rand, special []float32) func() float32 {
	return func() float32 {
		switch rng.IntN(10) {
		case 0:
			return special[rng.IntN(len(special))]
		case 1:
			return math.Float32frombits(rng.Uint32())
		}
		return float32(rng.NormFloat64())
	}
}

// TestQkx2TermsMatchGo compares the element-wise terms in use (assembly
// where the CPU has it) with the Go ones, on ordinary values, extremes,
// infinities and NaNs: codes bit for bit (except where both factors of
// iscale·(x−m) are NaN, whose payload is the compiler's choice), the
// other terms bit for bit up to NaN payloads.
func TestQkx2TermsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 4194303, -4194304}
	pick := termPicker(rng, special)
	for c := 0; c < 20000; c++ {
		var x, w [qkx2Width]float32
		for i := range x {
			x[i], w[i] = pick(), pick()
		}
		iscale, m, scale, mn := pick(), pick(), pick(), pick()
		nmax := int32([]int{3, 15, 31}[c%3])
		var a, b [4][qkx2Width]float32
		qkx2Terms(&x, &w, &a[0], &a[1], &a[2], &a[3], iscale, m, nmax)
		qkx2TermsGo(&x, &w, &b[0], &b[1], &b[2], &b[3], iscale, m, nmax)
		for i := range x {
			d := x[i] - m
			if iscale != iscale && d != d {
				continue
			}
			if math.Float32bits(a[0][i]) != math.Float32bits(b[0][i]) {
				t.Fatalf("case %d element %d: code %v, Go %v", c, i, a[0][i], b[0][i])
			}
			for k := 1; k < 4; k++ {
				if !sameFloat(a[k][i], b[k][i]) {
					t.Fatalf("case %d element %d: term %d %v, Go %v", c, i, k, a[k][i], b[k][i])
				}
			}
		}
		var ea, eb [qkx2Width]float32
		qkx2Err(&b[0], &x, &w, &ea, scale, mn)
		qkx2ErrGo(&b[0], &x, &w, &eb, scale, mn)
		for i := range ea {
			if !sameFloat(ea[i], eb[i]) {
				t.Fatalf("case %d element %d: error %v, Go %v", c, i, ea[i], eb[i])
			}
		}
	}
}

// TestQxTermsMatchGo is TestQkx2TermsMatchGo for make_qx_quants' terms
// (whose codes only show through the terms: a NaN code product compares
// as NaN).
func TestQxTermsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 4194303, -4194304}
	pick := termPicker(rng, special)
	for c := 0; c < 20000; c++ {
		var x, w, a1, a2, b1, b2 [qxWidth]float32
		for i := range x {
			x[i], w[i] = pick(), pick()
		}
		iscale := pick()
		nmax := int32([]int{4, 8, 16, 32}[c%4])
		qxTerms(&x, &w, &a1, &a2, iscale, nmax)
		qxTermsGo(&x, &w, &b1, &b2, iscale, nmax)
		for i := range x {
			if iscale != iscale && x[i] != x[i] {
				continue // the code's NaN payload is the compiler's choice
			}
			if !sameFloat(a1[i], b1[i]) || !sameFloat(a2[i], b2[i]) {
				t.Fatalf("case %d element %d: %v %v vs %v %v", c, i, a1[i], a2[i], b1[i], b2[i])
			}
		}
	}
}
