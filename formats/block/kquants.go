package block

import (
	"encoding/binary"
	"math"
)

// The K-quants: super-blocks of 256 elements cut into sub-blocks of 16 or
// 32, whose scales (and mins) are quantized too, against the f16 super-block
// scale d (and dmin). All fields are little-endian.
//
//	Q2_K (84 bytes):  scales[16] | qs[64] | d dmin
//	    16 sub-blocks of 16; scales byte j: low nibble scale, high nibble
//	    min; q 2 bits: w = d·scale·q − dmin·min
//	Q3_K (110 bytes): hmask[32] | qs[64] | scales[12] | d
//	    16 sub-blocks of 16; 6-bit signed scales (offset 32) packed in 12
//	    bytes; q = 2 low bits from qs, the third from hmask, minus 4 unless
//	    the hmask bit is set: w = d·(scale−32)·q
//	Q4_K (144 bytes): d dmin | scales[12] | qs[128]
//	    8 sub-blocks of 32; 6-bit scales and mins packed in 12 bytes (see
//	    ScaleMinK4); q 4 bits: w = d·scale·q − dmin·min
//	Q5_K (176 bytes): d dmin | scales[12] | qh[32] | qs[128]
//	    as Q4_K with a fifth bit per element from qh
//	Q6_K (210 bytes): ql[128] | qh[64] | scales[16] | d
//	    16 sub-blocks of 16; int8 scales; q = 4 bits from ql and 2 from
//	    qh, minus 32: w = d·scale·q
//	Q8_K (292 bytes): d (float32) | qs[256] int8 | bsums[16] int16
//	    the activation format of the K-quant and IQ4_XS dots; bsums are
//	    the sums of each 16 quants
//
// In qs, each 64 (Q4_K, Q5_K) or 128 (Q2_K, Q3_K) elements take 32 bytes:
// the low nibble (or low bit pair) first, then the next ones.
const (
	QK_K = 256 // elements per K-quant super-block

	Q2_KBytes = QK_K/16 + QK_K/4 + 4
	Q3_KBytes = QK_K/8 + QK_K/4 + 12 + 2
	Q4_KBytes = 4 + 12 + QK_K/2
	Q5_KBytes = 4 + 12 + QK_K/8 + QK_K/2
	Q6_KBytes = QK_K/2 + QK_K/4 + QK_K/16 + 2
	Q8_KBytes = 4 + QK_K + QK_K/16*2
)

// ScaleMinK4 unpacks the 6-bit scale and min of sub-block j (of 8) from the
// 12 packed scale bytes of a Q4_K or Q5_K block: for j < 4 the low six bits
// of bytes j and j+4; otherwise the nibbles of byte j+4 with the top two
// bits of bytes j−4 and j as their high bits (ggml's get_scale_min_k4).
func ScaleMinK4(j int, scales []byte) (scale, min uint8) {
	if j < 4 {
		return scales[j] & 63, scales[j+4] & 63
	}
	return scales[j+4]&0xF | (scales[j-4]>>6)<<4, scales[j+4]>>4 | (scales[j]>>6)<<4
}

// The K-quants: 256-element super-blocks of 16 or 32-element sub-blocks
// whose scales are themselves quantized. Without an importance matrix they
// are encoded as quantize_row_<type>_ref does.

