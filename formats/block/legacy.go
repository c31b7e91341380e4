package block

import (
	"encoding/binary"
	"math"
)

// The legacy formats: blocks of 32 elements with one f16 scale d (and, for
// the _1 formats, an f16 offset m). All fields are little-endian.
//
//	Q4_0 (18 bytes): d | qs[16]          w = d·(q − 8), q 4 bits
//	Q4_1 (20 bytes): d m | qs[16]        w = d·q + m, q 4 bits
//	Q5_0 (22 bytes): d | qh[4] | qs[16]  w = d·(q − 16), q 5 bits
//	Q5_1 (24 bytes): d m | qh[4] | qs[16]  w = d·q + m, q 5 bits
//	Q8_0 (34 bytes): d | qs[32]          w = d·q, q int8
//	Q8_1 (36 bytes): d s | qs[32]        w = d·q, s = d·Σq (an activation format)
//
// qs packs two 4-bit quants a byte: element j in the low nibble of byte j
// and element j+16 in the high nibble (j < 16). qh is a 32-bit word whose
// bit j is the fifth bit of element j. Q8_0 and Q8_1 are also the
// activation formats the dot products of the 4- and 5-bit formats take
// (Q8_1 for the ones with an offset).
const (
	QK = 32 // elements per legacy block (ggml's QK4_0 … QK8_1)

	Q4_0Bytes = 2 + QK/2
	Q4_1Bytes = 4 + QK/2
	Q5_0Bytes = 2 + 4 + QK/2
	Q5_1Bytes = 4 + 4 + QK/2
	Q8_0Bytes = 2 + QK
	Q8_1Bytes = 4 + QK
)

// The 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1. Without an
// importance matrix they are encoded as quantize_row_<type>_ref does.

func minMax(x []float32) (min, max float32) {
	min, max = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	return min, max
}

// truncToInt converts like a C float-to-int cast (toward zero) for values in
// int32 range.
func truncToInt(f float32) int32 { return int32(f) }

// roundAway is C's roundf: half away from zero.
func roundAway(f float32) float32 { return float32(math.Round(float64(f))) }

// eachBlock calls encode for every block of a row: b is the block's size
// bytes of y, xb its QK elements of x, and w their importance weights,
// qw·√(σ² + x²) with σ² the row's mean square (ggml's quantize_row_*_impl),
// or nil when qw is nil (the _ref encoders).
func eachBlock(y []byte, x, qw []float32, size int, encode func(b []byte, xb, w []float32)) {
	var weight [QK]float32
	var sigma2 float32
	if qw != nil {
		sigma2 = rowSigma2(x)
	}
	for i := 0; i < len(x)/QK; i++ {
		xb := x[i*QK : (i+1)*QK]
		var w []float32
		if qw != nil {
			importanceWeights(weight[:], qw[i*QK:], xb, sigma2)
			w = weight[:]
		}
		encode(y[i*size:(i+1)*size], xb, w)
	}
}

// packNibbles stores 32 4-bit quants: element j in the low nibble of qs[j]
// and element j+16 in the high nibble.
func packNibbles(qs []byte, L *[QK]uint8) {
	for j := 0; j < QK/2; j++ {
		qs[j] = L[j] | L[j+QK/2]<<4
	}
}

// pack5 stores 32 5-bit quants at b: qh (bit j the fifth bit of element j)
// then the low 4 bits as packNibbles does.
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

// EncodeQ4_0 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q4_0_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q4_0 does.
func EncodeQ4_0(y []byte, x []float32, qw []float32) {
	var L [QK]int8
	var U [QK]uint8
	eachBlock(y, x, qw, Q4_0Bytes, func(b []byte, xb, w []float32) {
		if w != nil {
			d := makeQxQuants(QK, 8, xb, L[:], 1, w)
			StoreF16(b, d)
			for j := range L {
				U[j] = uint8(L[j])
			}
			packNibbles(b[2:], &U)
			return
		}
		max, _ := maxAbsSigned(xb)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		StoreF16(b, d)
		for j, v := range xb {
			x0 := v * id
			U[j] = uint8(min(15, int8(truncToInt(x0+8.5))))
		}
		packNibbles(b[2:], &U)
	})
}

// DecodeQ4_0 decodes the whole Q4_0 blocks of x into y (ggml's
// dequantize_row_q4_0).
func DecodeQ4_0(y []float32, x []byte) {
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*Q4_0Bytes:]
		d := LoadF16(b)
		for j := 0; j < QK/2; j++ {
			y[i*QK+j] = float32(int32(b[2+j]&0xF)-8) * d
			y[i*QK+j+QK/2] = float32(int32(b[2+j]>>4)-8) * d
		}
	}
}

