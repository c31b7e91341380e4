package kernels

import "math"

// The attention kernels: the exponentials of a softmax and the weighted sum
// of F16 cached values. Each is the loop its caller used to run one call at
// a time (expNonPositive per score, AxpyF16 per key), with the same bits in
// every kernel set that has it.

var (
	expShiftedImpl     = expShiftedGo
	weightedSumF16Impl = weightedSumF16Go
)

// ExpShifted replaces each x[i] with e^(x[i] − shift), for a shift no smaller
// than any x[i] (a softmax's maximum): 0 below e^−87.3, NaN stays NaN,
// within 2 ulp of e^x elsewhere.
func ExpShifted(x []float32, shift float32) { expShiftedImpl(x, shift) }

func expShiftedGo(x []float32, shift float32) {
	for i, v := range x {
		x[i] = expNonPositive(v - shift)
	}
}

// expNonPositive is e^x for x ≤ 0 in float32 (within 2 ulp), much cheaper
// than math.Exp in float64: softmax over long contexts spends its time here.
// It reduces x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts so r is
// exact), evaluates Cephes' expf polynomial for e^r and scales by 2^n. The
// assembly repeats these steps lane by lane; Go does not fuse them on amd64.
func expNonPositive(x float32) float32 {
	if !(x >= -87.3) { // also -Inf and NaN
		if x != x {
			return x
		}
		return 0
	}
	n := float32(math.RoundToEven(float64(x * 1.44269504088896341)))
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// WeightedSumF16 sets out to Σ_j w[j]·v_j, where v holds len(w) rows of
// len(out) halves (attention's values, weighted by the softmax): the keys in
// order, each step out[e] += w[j]·v_j[e] as AxpyF16 does.
func WeightedSumF16(out, w []float32, v []byte) {
	v = v[:2*len(w)*len(out)]
	weightedSumF16Impl(out, w, v)
}

func weightedSumF16Go(out, w []float32, v []byte) {
	clear(out)
	rb := 2 * len(out)
	for j, p := range w {
		axpyF16Impl(out, p, v[j*rb:(j+1)*rb])
	}
}
