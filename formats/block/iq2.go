package block

import (
	"encoding/binary"
)

// The 2-bit grid formats: 256-element super-blocks whose groups of eight
// elements each store the index of a point of a fixed grid (eight unsigned
// byte magnitudes, see IQ2XXSGrid, IQ2XSGrid, IQ2SGrid) and the signs of
// the eight elements; a 4-bit scale s per sub-block gives
// w = d·(0.5+s)·0.25·grid[j]·(−1 if sign bit j). All fields are
// little-endian; the activation format of the dots is Q8_K.
//
//	IQ2_XXS (66 bytes): d | qs[32] u16
//	    8 sub-blocks of 32, 8 bytes each read as two u32 a0, a1: byte l
//	    of a0 is group l's index into IQ2XXSGrid; bits 7l..7l+6 of a1
//	    are its signs (KSignsIQ2XS, an even number of minus signs), bits
//	    28-31 the scale
//	IQ2_XS (74 bytes): d | qs[32] u16 | scales[8]
//	    one u16 per group: bits 0-8 the index into IQ2XSGrid, bits 9-15
//	    the signs (KSignsIQ2XS); sub-blocks of 16, scales byte j holding
//	    sub-block 2j in its low and 2j+1 in its high nibble
//	IQ2_S (82 bytes): d | qs[64] | qh[8] | scales[8]
//	    group g (of 32) has index qs[g] | ((qh[g/4] >> 2(g%4)) & 3) << 8
//	    into IQ2SGrid and all eight sign bits in qs[32+g]; scales as
//	    IQ2_XS's
const (
	IQ2_XXSBytes = 2 + QK_K/4
	IQ2_XSBytes  = 2 + QK_K/4 + QK_K/32
	IQ2_SBytes   = 2 + QK_K/4 + QK_K/32 + QK_K/32
)

// IQ2_XXS and IQ2_XS need importance weights: llama-quantize refuses them
// without an imatrix, and ggml's encoders assert on a missing one. IQ2_S
// has an unweighted encoder (quantize_row_iq2_s_ref).
//
// The encoders follow ggml's quantize_row_iq2_{xxs,xs,s}_impl. For each
// sub-block they fold the signs out (IQ2_XXS and IQ2_XS flip the sign of
// the group element of least weighted square to keep an even number of
// minus signs, since they store seven sign bits), then try a range of
// scales: each maps the magnitudes to levels l in {0, 1, 2} (values 2l+1),
// a group whose levels are not a grid point takes the neighbour of least
// weighted error, and the scale with the best weighted fit wins. The
// sub-block scales are finally quantized to 4 bits against d = max/31.

// iq2MaxQ is ggml's kMaxQ: levels run from 0 to iq2MaxQ−1.
const iq2MaxQ = 3

// groupMaxEpsIQ2S is ggml's GROUP_MAX_EPS_IQ2_S.
const groupMaxEpsIQ2S = float32(1e-8)

// iq2Encoder holds one row's encoding state. The levels L of the last
// accepted sub-block carry over to the next one, as the C arrays do: a
// sub-block whose search accepts no scale (all weights zero) reuses them.
type iq2Encoder struct {
	grid   *IQGrid
	weight [32]float32
	waux   [32]float32 // √weight, the neighbour search's error weights
	xval   [32]float32 // the magnitudes (one element flipped for parity)
	L      [32]int8
	Laux   [32]int8
	signs  [4]uint8
}

// foldSigns fills xval with the magnitudes of the n elements of xb and
// signs with one sign byte per group of eight (bit i set: element i is
// negative). With even set, a group with an odd number of negative
// elements has its element of least weight·x² flipped (first on ties), so
// that seven stored bits determine the eighth.
func (e *iq2Encoder) foldSigns(xb []float32, n int, even bool) {
	for k := 0; k < n/8; k++ {
		g := xb[8*k : 8*k+8]
		xv := e.xval[8*k : 8*k+8]
		var s uint8
		nflip := 0
		for i, v := range g {
			if v >= 0 {
				xv[i] = v
			} else {
				xv[i] = -v
				s |= 1 << i
				nflip++
			}
		}
		if even && nflip%2 == 1 {
			w := e.weight[8*k : 8*k+8]
			imin := 0
			min := float32(float32(w[0]*g[0]) * g[0])
			for i := 1; i < 8; i++ {
				if ax := float32(float32(w[i]*g[i]) * g[i]); ax < min {
					min, imin = ax, i
				}
			}
			xv[imin] = -xv[imin]
			s ^= 1 << imin
		}
		if even {
			s &= 127
		}
		e.signs[k] = s
	}
}

