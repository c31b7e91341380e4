package block

// The ternary formats of BitNet b1.58 and TriLM models: every weight is
// d·t with t in {-1, 0, 1} and d one fp16 scale per 256 elements (the
// largest magnitude of the block). A trit is stored as u = t+1 in 0..2.
// All fields are little-endian; the activation format is Q8_K.
//
//	TQ1_0 (54 bytes): qs[48] | qh[4] | d
//	    1.6875 bits per weight: five trits per byte of qs and four per
//	    byte of qh, packed base 3 (the first trit most significant) as the
//	    fixed-point fraction b = ⌈u·256/243⌉ of the number u they spell,
//	    so that trit n of b is the top bits of 3·(b·3^n mod 256), i.e.
//	    ((b·3^n mod 256)·3) >> 8; qh's four trits are shifted up by one
//	    place, as if a fifth trit 0 followed. Element order:
//	      e < 160:       qs[e%32], trit e/32
//	      160 ≤ e < 240: qs[32+(e−160)%16], trit (e−160)/16
//	      240 ≤ e:       qh[(e−240)%4], trit (e−240)/4
//	TQ2_0 (66 bytes): qs[64] | d
//	    2 bits per weight: element e (r = e%128) is bits 2·(r/32), +1 of
//	    qs[32·(e/128) + r%32]
const (
	TQ1_0Bytes = (QK_K-4*QK_K/64)/5 + QK_K/64 + 2
	TQ2_0Bytes = QK_K/4 + 2
)

// Offsets of the fields inside the blocks.
const (
	tq1QsBytes = (QK_K - 4*QK_K/64) / 5 // 48: 32 bytes of 5 trits along 32 elements, then 16 along 16
	tq1QhOff   = tq1QsBytes
	tq1QhBytes = QK_K / 64
	// TQ1_0DOff and TQ2_0DOff are where the fp16 scale d sits.
	TQ1_0DOff = tq1QhOff + tq1QhBytes
	TQ2_0DOff = QK_K / 4
)

// ternaryScale returns the scale of a ternary block (its largest
// magnitude) and its inverse, 0 for an all-zero block.
func ternaryScale(x []float32) (d, id float32) {
	d = maxAbs(x)
	if d != 0 {
		id = 1 / d
	}
	return d, id
}

// ternaryCode returns u = t+1 for the value v scaled by id, rounding half
// away from zero as ggml's lroundf does.
func ternaryCode(v, id float32) uint8 { return uint8(int32(roundAway(v*id)) + 1) }

// packTrits packs the trits u (the first most significant) into one
// byte as ⌈Σ u·3^k · 256/243⌉, where the Σ is read as a base-3 number of
// five digits (fewer trits are shifted up to five).
func packTrits(u ...uint8) byte {
	q := 0
	for _, t := range u {
		q = 3*q + int(t)
	}
	for range 5 - len(u) {
		q *= 3
	}
	return byte((q*256 + 242) / 243)
}

// tritAt returns trit n (0 the most significant) of a byte packed by
// packTrits, as u in 0..2.
func tritAt(b byte, n int) int {
	q := b * pow3[n] // mod 256: the fraction's digits from n on
	return int(uint16(q) * 3 >> 8)
}

var pow3 = [5]byte{1, 3, 9, 27, 81}

// EncodeTQ1_0 encodes x (a whole number of blocks) into y as ggml's
// quantize_row_tq1_0_ref. ggml has no importance-weighted TQ1_0 encoder;
// qw is ignored.
func EncodeTQ1_0(y []byte, x []float32, _ []float32) {
	encodeTernary(y, x, TQ1_0Bytes, TQ1_0DOff, func(b []byte, u *[QK_K]uint8) {
		for m := 0; m < 32; m++ {
			b[m] = packTrits(u[m], u[m+32], u[m+64], u[m+96], u[m+128])
		}
		for m := 0; m < 16; m++ {
			e := 160 + m
			b[32+m] = packTrits(u[e], u[e+16], u[e+32], u[e+48], u[e+64])
		}
		for j := 0; j < tq1QhBytes; j++ {
			e := 240 + j
			b[tq1QhOff+j] = packTrits(u[e], u[e+4], u[e+8], u[e+12])
		}
	})
}

