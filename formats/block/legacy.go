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

// legacyFormat is the layout of the 4- and 5-bit legacy formats, which
// differ only in the width of their quants and in whether a min follows
// the scale: Q4_0, Q4_1, Q5_0 and Q5_1 share one encoder, decoder and dot
// that read the layout from it.
type legacyFormat struct {
	bits   int  // 4 or 5: quants in 0…2^bits−1
	hasMin bool // the _1 formats: w = d·q + m; otherwise w = d·(q − 2^(bits−1))
}

var (
	q4_0 = legacyFormat{bits: 4}
	q4_1 = legacyFormat{bits: 4, hasMin: true}
	q5_0 = legacyFormat{bits: 5}
	q5_1 = legacyFormat{bits: 5, hasMin: true}
)

// qsOffset is where the nibbles start: after d (and m), and for 5 bits the
// 32-bit word of fifth bits.
func (f legacyFormat) qsOffset() int {
	off := 2
	if f.hasMin {
		off += 2
	}
	if f.bits == 5 {
		off += 4
	}
	return off
}

func (f legacyFormat) size() int { return f.qsOffset() + QK/2 }

// zeroPoint is the quant that stands for 0 in the formats without a min.
func (f legacyFormat) zeroPoint() int32 {
	if f.hasMin {
		return 0
	}
	return 1 << (f.bits - 1)
}

// pack stores the 32 quants L of block b: element j in the low nibble of
// byte j and element j+16 in the high nibble, and for 5 bits the fifth bit
// of element j as bit j of the qh word before the nibbles.
func (f legacyFormat) pack(b []byte, L *[QK]uint8) {
	qsOff := f.qsOffset()
	var qh uint32
	for j := 0; j < QK/2; j++ {
		lo, hi := L[j], L[j+QK/2]
		b[qsOff+j] = lo&0xF | hi<<4
		qh |= uint32(lo>>4&1)<<j | uint32(hi>>4&1)<<(j+QK/2)
	}
	if f.bits == 5 {
		binary.LittleEndian.PutUint32(b[qsOff-4:], qh)
	}
}

// unpack reads the 32 quants of block b.
func (f legacyFormat) unpack(b []byte, q *[QK]int32) {
	qsOff := f.qsOffset()
	var qh uint32
	if f.bits == 5 {
		qh = binary.LittleEndian.Uint32(b[qsOff-4:])
	}
	for j, v := range b[qsOff : qsOff+QK/2] {
		q[j] = int32(v&0xF) | int32(qh>>j&1)<<4
		q[j+QK/2] = int32(v>>4) | int32(qh>>(j+QK/2)&1)<<4
	}
}

// encode encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_<type>_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_<type>
// does.
func (f legacyFormat) encode(y []byte, x []float32, qw []float32) {
	var (
		L, Laux [QK]uint8
		Ls      [QK]int8
	)
	top := int8(1<<f.bits - 1) // the largest quant
	eachBlock(y, x, qw, f.size(), func(b []byte, xb, w []float32) {
		switch {
		case f.hasMin && w != nil:
			d, negMin := makeQkx3Quants(QK, int(top), xb, w, L[:], Laux[:], -0.9, 0.05, 36, false)
			StoreF16(b, d)
			StoreF16(b[2:], -negMin)
		case f.hasMin:
			// The range [min, max] maps onto [0, top]. (ggml's Q5_1 code
			// leaves out the clamp to top; it cannot bind, since no
			// element lies above max.)
			min, max := minMax(xb)
			d := (max - min) / float32(top)
			var id float32
			if d != 0 {
				id = 1 / d
			}
			StoreF16(b, d)
			StoreF16(b[2:], min)
			for j, v := range xb {
				x0 := (v - min) * id
				L[j] = uint8(minI8(top, int8(truncToInt(x0+0.5))))
			}
		case w != nil:
			d := makeQxQuants(QK, int(f.zeroPoint()), xb, Ls[:], 1, w)
			StoreF16(b, d)
			for j, l := range Ls {
				L[j] = uint8(l)
			}
		default:
			// The element of largest magnitude maps to quant 0 (value
			// −zeroPoint), the others round to nearest.
			zero := f.zeroPoint()
			max, _ := maxAbsSigned(xb)
			d := max / float32(-zero)
			var id float32
			if d != 0 {
				id = 1 / d
			}
			StoreF16(b, d)
			offset := float32(zero) + 0.5
			for j, v := range xb {
				x0 := v * id
				L[j] = uint8(minI8(top, int8(truncToInt(x0+offset))))
			}
		}
		f.pack(b, &L)
	})
}

func minI8(a, b int8) int8 {
	if a < b {
		return a
	}
	return b
}

