package block

import (
	"encoding/binary"
	"math"
	"slices"
)

// The 1-bit i-quants: every group of eight weights is a point of a fixed
// 2048-point grid (IQ1SGrid, values in {-1, 0, 1}) shifted by ±δ (δ = 1/8),
// times a sub-block scale. A group's point is an 11-bit grid index: the low
// 8 bits in qs, the high 3 bits in qh. The activation format is Q8_K. All
// fields are little-endian.
//
//	IQ1_S (50 bytes): d | qs[32] | qh[8] (u16)
//	    8 sub-blocks of 32 (four groups each): group l of sub-block j
//	    has index qs[4j+l] | (qh[j] >> 3l & 7) << 8; qh[j] bits 12-14 are
//	    the 3-bit scale s (the sub-block scale is d·(2s+1)) and bit 15
//	    the sign of the sub-block's shift (set: −δ);
//	    w = d·(2s+1)·(grid + shift)
//	IQ1_M (56 bytes): qs[32] | qh[16] | scales[8]
//	    16 sub-blocks of 16 (two groups each): group k of sub-block j has
//	    index qs[2j+k] | (qh[j] >> 4k & 7) << 8, and its own shift sign
//	    in bit 4k+3 of qh[j]; scales, read as four u16 words, hold the
//	    3-bit scale of sub-block j in bits 3(j%4).. of word j/4, and the
//	    fp16 super-block scale d in their top nibbles (word i's bits
//	    12-15 are d's bits 4i..4i+3); w = d·(2s+1)·(grid + shift)
const (
	IQ1_SBytes = 2 + QK_K/8 + QK_K/16
	IQ1_MBytes = QK_K/8 + QK_K/16 + QK_K/32
)

// iq1Delta is the shift of the grid values (ggml's IQ1S_DELTA and
// IQ1M_DELTA, both 0.125).
const iq1Delta = float32(0.125)

// Below these magnitudes a sub-block is stored as zero (ggml's
// GROUP_MAX_EPS_IQ1_S and GROUP_MAX_EPS_IQ1_M).
const (
	groupMaxEpsIQ1S = float32(1e-12)
	groupMaxEpsIQ1M = float32(1e-7)
)

// The three values of a level l in {0, 1, 2} (grid value l−1) under a
// positive and a negative shift.
var (
	iq1Plus  = [3]float32{-1 + iq1Delta, iq1Delta, 1 + iq1Delta}
	iq1Minus = [3]float32{-1 - iq1Delta, -iq1Delta, 1 - iq1Delta}
)

// fltMin is C's FLT_MIN, the smallest normal float32: the searches start
// from a best score of −FLT_MIN, so that any split with weight wins first.
var fltMin = math.Float32frombits(0x00800000)

// iq1SPoint returns the 8 signed values of grid point i.
func iq1SPoint(i int) (g [8]int8) {
	v := IQ1SGrid[i&2047]
	for j := range g {
		g[j] = int8(v >> (8 * j))
	}
	return g
}

// iq1SortedOrder writes into order the indices of xb sorted by value,
// equal values in index order: the order the C qsort (glibc's merge sort,
// which is stable) leaves the (value, index) pairs in.
func iq1SortedOrder(order []int, xb []float32) {
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case xb[a] < xb[b]:
			return -1
		case xb[a] > xb[b]:
			return 1
		}
		return 0
	})
}

// iq1SplitLevels sets the levels of xb from the best split the search
// found in the sorted order (the first i1 elements level 0, the next up to
// i2 level 1, the rest 2), for the fitted scale. A negative scale is made
// positive by mirroring the levels (l → 2−l), which the caller undoes in
// the shift; mirrored says so. ok is false when the search found no split
// with weight (i1 < 0: all weights zero, where ggml aborts).
func iq1SplitLevels(L []int8, order []int, i1, i2 int, scale float32) (absScale float32, mirrored, ok bool) {
	if i1 < 0 {
		return 0, false, false
	}
	for j, i := range order {
		switch {
		case j < i1:
			L[i] = 0
		case j < i2:
			L[i] = 1
		default:
			L[i] = 2
		}
	}
	if !(scale < 0) { // a NaN scale stays as it is
		return scale, false, true
	}
	for j := range L {
		L[j] = 2 - L[j]
	}
	return -scale, true, true
}