// encodeTernary is the block loop of the ternary encoders: each block's
// scale d goes to dOff, and pack stores its trits u = t+1.
func encodeTernary(y []byte, x []float32, size, dOff int, pack func(b []byte, u *[QK_K]uint8)) {
	var u [QK_K]uint8
	for i := 0; i < len(x)/QK_K; i++ {
		b := y[i*size : (i+1)*size]
		xb := x[i*QK_K : (i+1)*QK_K]
		d, id := ternaryScale(xb)
		StoreF16(b[dOff:], d)
		for e, v := range xb {
			u[e] = ternaryCode(v, id)
		}
		pack(b, &u)
	}
}

// unpackTQ1_0 writes the 256 trits u (0..2) of the TQ1_0 block b in
// element order.
func unpackTQ1_0(u *[QK_K]int8, b []byte) {
	for n := 0; n < 5; n++ {
		for m := 0; m < 32; m++ {
			u[32*n+m] = int8(tritAt(b[m], n))
		}
		for m := 0; m < 16; m++ {
			u[160+16*n+m] = int8(tritAt(b[32+m], n))
		}
	}
	for n := 0; n < 4; n++ {
		for j := 0; j < tq1QhBytes; j++ {
			u[240+4*n+j] = int8(tritAt(b[tq1QhOff+j], n))
		}
	}
}

// DecodeTQ1_0 decodes the whole TQ1_0 blocks of x into y (ggml's
// dequantize_row_tq1_0).
func DecodeTQ1_0(y []float32, x []byte) {
	var u [QK_K]int8
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*TQ1_0Bytes : (i+1)*TQ1_0Bytes]
		d := LoadF16(b[TQ1_0DOff:])
		unpackTQ1_0(&u, b)
		for e, t := range u {
			y[i*QK_K+e] = float32(t-1) * d
		}
	}
}

// EncodeTQ2_0 encodes x (a whole number of blocks) into y as ggml's
// quantize_row_tq2_0_ref. ggml has no importance-weighted TQ2_0 encoder;
// qw is ignored.
func EncodeTQ2_0(y []byte, x []float32, _ []float32) {
	encodeTernary(y, x, TQ2_0Bytes, TQ2_0DOff, func(b []byte, u *[QK_K]uint8) {
		for half := 0; half < 2; half++ {
			for m := 0; m < 32; m++ {
				var q byte
				for n := 0; n < 4; n++ {
					q |= u[128*half+32*n+m] << (2 * n)
				}
				b[32*half+m] = q
			}
		}
	})
}

// tq2Code returns u (0..3; 3 never written) of element e of the TQ2_0
// block b.
func tq2Code(b []byte, e int) int {
	r := e % 128
	return int(b[32*(e/128)+r%32] >> (2 * (r / 32)) & 3)
}

// DecodeTQ2_0 decodes the whole TQ2_0 blocks of x into y (ggml's
// dequantize_row_tq2_0).
func DecodeTQ2_0(y []float32, x []byte) {
	for i := 0; i < len(y)/QK_K; i++ {
		b := x[i*TQ2_0Bytes : (i+1)*TQ2_0Bytes]
		d := LoadF16(b[TQ2_0DOff:])
		for e := 0; e < QK_K; e++ {
			y[i*QK_K+e] = float32(tq2Code(b, e)-1) * d
		}
	}
}

// The reference dot products of the ternary rows with Q8_K activations,
// as ggml-cpu's generic vec_dot functions compute them: one exact integer
// sum per block, scaled by d·dy and added to a float32 total.

// DotTQ1_0Q8_K returns the dot product of n elements of a TQ1_0 row w with
// a Q8_K activation row a.
func DotTQ1_0Q8_K(w, a []byte, n int) float32 {
	var u [QK_K]int8
	return dotQ8KBlocks(w, a, n, TQ1_0Bytes, func(b, q8, _ []byte) (float32, float32) {
		unpackTQ1_0(&u, b)
		isum := 0
		for e, t := range u {
			isum += int(t-1) * i8(q8[e])
		}
		return LoadF16(b[TQ1_0DOff:]), float32(isum)
	})
}

// DotTQ2_0Q8_K returns the dot product of n elements of a TQ2_0 row w with
// a Q8_K activation row a.
func DotTQ2_0Q8_K(w, a []byte, n int) float32 {
	return dotQ8KBlocks(w, a, n, TQ2_0Bytes, func(b, q8, _ []byte) (float32, float32) {
		isum := 0
		for e := 0; e < QK_K; e++ {
			isum += (tq2Code(b, e) - 1) * i8(q8[e])
		}
		return LoadF16(b[TQ2_0DOff:]), float32(isum)
	})
}
