package block

import (
	"encoding/binary"
)

// The non-linear 4-bit formats: each 4-bit index q selects a value of
// IQ4NLValues, so that the 16 levels sit closer together near zero, where
// weights are dense. All fields are little-endian.
//
//	IQ4_NL (18 bytes): d | qs[16]
//	    32 elements: w = d·IQ4NLValues[q]; qs packed as Q4_0's
//	IQ4_XS (136 bytes): d | scales_h (u16) | scales_l[4] | qs[128]
//	    256 elements in 8 sub-blocks of 32 with 6-bit scales ls (offset
//	    32): the low 4 bits in the nibbles of scales_l (sub-block j in
//	    byte j/2, low nibble first), the high 2 bits in bits 2j, 2j+1 of
//	    scales_h; w = d·(ls−32)·IQ4NLValues[q]; qs packed as Q4_0's per
//	    sub-block; the activation format is Q8_K
const (
	QK4_NL = 32

	IQ4_NLBytes = 2 + QK4_NL/2
	IQ4_XSBytes = 2 + 2 + QK_K/64 + QK_K/2
)

// IQ4NLValues are the 16 levels of IQ4_NL and IQ4_XS (ggml's
// kvalues_iq4nl).
var IQ4NLValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// The 4-bit non-linear formats IQ4_NL (blocks of 32) and IQ4_XS (super-blocks
// of 256 with 6-bit sub-block scales). Both map each value to the nearest
// of 16 fixed levels; llama-quantize encodes them with quantize_iq4_nl and
// quantize_iq4_xs (weights x² or from the importance matrix, 7 scale tries).

// iq4NTry is the number of scales tried around the first estimate.
const iq4NTry = 7

// iq4Upper[f+127] is the index of the smallest level above f, for integer
// f in [-127, 112]: since the levels are integers, the smallest level above
// x is the smallest above floor(x).
var iq4Upper = func() (t [240]uint8) {
	for f := -127; f <= 112; f++ {
		k := 0
		for int(IQ4NLValues[k]) <= f {
			k++
		}
		t[f+127] = uint8(k)
	}
	return t
}()

// bestIndexIQ4 returns the index of the level nearest x, deciding between
// the two levels around x exactly as ggml's best_index_int8 does (its
// bisection ends at the same pair; the lookup only finds it faster).
func bestIndexIQ4(x float32) uint8 {
	if x <= -127 {
		return 0
	}
	if x >= 113 || x != x {
		// A NaN (from a block whose weights are all zero) fails every
		// comparison of the bisection, which then ends at the top level.
		return 15
	}
	f := int32(x)
	if float32(f) > x {
		f-- // floor for negative non-integers
	}
	mu := iq4Upper[f+127]
	lo, hi := float32(IQ4NLValues[mu-1]), float32(IQ4NLValues[mu])
	if x-lo < hi-x {
		return mu - 1
	}
	return mu
}

