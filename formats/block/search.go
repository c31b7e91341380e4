package block

import (
	"math"
)

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude is
// below it counts as all zero.
const groupMaxEps = float32(1e-15)

// maxAbsSigned returns the element of largest magnitude (the first one on
// ties) and that magnitude.
func maxAbsSigned(x []float32) (max, amax float32) {
	for _, v := range x {
		if ax := abs32(v); amax < ax {
			amax = ax
			max = v
		}
	}
	return max, amax
}

// maxAbs returns the largest magnitude in x, NaN if x holds a NaN (the
// builtin max, as fmaxf chains over fabsf compile in ggml's encoders).
func maxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, abs32(v))
	}
	return m
}

func abs32(f float32) float32 {
	return math.Float32frombits(math.Float32bits(f) &^ (1 << 31))
}

func sqrt32(f float32) float32 {
	// The double square root correctly rounded to float32 equals sqrtf.
	return float32(math.Sqrt(float64(f)))
}

// clampInt limits v to [lo, hi] (lo ≤ hi). The min and max builtins compile
// to conditional moves: in the scale searches the clamp's outcome depends
// on the data, and mispredicted branches cost more than the searches' own
// arithmetic.
func clampInt(v, lo, hi int32) int32 {
	return min(max(v, lo), hi)
}

// oddLevel returns the level l in [0, top] whose odd value 2l+1 is nearest
// id·v: the grid levels and the sub-block scale codes (d·(2l+1)) of the
// i-quants.
func oddLevel(id, v float32, top int32) int32 {
	return clampInt(NearestInt(0.5*(float32(id*v)-1)), 0, top)
}

// runningMax is MAX(max, v) as ggml's encoders keep their largest scale: v
// replaces max unless max is larger (so a NaN max gives way).
func runningMax(max, v float32) float32 {
	if !(max > v) {
		return v
	}
	return max
}

// subScales are the scales an i-quant encoder finds for the sub-blocks of
// one super-block, and their running maximum (over the sub-blocks that were
// not stored as zero, as ggml keeps it).
type subScales struct {
	scale [QK_K / 16]float32
	max   float32
}

// set records the scale of sub-block ib.
func (s *subScales) set(ib int, scale float32) {
	s.scale[ib] = scale
	s.max = runningMax(s.max, scale)
}

// quantize returns the super-block scale d = max/div and the code l in
// [0, top] of each of the first n sub-block scales, d·(2l+1) ≈ scale.
func (s *subScales) quantize(n int, div float32, top int32) (d float32, codes [QK_K / 16]uint8) {
	d = s.max / div
	id := 1 / d
	for ib, v := range s.scale[:n] {
		codes[ib] = uint8(oddLevel(id, v, top))
	}
	return d, codes
}

// positiveScale returns |scale| of a sub-block of the sign-folding
// i-quants: their scales are stored unsigned, so ggml's guard flips the
// stored sign bits (mask) instead of a negative scale. Not reached in
// practice, since the searches fit magnitudes.
func positiveScale(scale float32, signs []uint8, mask uint8) float32 {
	if scale < 0 {
		scale = -scale
		for k := range signs {
			signs[k] = ^signs[k] & mask
		}
	}
	return scale
}

// maxOf is the largest of x, computed as C's MAX macro chain does.
func maxOf(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		m = runningMax(m, v)
	}
	return m
}

// symmetricScale starts make_qx_quants and make_q3_quants: max is the
// element of largest magnitude and iscale = −nmax/max maps it to −nmax. ok
// is false, and L is zeroed, when every element is below groupMaxEps.
func symmetricScale(nmax int, x []float32, L []int8) (max, iscale float32, ok bool) {
	max, amax := maxAbsSigned(x)
	if amax < groupMaxEps {
		clear(L)
		return 0, 0, false
	}
	return max, float32(-nmax) / max, true
}

