package quant

import (
	"encoding/binary"

	"github.com/llqt/llqt/formats/block"
)

// Encoders used when an importance matrix is given (the quantize_row_*_impl
// paths of ggml-quants.c). qw holds one weight per column of the row.

// rowSigma2 is the mean square of a row (the legacy formats' sigma²).
func rowSigma2(x []float32) float32 {
	var sumX2 float32
	for _, v := range x {
		sumX2 += float32(v * v)
	}
	return sumX2 / float32(len(x))
}

func importanceWeights(dst, qw, x []float32, sigma2 float32) {
	for j, v := range x {
		dst[j] = qw[j] * sqrt32(sigma2+float32(v*v))
	}
}

func quantizeRowQ4_0Impl(y []byte, x []float32, qw []float32) {
	if qw == nil {
		quantizeRowQ4_0(y, x, nil)
		return
	}
	var weight [block.QK]float32
	var L [block.QK]int8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/block.QK; ib++ {
		xb := x[ib*block.QK : (ib+1)*block.QK]
		b := y[ib*block.Q4_0Bytes : (ib+1)*block.Q4_0Bytes]
		importanceWeights(weight[:], qw[ib*block.QK:], xb, sigma2)
		d := makeQxQuants(block.QK, 8, xb, L[:], 1, weight[:])
		block.StoreF16(b, d)
		for j := 0; j < 16; j++ {
			b[2+j] = uint8(L[j]) | uint8(L[j+16])<<4
		}
	}
}