// EncodeQ4_1 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q4_1_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q4_1 does.
func EncodeQ4_1(y []byte, x []float32, qw []float32) {
	var L, Laux [QK]uint8
	eachBlock(y, x, qw, Q4_1Bytes, func(b []byte, xb, w []float32) {
		if w != nil {
			d, theMin := makeQkx3Quants(QK, 15, xb, w, L[:], Laux[:], -0.9, 0.05, 36, false)
			StoreF16(b, d)
			StoreF16(b[2:], -theMin)
			packNibbles(b[4:], &L)
			return
		}
		min, max := minMax(xb)
		d := (max - min) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		StoreF16(b, d)
		StoreF16(b[2:], min)
		for j, v := range xb {
			x0 := (v - min) * id
			L[j] = uint8(minI8(15, int8(truncToInt(x0+0.5))))
		}
		packNibbles(b[4:], &L)
	})
}

func minI8(a, b int8) int8 {
	if a < b {
		return a
	}
	return b
}

// DecodeQ4_1 decodes the whole Q4_1 blocks of x into y (ggml's
// dequantize_row_q4_1).
func DecodeQ4_1(y []float32, x []byte) {
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*Q4_1Bytes:]
		d, m := LoadF16(b), LoadF16(b[2:])
		for j := 0; j < QK/2; j++ {
			y[i*QK+j] = float32(float32(b[4+j]&0xF)*d) + m
			y[i*QK+j+QK/2] = float32(float32(b[4+j]>>4)*d) + m
		}
	}
}

// EncodeQ5_0 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q5_0_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q5_0 does.
func EncodeQ5_0(y []byte, x []float32, qw []float32) {
	var L [QK]int8
	var U [QK]uint8
	eachBlock(y, x, qw, Q5_0Bytes, func(b []byte, xb, w []float32) {
		if w != nil {
			d := makeQxQuants(QK, 16, xb, L[:], 1, w)
			StoreF16(b, d)
			for j := range L {
				U[j] = uint8(L[j])
			}
			pack5(b[2:], U[:])
			return
		}
		max, _ := maxAbsSigned(xb)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		StoreF16(b, d)
		for j, v := range xb {
			x0 := v * id
			U[j] = uint8(min(31, int8(truncToInt(x0+16.5))))
		}
		pack5(b[2:], U[:])
	})
}

// DecodeQ5_0 decodes the whole Q5_0 blocks of x into y (ggml's
// dequantize_row_q5_0).
func DecodeQ5_0(y []float32, x []byte) {
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*Q5_0Bytes:]
		d := LoadF16(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		for j := 0; j < QK/2; j++ {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[i*QK+j] = float32(int32(b[6+j]&0xF|h0)-16) * d
			y[i*QK+j+QK/2] = float32(int32(b[6+j]>>4|h1)-16) * d
		}
	}
}

// EncodeQ5_1 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q5_1_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q5_1 does.
func EncodeQ5_1(y []byte, x []float32, qw []float32) {
	var L, Laux [QK]uint8
	eachBlock(y, x, qw, Q5_1Bytes, func(b []byte, xb, w []float32) {
		if w != nil {
			d, theMin := makeQkx3Quants(QK, 31, xb, w, L[:], Laux[:], -0.9, 0.05, 36, false)
			StoreF16(b, d)
			StoreF16(b[2:], -theMin)
			pack5(b[4:], L[:])
			return
		}
		min, max := minMax(xb)
		d := (max - min) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		StoreF16(b, d)
		StoreF16(b[2:], min)
		for j, v := range xb {
			x0 := (v - min) * id
			L[j] = uint8(truncToInt(x0 + 0.5))
		}
		pack5(b[4:], L[:])
	})
}

// DecodeQ5_1 decodes the whole Q5_1 blocks of x into y (ggml's
// dequantize_row_q5_1).
func DecodeQ5_1(y []float32, x []byte) {
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*Q5_1Bytes:]
		d, m := LoadF16(b), LoadF16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		for j := 0; j < QK/2; j++ {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[i*QK+j] = float32(float32(b[8+j]&0xF|h0)*d) + m
			y[i*QK+j+QK/2] = float32(float32(b[8+j]>>4|h1)*d) + m
		}
	}
}

// EncodeQ8_0 encodes x (a whole number of blocks) into y as ggml's
// quantize_row_q8_0_ref does; it takes no importance weights.
func EncodeQ8_0(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/QK; i++ {
		b := y[i*Q8_0Bytes : (i+1)*Q8_0Bytes]
		d, _ := quantize8(b[2:], x[i*QK:(i+1)*QK])
		StoreF16(b, d)
	}
}

// DecodeQ8_0 decodes the whole Q8_0 blocks of x into y (ggml's
// dequantize_row_q8_0).
func DecodeQ8_0(y []float32, x []byte) { decode8(y, x, Q8_0Bytes) }

// EncodeQ8_1 encodes x (a whole number of blocks) into y as ggml's
// quantize_row_q8_1_ref does; it takes no importance weights.
func EncodeQ8_1(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/QK; i++ {
		b := y[i*Q8_1Bytes : (i+1)*Q8_1Bytes]
		d, sum := quantize8(b[4:], x[i*QK:(i+1)*QK])
		StoreF16(b, d)
		StoreF16(b[2:], float32(sum)*d)
	}
}

// DecodeQ8_1 decodes the whole Q8_1 blocks of x into y (ggml's
// dequantize_row_q8_1).
func DecodeQ8_1(y []float32, x []byte) { decode8(y, x, Q8_1Bytes) }