// makeQxQuants finds a symmetric scale for n values quantized to
// [-nmax, nmax-1] (stored offset by nmax in L), as ggml's make_qx_quants.
// rmseType selects the error weights when qw is nil: 1 x², 2 one, 3 |x|,
// otherwise √|x|; a negative rmseType returns after the first estimate.
func makeQxQuants(n, nmax int, x []float32, L []int8, rmseType int, qw []float32) float32 {
	x, L = x[:n], L[:n]
	max, iscale, ok := symmetricScale(nmax, x, L)
	if !ok {
		return 0
	}
	nm := int32(nmax)
	if rmseType == 0 {
		for i, v := range x {
			l := NearestInt(iscale * v)
			L[i] = int8(nm + clampInt(l, -nm, nm-1))
		}
		return 1 / iscale
	}
	returnEarly := false
	if rmseType < 0 {
		rmseType = -rmseType
		returnEarly = true
	}
	var wbuf [32]float32
	wts := scratch(wbuf[:], n)
	for i, v := range x {
		switch {
		case qw != nil:
			wts[i] = qw[i]
		case rmseType == 1:
			wts[i] = v * v
		case rmseType == 2:
			wts[i] = 1
		case rmseType == 3:
			wts[i] = abs32(v)
		default:
			wts[i] = sqrt32(abs32(v))
		}
	}
	sumlx, suml2 := levelSums(x, wts, L, iscale, -nm, nm-1, nm)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	if returnEarly {
		if suml2 > 0 {
			return 0.5 * (scale + 1/iscale)
		}
		return 1 / iscale
	}
	best := scale * sumlx
	var lbuf [32]int8
	Laux := scratch(lbuf[:], n)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(float32(0.1)*float32(is))) / max
		sumlx, suml2 = levelSums(x, wts, Laux, iscale, -nm, nm-1, nm)
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			copy(L, Laux)
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// scratch returns the first n elements of buf, or a new slice when buf is
// shorter.
func scratch[T any](buf []T, n int) []T {
	if n <= len(buf) {
		return buf[:n]
	}
	return make([]T, n)
}

// levelSums quantizes x at the inverse scale iscale to the levels l,
// nearest_int(iscale·x) clamped to [lo, hi], stores l+offset in L, and
// returns the sums Σw·x·l and Σw·l² of the least-squares fit of the
// make_*_quants searches.
func levelSums[T int8 | uint8](x, w []float32, L []T, iscale float32, lo, hi, offset int32) (sumlx, suml2 float32) {
	for i, v := range x {
		l := clampInt(NearestInt(iscale*v), lo, hi)
		L[i] = T(l + offset)
		wi, fl := w[i], float32(l)
		sumlx += float32(wi * v * fl)
		suml2 += float32(wi * fl * fl)
	}
	return sumlx, suml2
}

// refineLevels is the coordinate descent that ends make_q3_quants and
// make_qp_quants: up to five sweeps move each level l of L (in [lo, hi],
// against the sums Σw·x·l and Σw·l²) to the one that fits x best with the
// others fixed, keeping a move that improves the fit (Σw·x·l)²/Σw·l². It
// returns the final sums. qp selects make_qp_quants' guard, which requires
// the reduced Σw·l² to be positive before it tries a move; make_q3_quants
// checks the new one after.
func refineLevels[T int8 | uint8](x, w []float32, L []T, lo, hi int32, sumlx, suml2 float32, qp bool) (float32, float32) {
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			wi, li := w[i], float32(L[i])
			slx := sumlx - float32(wi*v*li)
			sl2 := suml2 - float32(wi*li*li)
			if !(slx > 0) || qp && !(sl2 > 0) {
				continue
			}
			newL := clampInt(NearestInt(v*sl2/slx), lo, hi)
			if newL == int32(L[i]) {
				continue
			}
			fn := float32(newL)
			slx += float32(wi * v * fn)
			sl2 += float32(wi * fn * fn)
			if (qp || sl2 > 0) && slx*slx*suml2 > sumlx*sumlx*sl2 {
				L[i] = T(newL)
				sumlx, suml2 = slx, sl2
				changed++
			}
		}
		if changed == 0 {
			break
		}
	}
	return sumlx, suml2
}

// makeQ3Quants is ggml's make_q3_quants: a symmetric scale for values in
// [-nmax, nmax-1], refined by coordinate descent on x²-weighted error.
func makeQ3Quants(n, nmax int, x []float32, L []int8, doRMSE bool) float32 {
	x, L = x[:n], L[:n]
	_, iscale, ok := symmetricScale(nmax, x, L)
	if !ok {
		return 0
	}
	nm := int32(nmax)
	if doRMSE {
		var wbuf [32]float32
		wts := scratch(wbuf[:], n)
		for i, v := range x {
			wts[i] = v * v
		}
		sumlx, suml2 := levelSums(x, wts, L, iscale, -nm, nm-1, 0)
		sumlx, suml2 = refineLevels(x, wts, L, -nm, nm-1, sumlx, suml2, false)
		for i := range L {
			L[i] += int8(nmax)
		}
		return sumlx / suml2
	}
	for i, v := range x {
		l := clampInt(NearestInt(iscale*v), -nm, nm-1)
		L[i] = int8(l + nm)
	}
	return 1 / iscale
}