// level is the level of magnitude v at inverse scale id.
func iq2Level(id, v float32) int8 {
	return int8(oddLevel(id, v, iq2MaxQ-1))
}

// levelsAt quantizes group k's magnitudes at inverse scale id into L[8k:],
// moving an off-grid group to its best neighbour at scale. It reports
// whether the group was on the grid.
func (e *iq2Encoder) levelsAt(k int, id, scale float32, L []int8) bool {
	g := L[8*k : 8*k+8]
	for i, v := range e.xval[8*k : 8*k+8] {
		g[i] = iq2Level(id, v)
	}
	u := IQGridKey(g)
	if e.grid.Index(u) >= 0 {
		return true
	}
	e.grid.BestNeighbour(u, e.xval[8*k:8*k+8], e.waux[8*k:8*k+8], scale, g)
	return false
}

// fit returns the weighted sums Σw·x·q and Σw·q² of the first n levels of
// L (q = 2l+1).
func (e *iq2Encoder) fit(L []int8, n int) (sumqx, sumq2 float32) {
	for i, x := range e.xval[:n] {
		w := e.weight[i]
		q := float32(2*int32(L[i]) + 1)
		sumqx += float32(float32(w*x) * q)
		sumq2 += float32(float32(w*q) * q)
	}
	return sumqx, sumq2
}

// search tries the inverse scales (5 + is/10)/ref for is in [-ntry, ntry],
// keeping in L the levels of the best weighted fit. It returns the best
// scale (initial when none fits better than best = 0) and which groups
// of the accepted levels were on the grid.
func (e *iq2Encoder) search(n, ntry int, ref, initial float32) (scale float32, onGrid [4]bool) {
	scale = initial
	onGrid = [4]bool{true, true, true, true}
	var best float32
	for is := -ntry; is <= ntry; is++ {
		id := (float32(2*iq2MaxQ-1) + float32(float32(is)*float32(0.1))) / ref
		thisScale := 1 / id
		var on [4]bool
		for k := 0; k < n/8; k++ {
			on[k] = e.levelsAt(k, id, thisScale, e.Laux[:])
		}
		sumqx, sumq2 := e.fit(e.Laux[:], n)
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			scale = sumqx / sumq2
			best = float32(scale * sumqx)
			copy(e.L[:n], e.Laux[:n])
			onGrid = on
		}
	}
	return scale, onGrid
}

// gridIndex returns the grid index of group k's levels in L. Levels that
// are off the grid (which makes ggml abort) can only come from degenerate
// all-zero-weight sub-blocks; they take grid point 0.
func (e *iq2Encoder) gridIndex(k int) int {
	if i := e.grid.Index(IQGridKey(e.L[8*k : 8*k+8])); i >= 0 {
		return i
	}
	return 0
}

// weights fills e.weight and e.waux for the n elements of xb: the
// importance weights qw scaled by √(sigma2 + x²), or, without them,
// sigma2/4 + x² (only IQ2_S encodes without weights).
func (e *iq2Encoder) weights(xb, qw []float32, n int, sigma2 float32) {
	for i, v := range xb[:n] {
		if qw != nil {
			e.weight[i] = qw[i] * sqrt32(sigma2+float32(v*v))
		} else {
			e.weight[i] = float32(0.25*sigma2) + float32(v*v)
		}
	}
	for i, w := range e.weight[:n] {
		e.waux[i] = sqrt32(w)
	}
}