// quantize8 writes the 32 int8 quants of xb to qs with the scale
// d = amax/127, rounding half away from zero (the _ref quantizers), and
// returns d and the sum of the quants.
func quantize8(qs []byte, xb []float32) (d float32, sum int32) {
	var amax float32
	for _, v := range xb {
		amax = max(amax, abs32(v))
	}
	d = amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	for j, v := range xb {
		q := int8(truncToInt(roundAway(v * id)))
		qs[j] = byte(q)
		sum += int32(q)
	}
	return d, sum
}

// decode8 decodes blocks of size bytes whose quants are the last 32 bytes
// and whose scale d is the first f16 (Q8_0, Q8_1).
func decode8(y []float32, x []byte, size int) {
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*size : (i+1)*size]
		d, qs := LoadF16(b), b[size-QK:]
		for j := 0; j < QK; j++ {
			y[i*QK+j] = float32(int8(qs[j])) * d
		}
	}
}

// The reference dot products of legacy-format rows with their activation
// format: integer block sums scaled as ggml-cpu's vec_dot functions do, in
// the same order, so that the assembly kernels can match them bit for bit.

// DotQ4_0Q8_0 returns the dot product of n elements of a Q4_0 row w with a
// Q8_0 activation row a.
func DotQ4_0Q8_0(w, a []byte, n int) float32 { return dotNibbles(w, a, n, &q4_0Values) }

// q4_0Values maps a Q4_0 nibble to its quant (q − 8), so that Q4_0 and
// IQ4_NL, which differ only in that map, share dotNibbles.
var q4_0Values = [16]int8{-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7}

// dotNibbles is the dot product of n elements of a row of 18-byte blocks
// (f16 d, 16 bytes of nibbles laid out as Q4_0's) whose nibble q stands for
// values[q], with a Q8_0 activation row.
func dotNibbles(w, a []byte, n int, values *[16]int8) float32 {
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*Q4_0Bytes:], a[b*Q8_0Bytes:]
		isum := 0
		for j := 0; j < 16; j++ {
			isum += int(values[x[2+j]&0xf]) * i8(y[2+j])
			isum += int(values[x[2+j]>>4]) * i8(y[2+16+j])
		}
		s += float32(isum) * (LoadF16(x) * LoadF16(y))
	}
	return s
}

// DotQ4_1Q8_1 returns the dot product of n elements of a Q4_1 row w with a
// Q8_1 activation row a.
func DotQ4_1Q8_1(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*Q4_1Bytes:], a[b*Q8_1Bytes:]
		isum := 0
		for j := 0; j < 16; j++ {
			isum += int(x[4+j]&0xf) * i8(y[4+j])
			isum += int(x[4+j]>>4) * i8(y[4+16+j])
		}
		s += float32(isum)*(LoadF16(x)*LoadF16(y)) + LoadF16(x[2:])*LoadF16(y[2:])
	}
	return s
}

// DotQ5_0Q8_0 returns the dot product of n elements of a Q5_0 row w with a
// Q8_0 activation row a.
func DotQ5_0Q8_0(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*Q5_0Bytes:], a[b*Q8_0Bytes:]
		qh := binary.LittleEndian.Uint32(x[2:])
		isum := 0
		for j := 0; j < 16; j++ {
			lo := int(x[6+j]&0xf) | int(qh>>j&1)<<4
			hi := int(x[6+j]>>4) | int(qh>>(j+16)&1)<<4
			isum += (lo-16)*i8(y[2+j]) + (hi-16)*i8(y[2+16+j])
		}
		s += float32(isum) * (LoadF16(x) * LoadF16(y))
	}
	return s
}

// DotQ5_1Q8_1 returns the dot product of n elements of a Q5_1 row w with a
// Q8_1 activation row a.
func DotQ5_1Q8_1(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*Q5_1Bytes:], a[b*Q8_1Bytes:]
		qh := binary.LittleEndian.Uint32(x[4:])
		isum := 0
		for j := 0; j < 16; j++ {
			lo := int(x[8+j]&0xf) | int(qh>>j&1)<<4
			hi := int(x[8+j]>>4) | int(qh>>(j+16)&1)<<4
			isum += lo*i8(y[4+j]) + hi*i8(y[4+16+j])
		}
		s += float32(isum)*(LoadF16(x)*LoadF16(y)) + LoadF16(x[2:])*LoadF16(y[2:])
	}
	return s
}

// DotQ8_0Q8_0 returns the dot product of n elements of a Q8_0 row w with a
// Q8_0 activation row a.
func DotQ8_0Q8_0(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*Q8_0Bytes:], a[b*Q8_0Bytes:]
		isum := 0
		for j := 2; j < Q8_0Bytes; j++ {
			isum += i8(x[j]) * i8(y[j])
		}
		s += float32(isum) * (LoadF16(x) * LoadF16(y))
	}
	return s
}

// i8 reads a stored quant as a signed integer.
func i8(b byte) int { return int(int8(b)) }