// iq1BestNeighbour returns, among the grid points near the off-grid key u,
// the one whose values xx[l] scaled by scale are nearest xval in the error
// Σ weight·(scale·xx[l] − xval)², the first on ties, and writes its levels
// to L[:8] (ggml's iq1_find_best_neighbour2).
func iq1BestNeighbour(g *IQGrid, u uint16, xval, weight []float32, scale float32, xx *[3]float32, L []int8) int {
	score := func(p [8]int8) float32 {
		var d2 float32
		for i := range 8 {
			diff := float32(scale*xx[(p[i]-1)/2]) - xval[i]
			d2 += float32(float32(weight[i]*diff) * diff)
		}
		return d2
	}
	best, index := float32(math.MaxFloat32), -1
	for _, j := range g.Neighbours(u) {
		if d2 := score(g.Point(int(j))); d2 < best {
			best, index = d2, int(j)
		}
	}
	if index < 0 {
		// Every neighbour scored NaN or ≥ FLT_MAX: ggml then scans the
		// whole grid (reading the values at the wrong offsets, past
		// xval); this scans it as intended.
		for j := 0; j < g.Len(); j++ {
			if d2 := score(g.Point(j)); d2 < best {
				best, index = d2, j
			}
		}
		if index < 0 { // every point scored NaN
			index = int(g.Neighbours(u)[0])
		}
	}
	for i, v := range g.Point(index) {
		L[i] = (v - 1) / 2
	}
	return index
}

// iq1Groups finds the grid index of each group of eight levels of L
// (replacing the levels of an off-grid group with its best neighbour's),
// where xxOf(k) is the shifted level table of group k. When a group was
// off the grid it refits the scale to the chosen points, keeping the old
// one unless the fit is positive. It returns the (possibly refitted)
// scale.
func iq1Groups(g *IQGrid, index []uint16, L []int8, xb, weight []float32, scale float32, xxOf func(k int) *[3]float32) float32 {
	onGrid := true
	for k := range index {
		u := IQGridKey(L[8*k:])
		i := g.Index(u)
		if i < 0 {
			onGrid = false
			i = iq1BestNeighbour(g, u, xb[8*k:8*k+8], weight[8*k:8*k+8], scale, xxOf(k), L[8*k:8*k+8])
		}
		index[k] = uint16(i)
	}
	if onGrid {
		return scale
	}
	var sumqx, sumq2 float32
	for k, i := range index {
		xx, p := xxOf(k), g.Point(int(i))
		for j := range 8 {
			w, q := weight[8*k+j], xx[(p[j]-1)/2]
			sumqx += float32(float32(w*q) * xb[8*k+j])
			sumq2 += float32(float32(w*q) * q)
		}
	}
	if sumqx > 0 && sumq2 > 0 {
		scale = sumqx / sumq2
	}
	return scale
}