// decode decodes the whole blocks of x into y (ggml's
// dequantize_row_<type>).
func (f legacyFormat) decode(y []float32, x []byte) {
	var q [QK]int32
	size, zero := f.size(), f.zeroPoint()
	for i := 0; i < len(y)/QK; i++ {
		b := x[i*size:]
		f.unpack(b, &q)
		d, out := LoadF16(b), y[i*QK:(i+1)*QK]
		if f.hasMin {
			m := LoadF16(b[2:])
			for j, v := range q {
				out[j] = float32(float32(v)*d) + m
			}
			continue
		}
		for j, v := range q {
			out[j] = float32(v-zero) * d
		}
	}
}

// EncodeQ4_0 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q4_0_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q4_0 does.
func EncodeQ4_0(y []byte, x []float32, qw []float32) { q4_0.encode(y, x, qw) }

// DecodeQ4_0 decodes the whole Q4_0 blocks of x into y (ggml's
// dequantize_row_q4_0).
func DecodeQ4_0(y []float32, x []byte) { q4_0.decode(y, x) }

// EncodeQ4_1 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q4_1_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q4_1 does.
func EncodeQ4_1(y []byte, x []float32, qw []float32) { q4_1.encode(y, x, qw) }

// DecodeQ4_1 decodes the whole Q4_1 blocks of x into y (ggml's
// dequantize_row_q4_1).
func DecodeQ4_1(y []float32, x []byte) { q4_1.decode(y, x) }

// EncodeQ5_0 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q5_0_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q5_0 does.
func EncodeQ5_0(y []byte, x []float32, qw []float32) { q5_0.encode(y, x, qw) }

// DecodeQ5_0 decodes the whole Q5_0 blocks of x into y (ggml's
// dequantize_row_q5_0).
func DecodeQ5_0(y []float32, x []byte) { q5_0.decode(y, x) }

// EncodeQ5_1 encodes x (a whole number of blocks) into y: as ggml's
// quantize_row_q5_1_ref with qw nil, otherwise weighting each element by
// qw (the importance matrix, one weight per element), as quantize_q5_1 does.
func EncodeQ5_1(y []byte, x []float32, qw []float32) { q5_1.encode(y, x, qw) }

// DecodeQ5_1 decodes the whole Q5_1 blocks of x into y (ggml's
// dequantize_row_q5_1).
func DecodeQ5_1(y []float32, x []byte) { q5_1.decode(y, x) }

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
	d = maxAbs(xb) / 127
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

// dot is the dot product of n elements of a row w of the format with an
// activation row a, Q8_1 for the formats with a min (whose activation sums
// s meet it) and Q8_0 for the others.
func (f legacyFormat) dot(w, a []byte, n int) float32 {
	size, qsOff, zero := f.size(), f.qsOffset(), int(f.zeroPoint())
	actSize := Q8_0Bytes
	if f.hasMin {
		actSize = Q8_1Bytes
	}
	var s float32
	for b := 0; b < n/QK; b++ {
		x, y := w[b*size:(b+1)*size], a[b*actSize:(b+1)*actSize]
		// The quants straight from the packed bytes, one loop per width:
		// this is the pure-Go kernel set's dot, and unpacking to an array
		// first made it half as fast.
		qs, ys := x[qsOff:qsOff+QK/2], y[actSize-QK:actSize-QK/2]
		yh := y[actSize-QK/2:]
		isum := 0
		if f.bits == 5 {
			qh := binary.LittleEndian.Uint32(x[qsOff-4:])
			for j, v := range qs {
				lo := int(v&0xF) | int(qh>>j&1)<<4
				hi := int(v>>4) | int(qh>>(j+QK/2)&1)<<4
				isum += (lo-zero)*i8(ys[j]) + (hi-zero)*i8(yh[j])
			}
		} else {
			for j, v := range qs {
				isum += (int(v&0xF)-zero)*i8(ys[j]) + (int(v>>4)-zero)*i8(yh[j])
			}
		}
		if f.hasMin {
			s += float32(isum)*(LoadF16(x)*LoadF16(y)) + LoadF16(x[2:])*LoadF16(y[2:])
		} else {
			s += float32(isum) * (LoadF16(x) * LoadF16(y))
		}
	}
	return s
}

// DotQ4_1Q8_1 returns the dot product of n elements of a Q4_1 row w with a
// Q8_1 activation row a.
func DotQ4_1Q8_1(w, a []byte, n int) float32 { return q4_1.dot(w, a, n) }

// DotQ5_0Q8_0 returns the dot product of n elements of a Q5_0 row w with a
// Q8_0 activation row a.
func DotQ5_0Q8_0(w, a []byte, n int) float32 { return q5_0.dot(w, a, n) }

// DotQ5_1Q8_1 returns the dot product of n elements of a Q5_1 row w with a
// Q8_1 activation row a.
func DotQ5_1Q8_1(w, a []byte, n int) float32 { return q5_1.dot(w, a, n) }

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