// packQ2 packs 256 2-bit values: byte l of each 32-byte run holds elements
// l, l+32, l+64 and l+96 of its 128-element half.
func packQ2(qs []byte, L []uint8) {
	for j := 0; j < QK_K; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// ---- Q2_K ----

// kSub16 is the scratch of the Q2_K and Q3_K encoders, whose super-blocks
// are sixteen sub-blocks of 16: the values L and, per sub-block, the scale
// (and min) found and the weights of its elements and their total.
type kSub16[T int8 | uint8] struct {
	L            [QK_K]T
	scales, mins [16]float32
	weight       [16][16]float32
	sw           [16]float32
}

// weigh fills the importance weights qwb·√(σ² + x²) of each sub-block of
// xb and their totals.
func (s *kSub16[T]) weigh(xb, qwb []float32, sigma2 float32) {
	for j := range 16 {
		importanceWeights(s.weight[j][:], qwb[16*j:], xb[16*j:16*j+16], sigma2)
		s.sw[j] = sumOf(s.weight[j][:])
	}
}

// encodeK16 is the encoder Q2_K and Q3_K share: for each super-block, ref
// (ggml's quantize_row_<type>_ref, for qw nil) or weighted (quantize_<type>
// with the importance weights qwb) chooses the values s.L and stores the
// sub-block scales, and finish requantizes the values against the stored
// scales and packs them.
func encodeK16[T int8 | uint8](y []byte, x, qw []float32, size int,
	ref func(s *kSub16[T], b []byte, xb []float32),
	weighted func(s *kSub16[T], b []byte, xb, qwb []float32),
	finish func(b []byte, xb []float32, L []T)) {
	var s kSub16[T]
	eachSuperBlock(y, x, qw, size, func(b []byte, xb, qwb []float32) {
		if qwb != nil {
			weighted(&s, b, xb, qwb)
		} else {
			ref(&s, b, xb)
		}
		finish(b, xb, s.L[:])
	})
}

// EncodeQ2_K encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q2_K_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q2_K does.
func EncodeQ2_K(y []byte, x []float32, qw []float32) {
	encodeK16(y, x, qw, Q2_KBytes, scalesQ2KRef, scalesQ2KWeighted, func(b []byte, xb []float32, L []uint8) {
		requantizeQ2K(b, xb, L)
		packQ2(b[16:80], L)
	})
}

// scalesQ2KRef chooses the 2-bit values and the 4-bit sub-block scales and
// mins of a Q2_K block as quantize_row_q2_K_ref does: each sub-block's
// affine fit under the weights |x|, the scales and mins quantized against
// their largest.
func scalesQ2KRef(s *kSub16[uint8], b []byte, xb []float32) {
	const q4scale = float32(15)
	var Laux [16]uint8
	sc := b[0:16]
	var maxScale, maxMin float32
	for j := 0; j < 16; j++ {
		weights := &s.weight[j]
		for l := 0; l < 16; l++ {
			weights[l] = abs32(xb[16*j+l])
		}
		s.scales[j], s.mins[j] = makeQkx2Quants(16, 3, xb[16*j:], weights[:], s.L[16*j:], Laux[:], -0.5, 0.1, 15, true)
		if s.scales[j] > maxScale {
			maxScale = s.scales[j]
		}
		if s.mins[j] > maxMin {
			maxMin = s.mins[j]
		}
	}
	if maxScale > 0 {
		iscale := q4scale / maxScale
		for j := 0; j < 16; j++ {
			sc[j] = uint8(NearestInt(iscale * s.scales[j]))
		}
		StoreF16(b[80:], maxScale/q4scale)
	} else {
		for j := range sc {
			sc[j] = 0
		}
		StoreF16(b[80:], 0)
	}
	if maxMin > 0 {
		iscale := q4scale / maxMin
		for j := 0; j < 16; j++ {
			sc[j] |= uint8(NearestInt(iscale*s.mins[j]) << 4)
		}
		StoreF16(b[82:], maxMin/q4scale)
	} else {
		StoreF16(b[82:], 0)
	}
}

// scalesQ2KWeighted chooses them as quantize_row_q2_K_impl does, under the
// importance weights qwb: the sub-block fits under the weights, the scales
// and mins quantized with make_qp_quants under the sub-blocks' totals.
func scalesQ2KWeighted(s *kSub16[uint8], b []byte, xb, qwb []float32) {
	var (
		Laux   [16]uint8
		Ls, Lm [16]uint8
	)
	s.weigh(xb, qwb, rowSigma2(xb))
	for j := 0; j < 16; j++ {
		s.scales[j], s.mins[j] = makeQkx3Quants(16, 3, xb[16*j:], s.weight[j][:], s.L[16*j:], Laux[:], -0.9, 0.05, 36, false)
	}
	dm := makeQpQuants(16, 15, s.scales[:], Ls[:], s.sw[:])
	mm := makeQpQuants(16, 15, s.mins[:], Lm[:], s.sw[:])
	StoreF16(b[80:], dm)
	StoreF16(b[82:], mm)
	for j := 0; j < 16; j++ {
		b[j] = Ls[j] | Lm[j]<<4
	}
}

// requantizeQ2K recomputes the 2-bit values against the stored (rounded)
// scales and mins; sub-blocks with a zero scale keep their first values.
func requantizeQ2K(b []byte, xb []float32, L []uint8) {
	dAll, mAll := LoadF16(b[80:]), LoadF16(b[82:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(b[j]&0xF)
		if d == 0 {
			continue
		}
		dm := mAll * float32(b[j]>>4)
		for ii := 0; ii < 16; ii++ {
			l := NearestInt((xb[16*j+ii] + dm) / d)
			L[16*j+ii] = uint8(clampInt(l, 0, 3))
		}
	}
}

// DecodeQ2_K decodes the whole Q2_K blocks of x into y (ggml's
// dequantize_row_q2_K).
func DecodeQ2_K(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*Q2_KBytes : (i+1)*Q2_KBytes]
		d, min := LoadF16(b[80:]), LoadF16(b[82:])
		out := y[i*QK_K:]
		is := 0
		for n := 0; n < QK_K; n += 128 {
			q := b[16+n/4:]
			shift := uint(0)
			for j := 0; j < 4; j++ {
				for half := 0; half < 2; half++ {
					sc := b[is]
					is++
					dl, ml := d*float32(sc&0xF), min*float32(sc>>4)
					for l := 0; l < 16; l++ {
						out[l] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
					}
					out = out[16:]
				}
				shift += 2
			}
		}
	}
}