// EncodeIQ1_S encodes x (a whole number of blocks) into y as ggml's
// quantize_iq1_s does, weighting each element by qw (the importance
// matrix, one weight per element). ggml requires the weights (llama-quantize
// refuses IQ1_S without an importance matrix); with qw nil every element
// weighs 1 here.
func EncodeIQ1_S(y []byte, x []float32, qw []float32) {
	const bs = 32
	var (
		shifts     [QK_K / bs]int8 // ±1; a zero sub-block keeps its slot's old shift (see EncodeIQ1_M)
		weight     [bs]float32
		sumx, sumw [bs + 1]float32
		order      [bs]int
		L          [bs]int8
		index      [bs / 8]uint16
		g          = IQ1GridIndex()
		ones       [QK_K]float32
	)
	if qw == nil {
		for i := range ones {
			ones[i] = 1
		}
	}
	eachSuperBlock(y, x, qw, IQ1_SBytes, func(b []byte, xbl, qwl []float32) {
		clear(b)
		if qwl == nil {
			qwl = ones[:]
		}
		sigma2 := superSigma2(xbl)
		var scales subScales
		for ib := 0; ib < QK_K/bs; ib++ {
			xb := xbl[bs*ib : bs*(ib+1)]
			importanceWeights(weight[:], qwl[bs*ib:], xb, sigma2)
			amax := maxAbs(xb)
			if amax < groupMaxEpsIQ1S {
				scales.scale[ib] = 0
				continue
			}
			iq1SortedOrder(order[:], xb)
			for j, i := range order {
				sumx[j+1] = sumx[j] + float32(weight[i]*xb[i])
				sumw[j+1] = sumw[j] + weight[i]
			}
			// Exhaustive search of the two split points, for both shifts.
			bestScore, scale := -fltMin, amax
			besti1, besti2, bestShift := -1, -1, int8(0)
			for i1 := 0; i1 <= bs; i1++ {
				for i2 := i1; i2 <= bs; i2++ {
					for _, c := range [2]struct {
						xx    *[3]float32
						shift int8
					}{{&iq1Plus, 1}, {&iq1Minus, -1}} {
						xx := c.xx
						sumqx := float32(float32((sumx[i1]-sumx[0])*xx[0])+float32((sumx[i2]-sumx[i1])*xx[1])) + float32((sumx[bs]-sumx[i2])*xx[2])
						sumq2 := float32(float32(float32((sumw[i1]-sumw[0])*xx[0])*xx[0])+float32(float32((sumw[i2]-sumw[i1])*xx[1])*xx[1])) + float32(float32((sumw[bs]-sumw[i2])*xx[2])*xx[2])
						if sumq2 > 0 && float32(sumqx*sumqx) > float32(bestScore*sumq2) {
							scale = sumqx / sumq2
							bestScore = scale * sumqx
							besti1, besti2, bestShift = i1, i2, c.shift
						}
					}
				}
			}
			scale, mirrored, ok := iq1SplitLevels(L[:], order[:], besti1, besti2, scale)
			if !ok {
				scales.scale[ib] = 0 // stored as zero
				continue
			}
			if mirrored {
				bestShift = -bestShift
			}
			xx := &iq1Plus
			if bestShift != 1 {
				xx = &iq1Minus
			}
			scale = iq1Groups(g, index[:], L[:], xb, weight[:], scale, func(int) *[3]float32 { return xx })
			var h uint16
			for k, i := range index {
				b[2+4*ib+k] = byte(i)
				h |= (i >> 8) << (3 * k)
			}
			binary.LittleEndian.PutUint16(b[34+2*ib:], h)
			scales.set(ib, scale)
			shifts[ib] = bestShift
		}
		if scales.max == 0 {
			return
		}
		d, codes := scales.quantize(QK_K/bs, 15, 7)
		StoreF16(b, d*1.125) // 1.125: ggml's fudge factor
		for ib := 0; ib < QK_K/bs; ib++ {
			l := uint16(codes[ib])
			if shifts[ib] == -1 {
				l |= 8
			}
			h := binary.LittleEndian.Uint16(b[34+2*ib:])
			binary.LittleEndian.PutUint16(b[34+2*ib:], h|l<<12)
		}
	})
}

// DecodeIQ1_S decodes the whole IQ1_S blocks of x into y (ggml's
// dequantize_row_iq1_s).
func DecodeIQ1_S(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*IQ1_SBytes : (i+1)*IQ1_SBytes]
		d := LoadF16(b)
		out := y[i*QK_K : (i+1)*QK_K]
		for ib := 0; ib < 8; ib++ {
			qh := binary.LittleEndian.Uint16(b[34+2*ib:])
			dl := d * float32(2*(qh>>12&7)+1)
			delta := iq1Delta
			if qh&0x8000 != 0 {
				delta = -iq1Delta
			}
			for l := 0; l < 4; l++ {
				g := iq1SPoint(int(b[2+4*ib+l]) | int(qh>>(3*l)&7)<<8)
				for j, v := range g {
					out[32*ib+8*l+j] = dl * (float32(v) + delta)
				}
			}
		}
	}
}

