package kernels

import (
	"encoding/binary"
	"math"

	"github.com/llqt/llqt/formats/block"
)

// A dotFunc returns the dot product of n elements of a weight row w and an
// activation row a already converted to the weight type's vec_dot format.
type dotFunc func(w, a []byte, n int) float32

func i8(b byte) int { return int(int8(b)) }

func q8K(a []byte) (d float32, qs []byte, bsum func(g int) int) {
	d = math.Float32frombits(binary.LittleEndian.Uint32(a))
	qs = a[4 : 4+block.QK_K]
	bs := a[4+block.QK_K : block.Q8_KBytes]
	return d, qs, func(g int) int { return int(int16(binary.LittleEndian.Uint16(bs[2*g:]))) }
}

func dotF32Go(w, a []byte, n int) float32 {
	w, a = w[:4*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])) *
			math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

// dotF16ActGo multiplies F16 weights with float32 activations that were
// already rounded through f16, which gives the products of ggml's f16·f16 dot.
func dotF16ActGo(w, a []byte, n int) float32 {
	w, a = w[:2*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += f16(w[2*i:]) * math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

// dotBF16ActGo is dotF16ActGo for BF16 weights and bf16-rounded activations.
func dotBF16ActGo(w, a []byte, n int) float32 {
	w, a = w[:2*n], a[:4*n]
	var s float32
	for i := 0; i < n; i++ {
		s += block.BF16ToFloat(binary.LittleEndian.Uint16(w[2*i:])) * math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
	}
	return s
}

func dotQ4_0Q8_0Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK; b++ {
		x, y := w[b*block.Q4_0Bytes:], a[b*block.Q8_0Bytes:]
		isum := 0
		for j := 0; j < 16; j++ {
			isum += (int(x[2+j]&0xf) - 8) * i8(y[2+j])
			isum += (int(x[2+j]>>4) - 8) * i8(y[2+16+j])
		}
		s += float32(isum) * (f16(x) * f16(y))
	}
	return s
}

func dotQ4_1Q8_1Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK; b++ {
		x, y := w[b*block.Q4_1Bytes:], a[b*block.Q8_1Bytes:]
		isum := 0
		for j := 0; j < 16; j++ {
			isum += int(x[4+j]&0xf) * i8(y[4+j])
			isum += int(x[4+j]>>4) * i8(y[4+16+j])
		}
		s += float32(isum)*(f16(x)*f16(y)) + f16(x[2:])*f16(y[2:])
	}
	return s
}

func dotQ5_0Q8_0Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK; b++ {
		x, y := w[b*block.Q5_0Bytes:], a[b*block.Q8_0Bytes:]
		qh := binary.LittleEndian.Uint32(x[2:])
		isum := 0
		for j := 0; j < 16; j++ {
			lo := int(x[6+j]&0xf) | int(qh>>j&1)<<4
			hi := int(x[6+j]>>4) | int(qh>>(j+16)&1)<<4
			isum += (lo-16)*i8(y[2+j]) + (hi-16)*i8(y[2+16+j])
		}
		s += float32(isum) * (f16(x) * f16(y))
	}
	return s
}

func dotQ5_1Q8_1Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK; b++ {
		x, y := w[b*block.Q5_1Bytes:], a[b*block.Q8_1Bytes:]
		qh := binary.LittleEndian.Uint32(x[4:])
		isum := 0
		for j := 0; j < 16; j++ {
			lo := int(x[8+j]&0xf) | int(qh>>j&1)<<4
			hi := int(x[8+j]>>4) | int(qh>>(j+16)&1)<<4
			isum += lo*i8(y[4+j]) + hi*i8(y[4+16+j])
		}
		s += float32(isum)*(f16(x)*f16(y)) + f16(x[2:])*f16(y[2:])
	}
	return s
}

func dotQ8_0Q8_0Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK; b++ {
		x, y := w[b*block.Q8_0Bytes:], a[b*block.Q8_0Bytes:]
		isum := 0
		for j := 2; j < block.Q8_0Bytes; j++ {
			isum += i8(x[j]) * i8(y[j])
		}
		s += float32(isum) * (f16(x) * f16(y))
	}
	return s
}

func dotIQ4NLQ8_0Go(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK4_NL; b++ {
		x, y := w[b*block.IQ4_NLBytes:], a[b*block.Q8_0Bytes:]
		isum := 0
		for j := 0; j < 16; j++ {
			isum += int(block.IQ4NLValues[x[2+j]&0xf]) * i8(y[2+j])
			isum += int(block.IQ4NLValues[x[2+j]>>4]) * i8(y[2+16+j])
		}
		s += float32(isum) * (f16(x) * f16(y))
	}
	return s
}

// dotQ2_KQ8_KGo: block_q2_K is scales[16] (scale low nibble, min high
// nibble, one per 16 elements), qs[64] (2-bit quants), d, dmin. Each 128
// elements take 32 bytes, shifted by 0, 2, 4, 6 for successive 32-element runs.
func dotQ2_KQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.Q2_KBytes : (b+1)*block.Q2_KBytes]
		dy, q8, bsum := q8K(a[b*block.Q8_KBytes:])
		sc := x[:16]
		summs := 0
		for g := 0; g < 16; g++ {
			summs += bsum(g) * int(sc[g]>>4)
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
		s += dy*f16(x[80:])*float32(isum) - dy*f16(x[82:])*float32(summs)
	}
	return s
}