// EncodeIQ2_XXS encodes x (a whole number of blocks) into y with the
// importance weights qw (one per element), as ggml's quantize_iq2_xxs.
// ggml has no unweighted IQ2_XXS encoder; with qw nil every element
// weighs the same.
func EncodeIQ2_XXS(y []byte, x []float32, qw []float32) {
	e := iq2Encoder{grid: IQ2XXSGridIndex()}
	eachSuperBlock(y, x, qw, IQ2_XXSBytes, func(b []byte, xbl, qwl []float32) {
		var q2 [2 * QK_K / 32]uint32
		var scales subScales
		sigma2 := sumSquares(xbl) / QK_K
		for ib := 0; ib < QK_K/32; ib++ {
			xb := xbl[32*ib : 32*ib+32]
			w := weightsAt(qwl, 32*ib)
			if w == nil {
				w = unitWeights[:]
			}
			e.weights(xb, w, 32, sigma2)
			e.foldSigns(xb, 32, true)
			if maxOf(e.xval[:]) < groupMaxEps {
				scales.scale[ib] = 0
				clear(e.L[:])
				continue
			}
			var Lqp [32]uint8
			scale := makeQpQuants(32, iq2MaxQ+1, e.xval[:], Lqp[:], e.weight[:])
			for i, l := range Lqp {
				e.L[i] = int8(l)
			}
			effMax := float32(scale * iq2MaxQ)
			scale, _ = e.search(32, 6, effMax, scale)
			if scale > 0 {
				id := 1 / scale
				for k := 0; k < 4; k++ {
					e.levelsAt(k, id, scale, e.L[:])
				}
				if sumqx, sumq2 := e.fit(e.L[:], 32); sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			scale = positiveScale(scale, e.signs[:], 127)
			for k := 0; k < 4; k++ {
				q2[2*ib] |= uint32(e.gridIndex(k)) << (8 * k)
				q2[2*ib+1] |= uint32(e.signs[k]) << (7 * k)
			}
			scales.set(ib, scale)
		}
		StoreF16(b, 0)
		if scales.max == 0 {
			clear(b[2:])
			return
		}
		d, codes := scales.quantize(QK_K/32, 31, 15)
		StoreF16(b, d)
		for ib := range QK_K / 32 {
			q2[2*ib+1] |= uint32(codes[ib]) << 28
		}
		for i, v := range q2 {
			binary.LittleEndian.PutUint32(b[2+4*i:], v)
		}
	})
}

// weightsAt returns the importance weights from element off on, or nil.
func weightsAt(qw []float32, off int) []float32 {
	if qw == nil {
		return nil
	}
	return qw[off:]
}

// EncodeIQ2_XS encodes x (a whole number of blocks) into y with the
// importance weights qw (one per element), as ggml's quantize_iq2_xs.
// ggml has no unweighted IQ2_XS encoder; with qw nil every element
// weighs the same.
func EncodeIQ2_XS(y []byte, x []float32, qw []float32) {
	encodeIQ2Sixteens(y, x, qw, false)
}

// EncodeIQ2_S encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_iq2_s_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_iq2_s
// does.
func EncodeIQ2_S(y []byte, x []float32, qw []float32) {
	encodeIQ2Sixteens(y, x, qw, true)
}

// encodeIQ2Sixteens encodes IQ2_XS (s false) or IQ2_S: both search
// sub-blocks of 16 the same way; IQ2_S stores all eight sign bits, a 10-bit
// grid index, and takes 0.9875 of the super-block scale.
func encodeIQ2Sixteens(y []byte, x []float32, qw []float32, s bool) {
	e := iq2Encoder{grid: IQ2XSGridIndex()}
	size, eps := iq2SixteensBytes(s), groupMaxEps
	if s {
		e.grid, eps = IQ2SGridIndex(), groupMaxEpsIQ2S
	}
	eachSuperBlock(y, x, qw, size, func(b []byte, xbl, qwl []float32) {
		clear(b)
		var scales subScales
		sigma2 := sumSquares(xbl) / QK_K
		if s {
			sigma2 = 2 * sumSquares(xbl) / QK_K
		}
		for ib := 0; ib < QK_K/16; ib++ {
			xb := xbl[16*ib : 16*ib+16]
			w := weightsAt(qwl, 16*ib)
			if w == nil && !s {
				w = unitWeights[:]
			}
			e.weights(xb, w, 16, sigma2)
			e.foldSigns(xb, 16, !s)
			max := maxOf(e.xval[:16])
			if max < eps {
				scales.scale[ib] = 0
				if !s {
					clear(e.L[:16])
				}
				continue
			}
			scale, onGrid := e.search(16, 9, max, max/(2*iq2MaxQ-1))
			if (!onGrid[0] || !onGrid[1]) && scale > 0 {
				id := 1 / scale
				for k := 0; k < 2; k++ {
					if !onGrid[k] {
						e.levelsAt(k, id, scale, e.L[:])
					}
				}
				if sumqx, sumq2 := e.fit(e.L[:], 16); sumq2 > 0 {
					scale = sumqx / sumq2
				}
			}
			signMask := uint8(127) // IQ2_XS stores seven sign bits, IQ2_S eight
			if s {
				signMask = 0xFF
			}
			scale = positiveScale(scale, e.signs[:2], signMask)
			for k := 0; k < 2; k++ {
				g, idx := 2*ib+k, e.gridIndex(k)
				if s {
					b[2+g] = byte(idx)
					b[2+QK_K/4+g/4] |= byte(idx>>8) << (2 * (g % 4))
					b[2+QK_K/8+g] = e.signs[k]
				} else {
					binary.LittleEndian.PutUint16(b[2+2*g:], uint16(idx)|uint16(e.signs[k])<<9)
				}
			}
			scales.set(ib, scale)
		}
		if scales.max == 0 {
			clear(b)
			return
		}
		d, codes := scales.quantize(QK_K/16, 31, 15)
		if s {
			StoreF16(b, float32(d*0.9875))
		} else {
			StoreF16(b, d)
		}
		sc := b[size-QK_K/32:]
		for ib, l := range codes {
			sc[ib/2] |= l << (4 * (ib % 2))
		}
	})
}

// unitWeights stand in for the missing importance weights of IQ2_XXS and
// IQ2_XS, whose ggml encoders require them.
var unitWeights = func() (w [QK_K]float32) {
	for i := range w {
		w[i] = 1
	}
	return w
}()

// The decoders follow ggml's dequantize_row_iq2_{xxs,xs,s}.

// iq2Group writes the eight values db·grid·sign of one group to y.
func iq2Group(y []float32, db float32, point uint64, signs uint8) {
	for j := 0; j < 8; j++ {
		v := float32(db * float32(uint8(point>>(8*j))))
		if signs&(1<<j) != 0 {
			v = -v
		}
		y[j] = v
	}
}

// iq2SubScale is the float scale d·(0.5+s)·0.25 of 4-bit sub-block code s.
func iq2SubScale(d float32, s uint32) float32 {
	return float32(d*(0.5+float32(s))) * 0.25
}

// DecodeIQ2_XXS decodes the whole IQ2_XXS blocks of x into y.
func DecodeIQ2_XXS(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*IQ2_XXSBytes : (i+1)*IQ2_XXSBytes]
		d := LoadF16(b)
		out := y[i*QK_K:]
		for ib := 0; ib < 8; ib++ {
			a0 := binary.LittleEndian.Uint32(b[2+8*ib:])
			a1 := binary.LittleEndian.Uint32(b[6+8*ib:])
			db := iq2SubScale(d, a1>>28)
			for l := 0; l < 4; l++ {
				iq2Group(out[32*ib+8*l:], db, IQ2XXSGrid[uint8(a0>>(8*l))], KSignsIQ2XS[(a1>>(7*l))&127])
			}
		}
	}
}