// iq1MShiftTable returns the level table of group k (0 or 1) of an IQ1_M
// sub-block whose shift pattern is shift: bit 1 set gives group 0 the
// negative shift, bit 0 group 1 (ggml's best_k: 0 ++, 1 +−, 2 −+, 3 −−).
func iq1MShiftTable(shift int8, k int) *[3]float32 {
	if k == 0 && shift >= 2 || k == 1 && shift%2 == 1 {
		return &iq1Minus
	}
	return &iq1Plus
}

// iq1MMasks are the qh bits of the IQ1_M shift patterns (bit 3: group 0
// negative, bit 7: group 1).
var iq1MMasks = [4]byte{0x00, 0x80, 0x08, 0x88}

// iq1MScale returns the fp16 bits of an IQ1_M block's super-block scale,
// spread over the top nibbles of its four scale words.
func iq1MScale(sc []byte) uint16 {
	w := func(i int) uint16 { return binary.LittleEndian.Uint16(sc[2*i:]) }
	return w(0)>>12 | w(1)>>8&0x00f0 | w(2)>>4&0x0f00 | w(3)&0xf000
}

// IQ1MScaleBits returns the fp16 bits of the super-block scale of the IQ1_M
// block b (for validating encoded rows).
func IQ1MScaleBits(b []byte) uint16 { return iq1MScale(b[48:56]) }