// makeQkx2Quants is ggml's make_qkx2_quants: an affine scale and min for
// values quantized to [0, nmax], searched over nstep+1 candidate scales and
// refined by weighted least squares. It returns the scale and the negated
// min (the value stored by the K-quants).
func makeQkx2Quants(n, nmax int, x, weights []float32, L, Laux []uint8,
	rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	x = x[:n]
	weights = weights[:n]
	L = L[:n]
	Laux = Laux[:n]
	min, max, sumW, sumX := qkx2Start(x, weights)
	if max == min {
		for i := range L {
			L[i] = 0
		}
		return 0, -min
	}
	nm := int32(nmax)
	iscale := float32(nmax) / (max - min)
	scale = 1 / iscale
	for i, v := range x {
		l := NearestInt(iscale * (v - min))
		L[i] = uint8(clampInt(l, 0, nm))
	}
	bestMAD := qkx2Error(x, weights, L, scale, min, useMAD)
	if nstep < 1 {
		return scale, -min
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + float32(nmax)) / (max - min)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(NearestInt(iscale*(v-min)), 0, nm)
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(w * fl * fl)
			sumXL += float32(w * fl * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			if mad := qkx2Error(x, weights, Laux, thisScale, thisMin, useMAD); mad < bestMAD {
				copy(L, Laux)
				bestMAD = mad
				scale = thisScale
				min = thisMin
			}
		}
	}
	return scale, -min
}

// qkx2Start returns what make_qkx2_quants starts from: the min of x
// (raised to 0 when positive), its max, and the sums Σw and Σw·x.
func qkx2Start(x, w []float32) (min, max, sumW, sumX float32) {
	min, max = x[0], x[0]
	sumW = w[0]
	sumX = sumW * x[0]
	for i := 1; i < len(x); i++ {
		if x[i] < min {
			min = x[i]
		}
		if x[i] > max {
			max = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if min > 0 {
		min = 0
	}
	return min, max, sumW, sumX
}

// qkx2Error is make_qkx2_quants' error of the fit scale·L + min to x under
// the weights w: Σw·|diff| with useMAD, else Σw·diff².
func qkx2Error(x, w []float32, L []uint8, scale, min float32, useMAD bool) float32 {
	var e float32
	for i, v := range x {
		diff := float32(scale*float32(L[i])) + min - v
		if useMAD {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		e += float32(w[i] * diff)
	}
	return e
}

// makeQkx3Quants is ggml's make_qkx3_quants, the importance-weighted
// variant of makeQkx2Quants (weights nil means x²).
func makeQkx3Quants(n, nmax int, x, weights []float32, L, Laux []uint8,
	rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	x = x[:n]
	L = L[:n]
	Laux = Laux[:n]
	var wbuf [32]float32
	wts := weights
	if wts == nil {
		if n <= len(wbuf) {
			wts = wbuf[:n]
		} else {
			wts = make([]float32, n)
		}
		for i, v := range x {
			wts[i] = v * v
		}
	}
	// With the weights in hand the search is make_qkx2_quants' own: the only
	// textual difference in ggml (max <= min against max == min) cannot
	// matter, since min is clamped to at most 0 and never exceeds max.
	return makeQkx2Quants(n, nmax, x, wts, L, Laux, rmin, rdelta, nstep, useMAD)
}

// makeQpQuants is ggml's make_qp_quants: a scale for non-negative values
// (sub-block scales and mins) quantized to [0, nmax] under weights qw.
func makeQpQuants(n, nmax int, x []float32, L []uint8, qw []float32) float32 {
	x = x[:n]
	L = L[:n]
	var max float32
	for _, v := range x {
		if v > max { // MAX(max, x) keeps max unless x is larger
			max = v
		}
	}
	if max == 0 {
		for i := range L {
			L[i] = 0
		}
		return 0
	}
	nm := int32(nmax)
	iscale := float32(nmax) / max
	for i, v := range x {
		L[i] = uint8(NearestInt(iscale * v))
	}
	scale := 1 / iscale
	var bestMSE float32
	for i, v := range x {
		diff := v - float32(scale*float32(L[i]))
		bestMSE += float32(qw[i] * diff * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := (float32(float32(0.1)*float32(is)) + float32(nmax)) / max
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			l := NearestInt(iscaleIs * v)
			if l > nm {
				l = nm
			}
			diff := v - float32(scaleIs*float32(l))
			mse += float32(qw[i] * diff * diff)
		}
		if mse < bestMSE {
			bestMSE = mse
			iscale = iscaleIs
		}
	}
	sumlx, suml2 := levelSums(x, qw, L, iscale, math.MinInt32, nm, 0)
	sumlx, suml2 = refineLevels(x, qw, L, math.MinInt32, nm, sumlx, suml2, true)
	return sumlx / suml2
}

// rowSigma2 is the mean square of a row (the legacy formats' sigma²).
func rowSigma2(x []float32) float32 {
	return sumSquares(x) / float32(len(x))
}

// sumSquares is Σx² in element order.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// sumOf is Σx in element order.
func sumOf(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

func importanceWeights(dst, qw, x []float32, sigma2 float32) {
	for j, v := range x {
		dst[j] = qw[j] * sqrt32(sigma2+float32(v*v))
	}
}