func quantizeRowQ4_1Impl(y []byte, x []float32, qw []float32) {
	if qw == nil {
		quantizeRowQ4_1(y, x, nil)
		return
	}
	var weight [block.QK]float32
	var L, Laux [block.QK]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/block.QK; ib++ {
		xb := x[ib*block.QK : (ib+1)*block.QK]
		b := y[ib*block.Q4_1Bytes : (ib+1)*block.Q4_1Bytes]
		importanceWeights(weight[:], qw[ib*block.QK:], xb, sigma2)
		d, theMin := makeQkx3Quants(block.QK, 15, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		block.StoreF16(b, d)
		block.StoreF16(b[2:], -theMin)
		for j := 0; j < 16; j++ {
			b[4+j] = L[j] | L[j+16]<<4
		}
	}
}

func pack5(b []byte, L []uint8) {
	var qh uint32
	for j := 0; j < 16; j++ {
		xi0, xi1 := L[j], L[j+16]
		b[4+j] = xi0&0xF | (xi1&0xF)<<4
		qh |= uint32(xi0&0x10) >> 4 << j
		qh |= uint32(xi1&0x10) >> 4 << (j + 16)
	}
	binary.LittleEndian.PutUint32(b, qh)
}

func quantizeRowQ5_0Impl(y []byte, x []float32, qw []float32) {
	if qw == nil {
		quantizeRowQ5_0(y, x, nil)
		return
	}
	var weight [block.QK]float32
	var L [block.QK]int8
	var U [block.QK]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/block.QK; ib++ {
		xb := x[ib*block.QK : (ib+1)*block.QK]
		b := y[ib*block.Q5_0Bytes : (ib+1)*block.Q5_0Bytes]
		importanceWeights(weight[:], qw[ib*block.QK:], xb, sigma2)
		d := makeQxQuants(block.QK, 16, xb, L[:], 1, weight[:])
		block.StoreF16(b, d)
		for j := range L {
			U[j] = uint8(L[j])
		}
		pack5(b[2:], U[:])
	}
}

func quantizeRowQ5_1Impl(y []byte, x []float32, qw []float32) {
	if qw == nil {
		quantizeRowQ5_1(y, x, nil)
		return
	}
	var weight [block.QK]float32
	var L, Laux [block.QK]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/block.QK; ib++ {
		xb := x[ib*block.QK : (ib+1)*block.QK]
		b := y[ib*block.Q5_1Bytes : (ib+1)*block.Q5_1Bytes]
		importanceWeights(weight[:], qw[ib*block.QK:], xb, sigma2)
		d, theMin := makeQkx3Quants(block.QK, 31, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		block.StoreF16(b, d)
		block.StoreF16(b[2:], -theMin)
		pack5(b[4:], L[:])
	}
}

func quantizeRowQ2KImpl(y []byte, x []float32, qw []float32) {
	var (
		L      [block.QK_K]uint8
		Laux   [16]uint8
		mins   [16]float32
		scales [16]float32
		sw     [16]float32
		weight [16]float32
		Ls, Lm [16]uint8
	)
	for i := 0; i < len(x)/block.QK_K; i++ {
		xb := x[i*block.QK_K : (i+1)*block.QK_K]
		b := y[i*block.Q2_KBytes : (i+1)*block.Q2_KBytes]
		var sumX2 float32
		for _, v := range xb {
			sumX2 += float32(v * v)
		}
		sigma2 := sumX2 / block.QK_K
		for j := 0; j < 16; j++ {
			importanceWeights(weight[:], qw[i*block.QK_K+16*j:], xb[16*j:16*j+16], sigma2)
			sw[j] = 0
			for _, w := range weight {
				sw[j] += w
			}
			scales[j], mins[j] = makeQkx3Quants(16, 3, xb[16*j:], weight[:], L[16*j:], Laux[:], -0.9, 0.05, 36, false)
		}
		dm := makeQpQuants(16, 15, scales[:], Ls[:], sw[:])
		mm := makeQpQuants(16, 15, mins[:], Lm[:], sw[:])
		block.StoreF16(b[80:], dm)
		block.StoreF16(b[82:], mm)
		for j := 0; j < 16; j++ {
			b[j] = Ls[j] | Lm[j]<<4
		}
		requantizeQ2K(b, xb, L[:])
		packQ2(b[16:80], L[:])
	}
}

func quantizeRowQ3KImpl(y []byte, x []float32, qw []float32) {
	var (
		L      [block.QK_K]int8
		scales [16]float32
		weight [16]float32
		sw     [16]float32
		Ls     [16]int8
	)
	for i := 0; i < len(x)/block.QK_K; i++ {
		xb := x[i*block.QK_K : (i+1)*block.QK_K]
		b := y[i*block.Q3_KBytes : (i+1)*block.Q3_KBytes]
		var sumX2 float32
		for _, v := range xb {
			sumX2 += float32(v * v)
		}
		sigma2 := 2 * sumX2 / block.QK_K
		for j := 0; j < 16; j++ {
			importanceWeights(weight[:], qw[i*block.QK_K+16*j:], xb[16*j:16*j+16], sigma2)
			var sumw float32
			for _, w := range weight {
				sumw += w
			}
			sw[j] = sumw
			scales[j] = makeQxQuants(16, 4, xb[16*j:], L[16*j:], 1, weight[:])
		}
		sc := b[96:108]
		for j := range sc {
			sc[j] = 0
		}
		dBlock := makeQxQuants(16, 32, scales[:], Ls[:], 1, sw[:])
		for j := 0; j < 16; j++ {
			putScaleQ3K(sc, j, Ls[j])
		}
		block.StoreF16(b[108:], dBlock)
		requantizeQ3K(b, xb, L[:])
		packQ3K(b, L[:])
	}
}

// quantizeBlockK4Impl chooses the sub-block values, scales and mins of one
// Q4_K (nmax 15) or Q5_K (nmax 31) block under importance weights qw.
func quantizeBlockK4Impl(b []byte, xb, qw []float32, L []uint8, nmax int) {
	var (
		Laux          [32]uint8
		Ls, Lm        [8]uint8
		weights       [32]float32
		sw            [8]float32
		mins, scales  [8]float32
		sumX2, sigma2 float32
	)
	for _, v := range xb {
		sumX2 += float32(v * v)
	}
	sigma2 = 2 * sumX2 / block.QK_K
	for j := 0; j < 8; j++ {
		importanceWeights(weights[:], qw[32*j:], xb[32*j:32*j+32], sigma2)
		var sumw float32
		for _, w := range weights {
			sumw += w
		}
		sw[j] = sumw
		scales[j], mins[j] = makeQkx3Quants(32, nmax, xb[32*j:], weights[:], L[32*j:], Laux[:], -0.9, 0.05, 36, false)
	}
	dBlock := makeQpQuants(8, 63, scales[:], Ls[:], sw[:])
	mBlock := makeQpQuants(8, 63, mins[:], Lm[:], sw[:])
	sc := b[4:16]
	for j := 0; j < 8; j++ {
		putScalesK4(sc, j, min(63, Ls[j]), min(63, Lm[j]))
	}
	block.StoreF16(b[0:], dBlock)
	block.StoreF16(b[2:], mBlock)
}