// ---- Q3_K ----

// EncodeQ3_K encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q3_K_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q3_K does.
func EncodeQ3_K(y []byte, x []float32, qw []float32) {
	encodeK16(y, x, qw, Q3_KBytes, scalesQ3KRef, scalesQ3KWeighted, func(b []byte, xb []float32, L []int8) {
		requantizeQ3K(b, xb, L)
		packQ3K(b, L)
	})
}

// scalesQ3KRef chooses the 3-bit values and the 6-bit sub-block scales of
// a Q3_K block as quantize_row_q3_K_ref does: each sub-block's symmetric
// fit (make_q3_quants), the scales quantized against the one of largest
// magnitude.
func scalesQ3KRef(s *kSub16[int8], b []byte, xb []float32) {
	var maxScale, amax float32
	for j := 0; j < 16; j++ {
		s.scales[j] = makeQ3Quants(16, 4, xb[16*j:], s.L[16*j:], true)
		if a := abs32(s.scales[j]); a > amax {
			amax = a
			maxScale = s.scales[j]
		}
	}
	sc := b[96:108]
	clear(sc)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := 0; j < 16; j++ {
			l := int8(NearestInt(iscale * s.scales[j]))
			l = int8(clampInt(int32(l), -32, 31) + 32)
			putScaleQ3K(sc, j, l)
		}
		StoreF16(b[108:], 1/iscale)
	} else {
		StoreF16(b[108:], 0)
	}
}

// scalesQ3KWeighted chooses them as quantize_row_q3_K_impl does, under the
// importance weights qwb: the sub-block fits under the weights, the scales
// quantized with make_qx_quants under the sub-blocks' totals.
func scalesQ3KWeighted(s *kSub16[int8], b []byte, xb, qwb []float32) {
	var Ls [16]int8
	s.weigh(xb, qwb, superSigma2(xb))
	for j := 0; j < 16; j++ {
		s.scales[j] = makeQxQuants(16, 4, xb[16*j:], s.L[16*j:], 1, s.weight[j][:])
	}
	sc := b[96:108]
	clear(sc)
	dBlock := makeQxQuants(16, 32, s.scales[:], Ls[:], 1, s.sw[:])
	for j := 0; j < 16; j++ {
		putScaleQ3K(sc, j, Ls[j])
	}
	StoreF16(b[108:], dBlock)
}

// putScaleQ3K stores the j-th 6-bit scale: low nibbles in bytes 0..7, the
// two high bits in bytes 8..11.
func putScaleQ3K(sc []byte, j int, l int8) {
	if j < 8 {
		sc[j] = byte(l & 0xF)
	} else {
		sc[j-8] |= byte(l&0xF) << 4
	}
	l >>= 4
	sc[j%4+8] |= byte(l) << (2 * (j / 4))
}

// ScaleQ3_K unpacks the signed 6-bit scale of sub-block j (of 16) from the
// 12 packed scale bytes of a Q3_K block: the low 4 bits in the nibbles of
// bytes 0–7 (j < 8 low, otherwise high), the high 2 bits in bits 2(j/4),
// 2(j/4)+1 of byte 8 + j%4; stored with an offset of 32.
func ScaleQ3_K(sc []byte, j int) int8 {
	var s int8
	if j < 8 {
		s = int8(sc[j] & 0xF)
	} else {
		s = int8(sc[j-8] >> 4)
	}
	return int8(s|int8((sc[8+j%4]>>(2*(j/4)))&3)<<4) - 32
}

func requantizeQ3K(b []byte, xb []float32, L []int8) {
	dAll := LoadF16(b[108:])
	for j := 0; j < 16; j++ {
		d := dAll * float32(ScaleQ3_K(b[96:108], j))
		if d == 0 {
			continue
		}
		for ii := 0; ii < 16; ii++ {
			l := clampInt(NearestInt(xb[16*j+ii]/d), -4, 3)
			L[16*j+ii] = int8(l + 4)
		}
	}
}

// packQ3K stores the high bit of each 3-bit value in hmask (element j's bit
// in hmask[j%32], bit j/32) and the low two bits in qs.
func packQ3K(b []byte, L []int8) {
	hmask, qs := b[0:32], b[32:96]
	for j := range hmask {
		hmask[j] = 0
	}
	m, hm := 0, uint8(1)
	var low [QK_K]uint8
	for j := 0; j < QK_K; j++ {
		v := L[j]
		if v > 3 {
			hmask[m] |= hm
			v -= 4
		}
		low[j] = uint8(v)
		if m++; m == QK_K/8 {
			m = 0
			hm <<= 1
		}
	}
	packQ2(qs, low[:])
}