// EncodeIQ1_M encodes x (a whole number of blocks) into y as ggml's
// quantize_iq1_m does: weighting each element by qw (the importance
// matrix, one weight per element) or, with qw nil, by x².
func EncodeIQ1_M(y []byte, x []float32, qw []float32) {
	const bs = 16
	var (
		// shifts[ib] is the shift pattern of sub-block ib (0-3). A
		// sub-block stored as zero keeps the pattern its slot held before
		// (as in ggml, where the array also carries over from the previous
		// rows of a call and starts uninitialized; here each row starts
		// from 0, which ggml's bytes then match only when no stale slot is
		// read).
		shifts [QK_K / bs]int8
		weight [bs]float32
		order  [bs]int
		L      [bs]int8
		index  [bs / 8]uint16
		g      = IQ1GridIndex()
	)
	blockWeights := func(xb []float32, qwb []float32, sigma2 float32) {
		if qwb != nil {
			importanceWeights(weight[:], qwb, xb, sigma2)
			return
		}
		for i, v := range xb {
			weight[i] = v * v
		}
	}
	eachSuperBlock(y, x, qw, IQ1_MBytes, func(b []byte, xbl, qwl []float32) {
		clear(b)
		qs, qh, sc := b[0:32], b[32:48], b[48:56]
		sub := func(ib int) []float32 {
			if qwl == nil {
				return nil
			}
			return qwl[bs*ib : bs*(ib+1)]
		}
		sigma2 := superSigma2(xbl)
		var scales subScales
		for ib := 0; ib < QK_K/bs; ib++ {
			xb := xbl[bs*ib : bs*(ib+1)]
			blockWeights(xb, sub(ib), sigma2)
			amax := maxAbs(xb)
			if amax < groupMaxEpsIQ1M {
				scales.scale[ib] = 0
				continue
			}
			iq1SortedOrder(order[:], xb)
			// Exhaustive search of the two split points, for the four
			// shift patterns k. ggml sums each candidate's terms afresh in
			// the sorted order (levels 0, then 1, then 2); the terms are
			// tabulated once, and the partial sums over the level-0 and
			// level-1 runs carried from one candidate to the next, which
			// adds the same terms in the same order.
			var tx, tq [bs][3][4]float32 // term of sorted element j at level lv, pattern k
			for j, i := range order {
				w, v := weight[i], xb[i]
				for k := range 4 {
					xx := iq1MShiftTable(int8(k), i/8)
					for lv, q := range xx {
						tx[j][lv][k] = float32(float32(w*q) * v)
						tq[j][lv][k] = float32(float32(w*q) * q)
					}
				}
			}
			bestScore, scale := -fltMin, amax
			besti1, besti2, bestK := -1, -1, int8(-1)
			var low0x, low0q [4]float32 // Σ over j < i1 at level 0
			for i1 := 0; i1 <= bs; i1++ {
				if i1 > 0 {
					for k := range 4 {
						low0x[k] += tx[i1-1][0][k]
						low0q[k] += tq[i1-1][0][k]
					}
				}
				low1x, low1q := low0x, low0q // and i1 ≤ j < i2 at level 1
				for i2 := i1; i2 <= bs; i2++ {
					if i2 > i1 {
						for k := range 4 {
							low1x[k] += tx[i2-1][1][k]
							low1q[k] += tq[i2-1][1][k]
						}
					}
					sumqx, sumq2 := low1x, low1q
					for j := i2; j < bs; j++ {
						for k := range 4 {
							sumqx[k] += tx[j][2][k]
							sumq2[k] += tq[j][2][k]
						}
					}
					for k := range 4 {
						if sumq2[k] > 0 && float32(sumqx[k]*sumqx[k]) > float32(bestScore*sumq2[k]) {
							scale = sumqx[k] / sumq2[k]
							bestScore = scale * sumqx[k]
							besti1, besti2, bestK = i1, i2, int8(k)
						}
					}
				}
			}
			scale, mirrored, ok := iq1SplitLevels(L[:], order[:], besti1, besti2, scale)
			if !ok {
				scales.scale[ib] = 0 // stored as zero
				continue
			}
			if mirrored {
				bestK = 3 - bestK // both groups' shifts flip
			}
			shift := bestK
			scale = iq1Groups(g, index[:], L[:], xb, weight[:], scale, func(k int) *[3]float32 { return iq1MShiftTable(shift, k) })
			qs[2*ib], qs[2*ib+1] = byte(index[0]), byte(index[1])
			qh[ib] = byte(index[0]>>8) | byte(index[1]>>8)<<4
			scales.set(ib, scale)
			shifts[ib] = bestK
		}
		if scales.max == 0 {
			return
		}
		d, codes := scales.quantize(QK_K/bs, 15, 7)
		var sumqx, sumq2 float32
		var words [4]uint16
		for ib := 0; ib < QK_K/bs; ib++ {
			l := codes[ib]
			words[ib/4] |= uint16(l) << (3 * (ib % 4))
			qh[ib] |= iq1MMasks[shifts[ib]&3]
			xb := xbl[bs*ib : bs*(ib+1)]
			blockWeights(xb, sub(ib), sigma2)
			for k := 0; k < 2; k++ {
				xx := iq1MShiftTable(shifts[ib], k)
				p := g.Point(int(qs[2*ib+k]) | int(qh[ib])<<(8-4*k)&0x700)
				for j := range 8 {
					w := weight[8*k+j]
					q := float32(xx[(p[j]-1)/2] * float32(2*l+1))
					sumqx += float32(float32(w*q) * xb[8*k+j])
					sumq2 += float32(float32(w*q) * q)
				}
			}
		}
		if sumq2 > 0 {
			d = sumqx / sumq2
		}
		s := FloatToHalf(d * 1.1125) // 1.1125: ggml's fudge factor
		words[0] |= s & 0x000f << 12
		words[1] |= s & 0x00f0 << 8
		words[2] |= s & 0x0f00 << 4
		words[3] |= s & 0xf000
		for i, w := range words {
			binary.LittleEndian.PutUint16(sc[2*i:], w)
		}
	})
}