// DecodeIQ2_XS decodes the whole IQ2_XS blocks of x into y.
func DecodeIQ2_XS(y []float32, x []byte) { decodeIQ2Sixteens(y, x, false) }

// DecodeIQ2_S decodes the whole IQ2_S blocks of x into y.
func DecodeIQ2_S(y []float32, x []byte) { decodeIQ2Sixteens(y, x, true) }

// iq2SIndex is the grid index of group g of an IQ2_S block b.
func iq2SIndex(b []byte, g int) int {
	return int(b[2+g]) | int(b[2+QK_K/4+g/4]>>(2*(g%4))&3)<<8
}

// iq2SixteensGroup returns the grid point and the eight sign bits of group
// g (of 32) of an IQ2_XS block b or, with s, an IQ2_S block, and the 4-bit
// scale code of its sub-block of 16, from the scale bytes at the block's
// end (the two formats' layouts differ only in where index and signs are).
func iq2SixteensGroup(b []byte, g int, s bool) (point uint64, signs uint8, scale uint8) {
	scale = b[len(b)-QK_K/32+g/4] >> (4 * (g / 2 % 2)) & 0xF
	if s {
		return IQ2SGrid[iq2SIndex(b, g)], b[2+QK_K/8+g], scale
	}
	q := binary.LittleEndian.Uint16(b[2+2*g:])
	return IQ2XSGrid[q&511], KSignsIQ2XS[q>>9], scale
}