// DecodeQ3_K decodes the whole Q3_K blocks of x into y (ggml's
// dequantize_row_q3_K).
func DecodeQ3_K(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*Q3_KBytes : (i+1)*Q3_KBytes]
		dAll := LoadF16(b[108:])
		hm := b[0:32]
		out := y[i*QK_K:]
		is := 0
		m := uint8(1)
		for n := 0; n < QK_K; n += 128 {
			q := b[32+n/4:]
			shift := uint(0)
			for j := 0; j < 4; j++ {
				for half := 0; half < 2; half++ {
					dl := dAll * float32(ScaleQ3_K(b[96:108], is))
					is++
					for l := 0; l < 16; l++ {
						v := int32((q[l+16*half] >> shift) & 3)
						if hm[l+16*half]&m == 0 {
							v -= 4
						}
						out[l] = dl * float32(v)
					}
					out = out[16:]
				}
				shift += 2
				m <<= 1
			}
		}
	}
}

// ---- Q4_K and Q5_K ----

// putScalesK4 packs eight 6-bit scales and mins into 12 bytes.
func putScalesK4(sc []byte, j int, ls, lm uint8) {
	if j < 4 {
		sc[j] = ls
		sc[j+4] = lm
	} else {
		sc[j+4] = ls&0xF | (lm&0xF)<<4
		sc[j-4] |= (ls >> 4) << 6
		sc[j] |= (lm >> 4) << 6
	}
}

// quantizeScalesK4 turns the eight sub-block scales and mins of a Q4_K/Q5_K
// block (the ref path) into 6-bit codes and the fp16 super-scales.
func quantizeScalesK4(b []byte, scales, mins *[8]float32, maxScale, maxMin float32) {
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := b[4:16]
	for j := 0; j < 8; j++ {
		ls := min(63, uint8(NearestInt(invScale*scales[j])))
		lm := min(63, uint8(NearestInt(invMin*mins[j])))
		putScalesK4(sc, j, ls, lm)
	}
	StoreF16(b[0:], maxScale/63)
	StoreF16(b[2:], maxMin/63)
}

// requantizeK4 recomputes the values of a Q4_K/Q5_K block against the stored
// scales; sub-blocks with a zero scale keep their first values.
func requantizeK4(b []byte, xb []float32, L []uint8, nmax int32) {
	dAll, mAll := LoadF16(b[0:]), LoadF16(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := ScaleMinK4(j, b[4:16])
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := mAll * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := NearestInt((xb[32*j+ii] + dm) / d)
			L[32*j+ii] = uint8(clampInt(l, 0, nmax))
		}
	}
}