// DecodeIQ1_M decodes the whole IQ1_M blocks of x into y (ggml's
// dequantize_row_iq1_m).
func DecodeIQ1_M(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*IQ1_MBytes : (i+1)*IQ1_MBytes]
		qs, qh, sc := b[0:32], b[32:48], b[48:56]
		d := HalfToFloat(iq1MScale(sc))
		out := y[i*QK_K : (i+1)*QK_K]
		for ib := 0; ib < 16; ib++ { // sub-blocks of 16
			word := binary.LittleEndian.Uint16(sc[2*(ib/4):])
			dl := d * float32(2*(word>>(3*(ib%4))&7)+1)
			for k := 0; k < 2; k++ {
				delta := iq1Delta
				if qh[ib]&(0x08<<(4*k)) != 0 {
					delta = -iq1Delta
				}
				g := iq1SPoint(int(qs[2*ib+k]) | int(qh[ib])<<(8-4*k)&0x700)
				for j, v := range g {
					out[16*ib+8*k+j] = dl * (float32(v) + delta)
				}
			}
		}
	}
}

// The reference dot products of the 1-bit rows with Q8_K activations, as
// ggml-cpu's generic vec_dot functions compute them: per block, the exact
// integer sums of the grid values and of the shifts (from the activation
// sums) with the sub-block scales, then d·dy·(Σ + δ·Σshift).

// DotIQ1_SQ8_K returns the dot product of n elements of an IQ1_S row w with
// a Q8_K activation row a.
func DotIQ1_SQ8_K(w, a []byte, n int) float32 {
	return dotQ8KBlocks(w, a, n, IQ1_SBytes, func(b, q8, bsums []byte) (float32, float32) {
		sumi, sumi1 := 0, 0
		for ib := 0; ib < 8; ib++ {
			qh := binary.LittleEndian.Uint16(b[34+2*ib:])
			ls := int(2*(qh>>12&7) + 1)
			delta := 1
			if qh&0x8000 != 0 {
				delta = -1
			}
			lsum := 0
			for l := 0; l < 4; l++ {
				g := iq1SPoint(int(b[2+4*ib+l]) | int(qh>>(3*l)&7)<<8)
				for j, v := range g {
					lsum += int(v) * i8(q8[32*ib+8*l+j])
				}
			}
			sumi += ls * lsum
			sumi1 += ls * delta * (bsumAt(bsums, 2*ib) + bsumAt(bsums, 2*ib+1))
		}
		return LoadF16(b), iq1BlockSum(sumi, sumi1)
	})
}

// iq1BlockSum is a block's Σ grid·q8 plus δ times its Σ shift·q8, each
// over the sub-block scales, in ggml's float32 order.
func iq1BlockSum(grid, shift int) float32 {
	return float32(float32(grid) + float32(iq1Delta*float32(shift)))
}

// DotIQ1_MQ8_K returns the dot product of n elements of an IQ1_M row w with
// a Q8_K activation row a.
func DotIQ1_MQ8_K(w, a []byte, n int) float32 {
	return dotQ8KBlocks(w, a, n, IQ1_MBytes, func(b, q8, _ []byte) (float32, float32) {
		qs, qh, sc := b[0:32], b[32:48], b[48:56]
		sumi1, sumi2 := 0, 0
		for ib := 0; ib < 16; ib++ {
			word := binary.LittleEndian.Uint16(sc[2*(ib/4):])
			ls := int(2*(word>>(3*(ib%4))&7) + 1)
			for k := 0; k < 2; k++ {
				delta := 1
				if qh[ib]&(0x08<<(4*k)) != 0 {
					delta = -1
				}
				g := iq1SPoint(int(qs[2*ib+k]) | int(qh[ib])<<(8-4*k)&0x700)
				lsum1, lsum2 := 0, 0
				for j, v := range g {
					y := i8(q8[16*ib+8*k+j])
					lsum1 += int(v) * y
					lsum2 += y
				}
				sumi1 += ls * lsum1
				sumi2 += ls * lsum2 * delta
			}
		}
		return HalfToFloat(iq1MScale(sc)), iq1BlockSum(sumi1, sumi2)
	})
}