// decodeIQ2Sixteens decodes IQ2_XS (s false) or IQ2_S blocks.
func decodeIQ2Sixteens(y []float32, x []byte, s bool) {
	size := iq2SixteensBytes(s)
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*size : (i+1)*size]
		d := LoadF16(b)
		for g := 0; g < QK_K/8; g++ {
			point, signs, scale := iq2SixteensGroup(b, g, s)
			iq2Group(y[i*QK_K+8*g:], iq2SubScale(d, uint32(scale)), point, signs)
		}
	}
}

// iq2SixteensBytes is the block size of IQ2_XS (s false) or IQ2_S.
func iq2SixteensBytes(s bool) int {
	if s {
		return IQ2_SBytes
	}
	return IQ2_XSBytes
}

// The reference dots: per super-block the exact integer sum
// Σ_sub (2s+1)·Σ grid·sign·q8, scaled by d·dy and summed in float32, the
// total times 1/8, as ggml-cpu's generic vec_dot_iq2_*_q8_K (the decoder's
// factor 0.25·(0.5+s) is (2s+1)/8). Each product is rounded before it is
// added (no fused multiply-add), as the assembly kernels do, so that they
// agree bit for bit.

// iq2GroupDot is Σ_j grid[j]·sign_j·q8[j] over one group of eight.
func iq2GroupDot(point uint64, signs uint8, q8 []byte) int {
	sum := 0
	for j := 0; j < 8; j++ {
		v := int(uint8(point>>(8*j))) * i8(q8[j])
		if signs&(1<<j) != 0 {
			v = -v
		}
		sum += v
	}
	return sum
}

// DotIQ2_XXSQ8_K returns the dot product of n elements of an IQ2_XXS row w
// with a Q8_K activation row a.
func DotIQ2_XXSQ8_K(w, a []byte, n int) float32 {
	return 0.125 * dotQ8KBlocks(w, a, n, IQ2_XXSBytes, func(b, q8, _ []byte) (float32, float32) {
		bsum := 0
		for ib := 0; ib < 8; ib++ {
			a0 := binary.LittleEndian.Uint32(b[2+8*ib:])
			a1 := binary.LittleEndian.Uint32(b[6+8*ib:])
			sum := 0
			for l := 0; l < 4; l++ {
				sum += iq2GroupDot(IQ2XXSGrid[uint8(a0>>(8*l))], KSignsIQ2XS[(a1>>(7*l))&127], q8[32*ib+8*l:])
			}
			bsum += sum * int(2*(a1>>28)+1)
		}
		return LoadF16(b), float32(bsum)
	})
}

// DotIQ2_XSQ8_K returns the dot product of n elements of an IQ2_XS row w
// with a Q8_K activation row a.
func DotIQ2_XSQ8_K(w, a []byte, n int) float32 { return dotIQ2Sixteens(w, a, n, false) }

// DotIQ2_SQ8_K returns the dot product of n elements of an IQ2_S row w
// with a Q8_K activation row a.
func DotIQ2_SQ8_K(w, a []byte, n int) float32 { return dotIQ2Sixteens(w, a, n, true) }

// dotIQ2Sixteens is the dot of IQ2_XS (s false) or IQ2_S rows.
func dotIQ2Sixteens(w, a []byte, n int, s bool) float32 {
	return 0.125 * dotQ8KBlocks(w, a, n, iq2SixteensBytes(s), func(b, q8, _ []byte) (float32, float32) {
		bsum := 0
		for g := 0; g < QK_K/8; g++ {
			point, signs, scale := iq2SixteensGroup(b, g, s)
			bsum += (2*int(scale) + 1) * iq2GroupDot(point, signs, q8[8*g:])
		}
		return LoadF16(b), float32(bsum)
	})
}