// quantizeIQ4Super encodes one super-block of n (32 or 256) values as
// quantize_row_iq4_nl_impl does. It writes the fp16 scale to dh, the packed
// nibbles to q4 and, for n > 32, the 6-bit sub-block scales to scalesH and
// scalesL. qw (nil, or n importance weights) replaces x² as the weights.
func quantizeIQ4Super(n int, x []float32, dh, q4, scalesH, scalesL []byte, qw []float32, ntry int) {
	const blockSize = 32
	var (
		L      [QK_K]uint8
		weight [blockSize]float32
		scales [QK_K / blockSize]float32
	)
	var sigma2 float32
	for _, v := range x[:n] {
		sigma2 += float32(v * v)
	}
	sigma2 *= 2 / float32(n)

	for j := range q4[:n/2] {
		q4[j] = 0
	}
	StoreF16(dh, 0)

	v0 := float32(IQ4NLValues[0])
	var maxScale, amaxScale float32
	for ib := 0; ib < n/blockSize; ib++ {
		xb := x[ib*blockSize : (ib+1)*blockSize]
		Lb := L[ib*blockSize : (ib+1)*blockSize]
		if qw != nil {
			w := qw[ib*blockSize:]
			for j, v := range xb {
				weight[j] = w[j] * sqrt32(sigma2+float32(v*v))
			}
		} else {
			for j, v := range xb {
				weight[j] = v * v
			}
		}
		max, amax := maxAbsSigned(xb)
		if amax < groupMaxEps {
			scales[ib] = 0
			continue
		}
		var d float32
		if ntry > 0 {
			d = -max / v0
		} else {
			d = max / v0
		}
		id := 1 / d
		var sumqx, sumq2 float32
		for j, v := range xb {
			l := bestIndexIQ4(id * v)
			Lb[j] = l
			q := float32(IQ4NLValues[l])
			w := weight[j]
			sumqx += float32(w * q * v)
			sumq2 += float32(w * q * q)
		}
		d = sumqx / sumq2
		best := d * sumqx
		for itry := -ntry; itry <= ntry; itry++ {
			id = float32(itry+int(IQ4NLValues[0])) / max
			sumqx, sumq2 = 0, 0
			for j, v := range xb {
				l := bestIndexIQ4(id * v)
				q := float32(IQ4NLValues[l])
				w := weight[j]
				sumqx += float32(w * q * v)
				sumq2 += float32(w * q * q)
			}
			if sumq2 > 0 && sumqx*sumqx > best*sumq2 {
				d = sumqx / sumq2
				best = d * sumqx
			}
		}
		scales[ib] = d
		if ad := abs32(d); ad > amaxScale {
			amaxScale = ad
			maxScale = d
		}
	}

	if nb := n / blockSize; nb > 1 {
		var sh uint16
		for j := range scalesL[:nb/2] {
			scalesL[j] = 0
		}
		d := -maxScale / 32
		StoreF16(dh, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for ib := 0; ib < nb; ib++ {
			l := clampInt(NearestInt(id*scales[ib]), -32, 31)
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			Lb := L[ib*blockSize : (ib+1)*blockSize]
			for j, v := range x[ib*blockSize : (ib+1)*blockSize] {
				Lb[j] = bestIndexIQ4(idl * v)
			}
			l += 32
			lLow, lHigh := uint8(l&0xF), uint16(l>>4)
			if ib%2 == 0 {
				scalesL[ib/2] = lLow
			} else {
				scalesL[ib/2] |= lLow << 4
			}
			sh |= lHigh << (2 * (ib % 8))
		}
		binary.LittleEndian.PutUint16(scalesH, sh)
	} else {
		StoreF16(dh, scales[0])
		if ntry > 0 {
			var id float32
			if scales[0] != 0 {
				id = 1 / scales[0]
			}
			for j, v := range x[:n] {
				L[j] = bestIndexIQ4(id * v)
			}
		}
	}

	for i := 0; i < n/32; i++ {
		for j := 0; j < 16; j++ {
			q4[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// EncodeIQ4_NL encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_iq4_nl_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_iq4_nl does.
func EncodeIQ4_NL(y []byte, x []float32, qw []float32) {
	for i := 0; i < len(x)/32; i++ {
		b := y[i*IQ4_NLBytes : (i+1)*IQ4_NLBytes]
		var w []float32
		if qw != nil {
			w = qw[i*32 : (i+1)*32]
		}
		quantizeIQ4Super(32, x[i*32:(i+1)*32], b[0:2], b[2:18], nil, nil, w, iq4NTry)
	}
}

// DecodeIQ4_NL decodes the whole IQ4_NL blocks of x into y (ggml's
// dequantize_row_iq4_nl).
func DecodeIQ4_NL(y []float32, x []byte) {
	for i := 0; i < len(y)/32; i++ {
		b := x[i*IQ4_NLBytes:]
		d := LoadF16(b)
		for j := 0; j < 16; j++ {
			y[i*32+j] = d * float32(IQ4NLValues[b[2+j]&0xF])
			y[i*32+j+16] = d * float32(IQ4NLValues[b[2+j]>>4])
		}
	}
}

// EncodeIQ4_XS encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_iq4_xs_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_iq4_xs does.
func EncodeIQ4_XS(y []byte, x []float32, qw []float32) {
	for i := 0; i < len(x)/QK_K; i++ {
		b := y[i*IQ4_XSBytes : (i+1)*IQ4_XSBytes]
		var w []float32
		if qw != nil {
			w = qw[i*QK_K : (i+1)*QK_K]
		}
		quantizeIQ4Super(QK_K, x[i*QK_K:(i+1)*QK_K], b[0:2], b[8:136], b[2:4], b[4:8], w, iq4NTry)
	}
}

// DecodeIQ4_XS decodes the whole IQ4_XS blocks of x into y (ggml's
// dequantize_row_iq4_xs).
func DecodeIQ4_XS(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*IQ4_XSBytes : (i+1)*IQ4_XSBytes]
		d := LoadF16(b)
		sh := binary.LittleEndian.Uint16(b[2:])
		out := y[i*QK_K:]
		for ib := 0; ib < 8; ib++ {
			ls := int32(b[4+ib/2]>>(4*(ib%2))&0xF) | int32((sh>>(2*ib))&3)<<4
			dl := d * float32(ls-32)
			qs := b[8+16*ib:]
			for j := 0; j < 16; j++ {
				out[32*ib+j] = dl * float32(IQ4NLValues[qs[j]&0xF])
				out[32*ib+j+16] = dl * float32(IQ4NLValues[qs[j]>>4])
			}
		}
	}
}

// The reference dot products of IQ4 rows with their activation format:
// integer block sums scaled as ggml-cpu's vec_dot functions do, in the same
// order, so that the assembly kernels can match them bit for bit.

// DotIQ4_NLQ8_0 returns the dot product of n elements of an IQ4_NL row w with a
// Q8_0 activation row a.
func DotIQ4_NLQ8_0(w, a []byte, n int) float32 { return dotNibbles(w, a, n, &IQ4NLValues) }

// DotIQ4_XSQ8_K returns the dot product of n elements of an IQ4_XS row w with a
// Q8_K activation row a.
//
// block_iq4_xs is d, scales_h u16, scales_l[4], qs[128];
// sub-block j of 32 takes 16 bytes, low nibbles first.
func DotIQ4_XSQ8_K(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/QK_K; b++ {
		x := w[b*IQ4_XSBytes : (b+1)*IQ4_XSBytes]
		dy, q8, _ := q8K(a[b*Q8_KBytes:])
		sh := binary.LittleEndian.Uint16(x[2:])
		sl, qs := x[4:8], x[8:136]
		isum := 0
		for j := 0; j < 8; j++ {
			ls := int(sl[j/2]>>(4*(j&1))&0xf) | int(sh>>(2*j)&3)<<4
			sub := 0
			for l := 0; l < 16; l++ {
				sub += int(IQ4NLValues[qs[16*j+l]&0xf]) * i8(q8[32*j+l])
				sub += int(IQ4NLValues[qs[16*j+l]>>4]) * i8(q8[32*j+16+l])
			}
			isum += (ls - 32) * sub
		}
		s += LoadF16(x) * dy * float32(isum)
	}
	return s
}