// firstPassK4 runs the per-sub-block scale search of the Q4_K/Q5_K ref path.
func firstPassK4(xb []float32, L []uint8, nmax int, rmin, rdelta float32, nstep int,
	scales, mins *[8]float32) (maxScale, maxMin float32) {
	var weights [8][32]float32
	for j := 0; j < 8; j++ {
		sub := xb[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range sub {
			sumX2 += float32(v * v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range sub {
			weights[j][l] = avX + abs32(v)
		}
	}
	searchK4(xb, &weights, L, nmax, rmin, rdelta, nstep, scales, mins)
	for j := 0; j < 8; j++ {
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	return maxScale, maxMin
}

// searchK4 runs make_qkx2_quants on the eight 32-value sub-blocks of a
// Q4_K/Q5_K block, four at a time.
func searchK4(xb []float32, weights *[8][32]float32, L []uint8, nmax int, rmin, rdelta float32, nstep int, scales, mins *[8]float32) {
	for h := 0; h < 8; h += 4 {
		var x, w [4][]float32
		var Lh [4][]uint8
		for k := range 4 {
			j := h + k
			x[k], w[k], Lh[k] = xb[32*j:32*j+32], weights[j][:], L[32*j:32*j+32]
		}
		s, m := makeQkx2Quants4(nmax, &x, &w, &Lh, rmin, rdelta, nstep)
		copy(scales[h:h+4], s[:])
		copy(mins[h:h+4], m[:])
	}
}

// EncodeQ4_K encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q4_K_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q4_K does.
func EncodeQ4_K(y []byte, x []float32, qw []float32) {
	encodeK45(y, x, qw, Q4_KBytes, 15, -1, 20, func(b []byte, L *[QK_K]uint8) {
		qs := b[16:144]
		for j := 0; j < QK_K; j += 64 {
			for l := 0; l < 32; l++ {
				qs[j/2+l] = L[j+l] | L[j+l+32]<<4
			}
		}
	})
}

// encodeK45 is the encoder Q4_K and Q5_K share: for each super-block the
// eight sub-block scales and mins (under the importance weights when qw is
// given, else with ggml's make_qkx2_quants search from rmin in nstep
// steps), the values L in 0…nmax requantized with the stored scales, and
// pack to store them.
func encodeK45(y []byte, x, qw []float32, size, nmax int, rmin float32, nstep int, pack func(b []byte, L *[QK_K]uint8)) {
	var L [QK_K]uint8
	var scales, mins [8]float32
	eachSuperBlock(y, x, qw, size, func(b []byte, xb, qwb []float32) {
		if qw != nil {
			quantizeBlockK4Impl(b, xb, qwb, L[:], nmax)
		} else {
			maxScale, maxMin := firstPassK4(xb, L[:], nmax, rmin, 0.1, nstep, &scales, &mins)
			quantizeScalesK4(b, &scales, &mins, maxScale, maxMin)
		}
		requantizeK4(b, xb, L[:], int32(nmax))
		pack(b, &L)
	})
}

// DecodeQ4_K decodes the whole Q4_K blocks of x into y (ggml's
// dequantize_row_q4_K).
func DecodeQ4_K(y []float32, x []byte) { decodeK45(y, x, Q4_KBytes, 16, false) }

// decodeK45 decodes Q4_K blocks (size bytes, the nibbles at qsOff) or, with
// fifth, Q5_K blocks, whose fifth bits are the 32 bytes at 16.
func decodeK45(y []float32, x []byte, size, qsOff int, fifth bool) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*size : (i+1)*size]
		d, min := LoadF16(b[0:]), LoadF16(b[2:])
		qh := b[16:48]
		out := y[i*QK_K:]
		u1, u2 := uint8(1), uint8(2)
		for j := 0; j < QK_K; j += 64 {
			q := b[qsOff+j/2:]
			sc, m := ScaleMinK4(j/32, b[4:16])
			d1, m1 := d*float32(sc), min*float32(m)
			sc, m = ScaleMinK4(j/32+1, b[4:16])
			d2, m2 := d*float32(sc), min*float32(m)
			for l := 0; l < 32; l++ {
				v1, v2 := q[l]&0xF, q[l]>>4
				if fifth && qh[l]&u1 != 0 {
					v1 += 16
				}
				if fifth && qh[l]&u2 != 0 {
					v2 += 16
				}
				out[j+l] = float32(d1*float32(v1)) - m1
				out[j+32+l] = float32(d2*float32(v2)) - m2
			}
			u1 <<= 2
			u2 <<= 2
		}
	}
}

// EncodeQ5_K encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q5_K_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q5_K does.
func EncodeQ5_K(y []byte, x []float32, qw []float32) {
	encodeK45(y, x, qw, Q5_KBytes, 31, -0.5, 15, func(b []byte, L *[QK_K]uint8) {
		qh, ql := b[16:48], b[48:176]
		for j := range qh {
			qh[j] = 0
		}
		m1, m2 := uint8(1), uint8(2)
		for n := 0; n < QK_K; n += 64 {
			for j := 0; j < 32; j++ {
				l1, l2 := L[n+j], L[n+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[n/2+j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
		}
	})
}

// DecodeQ5_K decodes the whole Q5_K blocks of x into y (ggml's
// dequantize_row_q5_K).
func DecodeQ5_K(y []float32, x []byte) { decodeK45(y, x, Q5_KBytes, 48, true) }

// ---- Q6_K ----

// EncodeQ6_K encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q6_K_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q6_K does.
func EncodeQ6_K(y []byte, x []float32, qw []float32) {
	var (
		L      [QK_K]int8
		scales [16]float32
	)
	eachSuperBlock(y, x, qw, Q6_KBytes, func(b []byte, xb, qwb []float32) {
		var maxScale, maxAbsScale float32
		for ib := 0; ib < 16; ib += 4 {
			var xs, ws [4][]float32
			var Ls [4][]int8
			for k := range 4 {
				j := 16 * (ib + k)
				xs[k], Ls[k] = xb[j:j+16], L[j:j+16]
				if qw != nil {
					ws[k] = qwb[j : j+16]
				}
			}
			var wp *[4][]float32
			if qw != nil {
				wp = &ws
			}
			s := makeQxQuants4(32, &xs, &Ls, wp)
			copy(scales[ib:ib+4], s[:])
		}
		for _, scale := range scales {
			if a := abs32(scale); a > maxAbsScale {
				maxAbsScale = a
				maxScale = scale
			}
		}
		if maxAbsScale < groupMaxEps {
			for j := range b {
				b[j] = 0
			}
			return
		}
		iscale := -128 / maxScale
		StoreF16(b[208:], 1/iscale)
		sc := b[192:208]
		for ib := 0; ib < 16; ib++ {
			sc[ib] = byte(int8(min(127, NearestInt(iscale*scales[ib]))))
		}
		dAll := LoadF16(b[208:])
		for j := 0; j < 16; j++ {
			d := dAll * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt(NearestInt(xb[16*j+ii]/d), -32, 31)
				L[16*j+ii] = int8(l + 32)
			}
		}
		ql, qh := b[0:128], b[128:192]
		for j := 0; j < QK_K; j += 128 {
			for l := 0; l < 32; l++ {
				q1 := uint8(L[j+l]) & 0xF
				q2 := uint8(L[j+l+32]) & 0xF
				q3 := uint8(L[j+l+64]) & 0xF
				q4 := uint8(L[j+l+96]) & 0xF
				ql[j/2+l] = q1 | q3<<4
				ql[j/2+l+32] = q2 | q4<<4
				qh[j/4+l] = uint8(L[j+l])>>4 | uint8(L[j+l+32])>>4<<2 | uint8(L[j+l+64])>>4<<4 | uint8(L[j+l+96])>>4<<6
			}
		}
	})
}

// DecodeQ6_K decodes the whole Q6_K blocks of x into y (ggml's
// dequantize_row_q6_K).
func DecodeQ6_K(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*Q6_KBytes : (i+1)*Q6_KBytes]
		d := LoadF16(b[208:])
		out := y[i*QK_K:]
		for n := 0; n < QK_K; n += 128 {
			ql, qh, sc := b[n/2:], b[128+n/4:], b[192+n/16:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				out[n+l] = d * float32(int8(sc[is])) * float32(q1)
				out[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				out[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				out[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

// ---- Q8_K (activations) ----

// EncodeQ8_K encodes x (a whole number of blocks) into y as ggml's
// quantize_row_q8_K_ref does; it takes no importance weights.
func EncodeQ8_K(y []byte, x []float32, _ []float32) {
	eachSuperBlock(y, x, nil, Q8_KBytes, func(b []byte, xb, _ []float32) {
		max, amax := maxAbsSigned(xb)
		if amax == 0 {
			for j := range b {
				b[j] = 0
			}
			return
		}
		iscale := -127 / max
		qs := b[4:260]
		for j, v := range xb {
			qs[j] = byte(int8(min(127, NearestInt(iscale*v))))
		}
		for j := 0; j < 16; j++ {
			var sum int32
			for ii := 0; ii < 16; ii++ {
				sum += int32(int8(qs[16*j+ii]))
			}
			binary.LittleEndian.PutUint16(b[260+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	})
}

// DecodeQ8_K decodes the whole Q8_K blocks of x into y (ggml's
// dequantize_row_q8_K).
func DecodeQ8_K(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*Q8_KBytes : (i+1)*Q8_KBytes]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		for j := 0; j < QK_K; j++ {
			y[i*QK_K+j] = d * float32(int8(b[4+j]))
		}
	}
}

// Encoders used when an importance matrix is given (the quantize_row_*_impl
// paths of ggml-quants.c).

// quantizeBlockK4Impl chooses the sub-block values, scales and mins of one
// Q4_K (nmax 15) or Q5_K (nmax 31) block under importance weights qw.
func quantizeBlockK4Impl(b []byte, xb, qw []float32, L []uint8, nmax int) {
	var (
		Ls, Lm       [8]uint8
		weights      [8][32]float32
		sw           [8]float32
		mins, scales [8]float32
	)
	sigma2 := superSigma2(xb)
	for j := 0; j < 8; j++ {
		importanceWeights(weights[j][:], qw[32*j:], xb[32*j:32*j+32], sigma2)
		sw[j] = sumOf(weights[j][:])
	}
	// make_qkx3_quants with weights given is make_qkx2_quants.
	searchK4(xb, &weights, L, nmax, -0.9, 0.05, 36, &scales, &mins)
	dBlock := makeQpQuants(8, 63, scales[:], Ls[:], sw[:])
	mBlock := makeQpQuants(8, 63, mins[:], Lm[:], sw[:])
	sc := b[4:16]
	for j := 0; j < 8; j++ {
		putScalesK4(sc, j, min(63, Ls[j]), min(63, Lm[j]))
	}
	StoreF16(b[0:], dBlock)
	StoreF16(b[2:], mBlock)
}

// The reference dot products of K-quant rows with their activation format:
// integer block sums scaled as ggml-cpu's vec_dot functions do, in the same
// order, so that the assembly kernels can match them bit for bit.

// DotQ2_KQ8_K returns the dot product of n elements of a Q2_K row w with a
// Q8_K activation row a.
//
// block_q2_K is scales[16] (scale low nibble, min high
// nibble, one per 16 elements), qs[64] (2-bit quants), d, dmin. Each 128
// elements take 32 bytes, shifted by 0, 2, 4, 6 for successive 32-element runs.
func DotQ2_KQ8_K(w, a []byte, n int) float32 {
	return sumQ8KBlocks(w, a, n, Q2_KBytes, func(x []byte, dy float32, q8, bsums []byte) float32 {
		sc := x[:16]
		summs := 0
		for g := 0; g < 16; g++ {
			summs += bsumAt(bsums, g) * int(sc[g]>>4)
		}
		isum := 0
		for half := 0; half < 2; half++ {
			qs := x[16+32*half : 16+32*half+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				e0 := 128*half + 32*j
				for part := 0; part < 2; part++ {
					y := q8[e0+16*part : e0+16*part+16]
					q := qs[16*part : 16*part+16]
					sub := 0
					for l := range 16 {
						sub += int(q[l]>>shift&3) * i8(y[l])
					}
					isum += int(sc[e0/16+part]&0xf) * sub
				}
			}
		}
		return dy*LoadF16(x[80:])*float32(isum) - dy*LoadF16(x[82:])*float32(summs)
	})
}

// DotQ3_KQ8_K returns the dot product of n elements of a Q3_K row w with a
// Q8_K activation row a.
//
// block_q3_K is hmask[32], qs[64], scales[12], d. The
// quants are laid out as Q2_K's; bit 4*half+j of hmask[l] clear means -4.
func DotQ3_KQ8_K(w, a []byte, n int) float32 {
	return sumQ8KBlocks(w, a, n, Q3_KBytes, func(x []byte, dy float32, q8, _ []byte) float32 {
		hm, sc := x[:32], x[96:108]
		isum := 0
		for half := 0; half < 2; half++ {
			qs := x[32+32*half : 32+32*half+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				bit := byte(1) << (4*half + j)
				e0 := 128*half + 32*j
				for part := 0; part < 2; part++ {
					y := q8[e0+16*part : e0+16*part+16]
					q := qs[16*part : 16*part+16]
					h := hm[16*part : 16*part+16]
					sub := 0
					for l := range 16 {
						v := int(q[l]>>shift&3) - 4
						if h[l]&bit != 0 {
							v += 4
						}
						sub += v * i8(y[l])
					}
					isum += int(ScaleQ3_K(sc, e0/16+part)) * sub
				}
			}
		}
		return LoadF16(x[108:]) * dy * float32(isum)
	})
}

// DotQ4_KQ8_K returns the dot product of n elements of a Q4_K row w with a
// Q8_K activation row a.
//
// block_q4_K is d, dmin, scales[12], qs[128]; each 64
// elements take the low then the high nibbles of 32 bytes.
func DotQ4_KQ8_K(w, a []byte, n int) float32 { return dotK45(w, a, n, Q4_KBytes, false) }

// DotQ5_KQ8_K returns the dot product of n elements of a Q5_K row w with a
// Q8_K activation row a.
//
// block_q5_K is d, dmin, scales[12], qh[32], qs[128]: Q4_K's layout with
// the fifth bit of element l of sub-block j in bit j of qh[l].
func DotQ5_KQ8_K(w, a []byte, n int) float32 { return dotK45(w, a, n, Q5_KBytes, true) }

// dotK45 is the dot of Q4_K (size bytes a block) or, with fifth, Q5_K rows.
//
// It runs its own block loop, not sumQ8KBlocks: as the pure-Go kernel set's
// dot it measured 0.6× as fast with the block as a closure.
func dotK45(w, a []byte, n, size int, fifth bool) float32 {
	var s float32
	for b := 0; b < n/QK_K; b++ {
		x := w[b*size : (b+1)*size]
		dy, q8, bsums := q8KParts(a[b*Q8_KBytes : (b+1)*Q8_KBytes])
		scales, qs := x[4:16], x[size-QK_K/2:]
		var qh []byte
		if fifth {
			qh = x[16:48]
		}
		isum, msum := 0, 0
		for j := 0; j < 8; j++ {
			sc, m := ScaleMinK4(j, scales)
			shift := uint(4 * (j & 1))
			q, y := qs[32*(j/2):32*(j/2)+32], q8[32*j:32*j+32]
			// Two loops, not a test per element: this is the pure-Go
			// kernel set's dot, and the test halved its speed.
			sub := 0
			if fifth {
				h := qh[:32]
				for l := range 32 {
					sub += (int(q[l]>>shift&0xf) | int(h[l]>>j&1)<<4) * i8(y[l])
				}
			} else {
				for l := range 32 {
					sub += int(q[l]>>shift&0xf) * i8(y[l])
				}
			}
			isum += int(sc) * sub
			msum += int(m) * (bsumAt(bsums, 2*j) + bsumAt(bsums, 2*j+1))
		}
		s += dy*LoadF16(x)*float32(isum) - dy*LoadF16(x[2:])*float32(msum)
	}
	return s
}

// DotQ6_KQ8_K returns the dot product of n elements of a Q6_K row w with a
// Q8_K activation row a.
//
// block_q6_K is ql[128], qh[64], scales[16] int8, d. In each
// 128 elements, run k of 32 takes the low (k<2) or high nibbles of
// ql[32*(k&1):], and bits 2k,2k+1 of qh[l].
func DotQ6_KQ8_K(w, a []byte, n int) float32 {
	return sumQ8KBlocks(w, a, n, Q6_KBytes, func(x []byte, dy float32, q8, _ []byte) float32 {
		sc := x[192:208]
		isum := 0
		for half := 0; half < 2; half++ {
			qh := x[128+32*half : 128+32*half+32]
			for k := 0; k < 4; k++ {
				ql := x[64*half+32*(k&1) : 64*half+32*(k&1)+32]
				lshift := uint(4 * (k / 2))
				hshift := uint(2 * k)
				e0 := 128*half + 32*k
				for part := 0; part < 2; part++ {
					y := q8[e0+16*part : e0+16*part+16]
					lo, hi := ql[16*part:16*part+16], qh[16*part:16*part+16]
					sub := 0
					for l := range 16 {
						q := int(lo[l]>>lshift&0xf) | int(hi[l]>>hshift&3)<<4
						sub += (q - 32) * i8(y[l])
					}
					isum += i8(sc[e0/16+part]) * sub
				}
			}
		}
		return LoadF16(x[208:]) * dy * float32(isum)
	})
}

// eachSuperBlock calls encode for every super-block of a row: b is its size
// bytes of y, xb its QK_K elements of x and qwb their importance weights
// (nil when qw is nil).
func eachSuperBlock(y []byte, x, qw []float32, size int, encode func(b []byte, xb, qwb []float32)) {
	for i := 0; i < len(x)/QK_K; i++ {
		var qwb []float32
		if qw != nil {
			qwb = qw[i*QK_K : (i+1)*QK_K]
		}
		encode(y[i*size:(i+1)*size], x[i*QK_K:(i+1)*QK_K], qwb)
	}
}

// dotQ8KBlocks is the outer loop of the reference dots of the i-quants and
// ternary formats with Q8_K activations, as ggml-cpu's generic vec_dot
// functions run it: block gives a weight super-block's scale d and its sum
// against the activation block (q8 its 256 quants, bsums its 16 group sums),
// which enters the total as f32(f32(d·dy)·sum), the product rounded before
// it is added (the assembly's chainQ8KRounded).
func dotQ8KBlocks(w, a []byte, n, blockBytes int, block func(x, q8, bsums []byte) (d, sum float32)) float32 {
	return sumQ8KBlocks(w, a, n, blockBytes, func(x []byte, dy float32, q8, bsums []byte) float32 {
		d, sum := block(x, q8, bsums)
		return float32(float32(d*dy) * sum)
	})
}

// sumQ8KBlocks is the block loop of all reference dots with Q8_K
// activations: block returns the term of one weight super-block x against
// the activation block of scale dy, quants q8 and group sums bsums, and
// the terms are added in block order.
func sumQ8KBlocks(w, a []byte, n, blockBytes int, block func(x []byte, dy float32, q8, bsums []byte) float32) float32 {
	var s float32
	for i := 0; i < n/QK_K; i++ {
		dy, q8, bsums := q8KParts(a[i*Q8_KBytes : (i+1)*Q8_KBytes])
		s += block(w[i*blockBytes:(i+1)*blockBytes], dy, q8, bsums)
	}
	return s
}

// q8KParts splits a Q8_K block into its scale, quants and group sums.
func q8KParts(act []byte) (dy float32, q8, bsums []byte) {
	return math.Float32frombits(binary.LittleEndian.Uint32(act)), act[4 : 4+QK_K], act[4+QK_K:]
}

// q8K splits a Q8_K block into its scale, quants and group sums.
func q8K(a []byte) (d float32, qs []byte, bsum func(g int) int) {
	d = math.Float32frombits(binary.LittleEndian.Uint32(a))
	qs = a[4 : 4+QK_K]
	bs := a[4+QK_K : Q8_KBytes]
	return d, qs, func(g int) int { return bsumAt(bs, g) }
}

// bsumAt reads group sum g of a Q8_K block's bsums.
func bsumAt(bsums []byte, g int) int { return int(int16(binary.LittleEndian.Uint16(bsums[2*g:]))) }