// q3KScale unpacks the 6-bit scale of group g (of 16) from the 12 packed
// bytes of a block_q3_K, without the -32 offset.
func q3KScale(sc []byte, g int) int {
	var lo int
	if g < 8 {
		lo = int(sc[g] & 0xf)
	} else {
		lo = int(sc[g-8] >> 4)
	}
	hi := int(sc[8+g%4]>>(2*(g/4))) & 3
	return lo | hi<<4
}

// dotQ3_KQ8_KGo: block_q3_K is hmask[32], qs[64], scales[12], d. The
// quants are laid out as Q2_K's; bit 4*half+j of hmask[l] clear means -4.
func dotQ3_KQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.Q3_KBytes : (b+1)*block.Q3_KBytes]
		dy, q8, _ := q8K(a[b*block.Q8_KBytes:])
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
					isum += (q3KScale(sc, e0/16+part) - 32) * sub
				}
			}
		}
		s += f16(x[108:]) * dy * float32(isum)
	}
	return s
}

// dotQ4_KQ8_KGo: block_q4_K is d, dmin, scales[12], qs[128]; each 64
// elements take the low then the high nibbles of 32 bytes.
func dotQ4_KQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.Q4_KBytes : (b+1)*block.Q4_KBytes]
		dy, q8, bsum := q8K(a[b*block.Q8_KBytes:])
		scales, qs := x[4:16], x[16:144]
		isum, msum := 0, 0
		for j := 0; j < 8; j++ {
			sc, m := block.ScaleMinK4(j, scales)
			shift := uint(4 * (j & 1))
			q, y := qs[32*(j/2):32*(j/2)+32], q8[32*j:32*j+32]
			sub := 0
			for l := range 32 {
				sub += int(q[l]>>shift&0xf) * i8(y[l])
			}
			isum += int(sc) * sub
			msum += int(m) * (bsum(2*j) + bsum(2*j+1))
		}
		s += dy*f16(x)*float32(isum) - dy*f16(x[2:])*float32(msum)
	}
	return s
}

// dotQ5_KQ8_KGo: block_q5_K is d, dmin, scales[12], qh[32], qs[128].
func dotQ5_KQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.Q5_KBytes : (b+1)*block.Q5_KBytes]
		dy, q8, bsum := q8K(a[b*block.Q8_KBytes:])
		scales, qh, qs := x[4:16], x[16:48], x[48:176]
		isum, msum := 0, 0
		for j := 0; j < 8; j++ {
			sc, m := block.ScaleMinK4(j, scales)
			shift := uint(4 * (j & 1))
			q, y := qs[32*(j/2):32*(j/2)+32], q8[32*j:32*j+32]
			sub := 0
			for l := range 32 {
				v := int(q[l]>>shift&0xf) | int(qh[l]>>j&1)<<4
				sub += v * i8(y[l])
			}
			isum += int(sc) * sub
			msum += int(m) * (bsum(2*j) + bsum(2*j+1))
		}
		s += dy*f16(x)*float32(isum) - dy*f16(x[2:])*float32(msum)
	}
	return s
}

// dotQ6_KQ8_KGo: block_q6_K is ql[128], qh[64], scales[16] int8, d. In each
// 128 elements, run k of 32 takes the low (k<2) or high nibbles of
// ql[32*(k&1):], and bits 2k,2k+1 of qh[l].
func dotQ6_KQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.Q6_KBytes : (b+1)*block.Q6_KBytes]
		dy, q8, _ := q8K(a[b*block.Q8_KBytes:])
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
		s += f16(x[208:]) * dy * float32(isum)
	}
	return s
}

// dotIQ4XSQ8_KGo: block_iq4_xs is d, scales_h u16, scales_l[4], qs[128];
// sub-block j of 32 takes 16 bytes, low nibbles first.
func dotIQ4XSQ8_KGo(w, a []byte, n int) float32 {
	var s float32
	for b := 0; b < n/block.QK_K; b++ {
		x := w[b*block.IQ4_XSBytes : (b+1)*block.IQ4_XSBytes]
		dy, q8, _ := q8K(a[b*block.Q8_KBytes:])
		sh := binary.LittleEndian.Uint16(x[2:])
		sl, qs := x[4:8], x[8:136]
		isum := 0
		for j := 0; j < 8; j++ {
			ls := int(sl[j/2]>>(4*(j&1))&0xf) | int(sh>>(2*j)&3)<<4
			sub := 0
			for l := 0; l < 16; l++ {
				sub += int(block.IQ4NLValues[qs[16*j+l]&0xf]) * i8(q8[32*j+l])
				sub += int(block.IQ4NLValues[qs[16*j+l]>>4]) * i8(q8[32*j+16+l])
			}
			isum += (ls - 32) * sub
		}
		s += f16(x) * dy * float32(isum)
	}
	return s
}
