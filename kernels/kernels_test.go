package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/x448/float16"
)

// allTypes are the weight types MatMul supports.
var allTypes = []ggml.Type{
	ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16,
	ggml.TypeQ4_0, ggml.TypeQ4_1, ggml.TypeQ5_0, ggml.TypeQ5_1, ggml.TypeQ8_0, ggml.TypeIQ4_NL,
	ggml.TypeQ2_K, ggml.TypeQ3_K, ggml.TypeQ4_K, ggml.TypeQ5_K, ggml.TypeQ6_K, ggml.TypeIQ4_XS,
	ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S,
	ggml.TypeIQ3_XXS, ggml.TypeIQ3_S,
	ggml.TypeTQ1_0, ggml.TypeTQ2_0, ggml.TypeIQ1_S, ggml.TypeIQ1_M,
}

// scaleOffsets lists, per block type, where its f16 scales sit, so random
// blocks get sane scales instead of random bit patterns (NaN, inf).
var scaleOffsets = map[ggml.Type][]int{
	ggml.TypeQ4_0: {0}, ggml.TypeQ4_1: {0, 2}, ggml.TypeQ5_0: {0}, ggml.TypeQ5_1: {0, 2},
	ggml.TypeQ8_0: {0}, ggml.TypeIQ4_NL: {0}, ggml.TypeQ2_K: {80, 82}, ggml.TypeQ3_K: {108},
	ggml.TypeQ4_K: {0, 2}, ggml.TypeQ5_K: {0, 2}, ggml.TypeQ6_K: {208}, ggml.TypeIQ4_XS: {0},
	ggml.TypeIQ2_XXS: {0}, ggml.TypeIQ2_XS: {0}, ggml.TypeIQ2_S: {0},
	ggml.TypeIQ3_XXS: {0}, ggml.TypeIQ3_S: {0},
	ggml.TypeTQ1_0: {52}, ggml.TypeTQ2_0: {64}, ggml.TypeIQ1_S: {0},
}

func putF16(b []byte, v float32) { binary.LittleEndian.PutUint16(b, float16.Fromfloat32(v).Bits()) }

// putIQ1MScale stores v as the fp16 scale of the IQ1_M block b: its four
// nibbles in the top nibbles of the four scale words (bytes 49, 51, 53, 55).
func putIQ1MScale(b []byte, v float32) {
	h := float16.Fromfloat32(v).Bits()
	for i := range 4 {
		b[49+2*i] = b[49+2*i]&0x0f | byte(h>>(4*i)&0xf)<<4
	}
}

// iq1MScale reads the fp16 scale of the IQ1_M block b back.
func iq1MScale(b []byte) float64 {
	var h uint16
	for i := range 4 {
		h |= uint16(b[49+2*i]>>4) << (4 * i)
	}
	return float64(float16.Frombits(h).Float32())
}

// randomRow makes a weight row of cols elements of type t. extreme fills the
// quants with all-ones bytes (largest magnitudes) to probe overflow.
func randomRow(rng *rand.Rand, t ggml.Type, cols int, extreme bool) []byte {
	size, _ := t.RowSize(uint64(cols))
	row := make([]byte, size)
	switch t {
	case ggml.TypeF32:
		for i := 0; i < cols; i++ {
			binary.LittleEndian.PutUint32(row[4*i:], math.Float32bits(float32(rng.NormFloat64())))
		}
		return row
	case ggml.TypeF16:
		for i := 0; i < cols; i++ {
			putF16(row[2*i:], float32(rng.NormFloat64()))
		}
		return row
	case ggml.TypeBF16:
		for i := 0; i < cols; i++ {
			binary.LittleEndian.PutUint16(row[2*i:], uint16(math.Float32bits(float32(rng.NormFloat64()))>>16))
		}
		return row
	}
	for i := range row {
		if extreme {
			row[i] = 0xff
		} else {
			row[i] = byte(rng.Uint32())
		}
	}
	bs := t.TypeSize()
	for b := 0; b < len(row)/bs; b++ {
		for _, off := range scaleOffsets[t] {
			putF16(row[b*bs+off:], float32(rng.Float64()*0.02+0.001))
		}
		if t == ggml.TypeIQ1_M {
			putIQ1MScale(row[b*bs:], float32(rng.Float64()*0.02+0.001))
		}
	}
	return row
}

func randomActivations(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	if n > 0 && rng.IntN(2) == 0 {
		x[rng.IntN(n)] = -40 // a negative extreme drives Q8_K's signed scale
	}
	return x
}

// --- reference dequantizers (float64), written from the ggml-common.h layouts ---

func h(b []byte) float64 { return float64(float16.Frombits(binary.LittleEndian.Uint16(b)).Float32()) }

func dequant(t ggml.Type, row []byte, cols int) []float64 {
	out := make([]float64, cols)
	switch t {
	case ggml.TypeF32:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:])))
		}
		return out
	case ggml.TypeF16:
		for i := range out {
			out[i] = h(row[2*i:])
		}
		return out
	case ggml.TypeBF16:
		for i := range out {
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(row[2*i:])) << 16))
		}
		return out
	}
	bs, be := t.TypeSize(), t.BlockSize()
	for b := 0; b < cols/be; b++ {
		blk := row[b*bs : (b+1)*bs]
		o := out[b*be : (b+1)*be]
		switch t {
		case ggml.TypeQ4_0, ggml.TypeIQ4_NL:
			for j := 0; j < 16; j++ {
				lo, hi := int(blk[2+j]&15), int(blk[2+j]>>4)
				if t == ggml.TypeQ4_0 {
					o[j], o[j+16] = h(blk)*float64(lo-8), h(blk)*float64(hi-8)
				} else {
					o[j], o[j+16] = h(blk)*float64(block.IQ4NLValues[lo]), h(blk)*float64(block.IQ4NLValues[hi])
				}
			}
		case ggml.TypeQ4_1:
			for j := 0; j < 16; j++ {
				o[j] = h(blk)*float64(blk[4+j]&15) + h(blk[2:])
				o[j+16] = h(blk)*float64(blk[4+j]>>4) + h(blk[2:])
			}
		case ggml.TypeQ5_0, ggml.TypeQ5_1:
			qhOff, qsOff, off := 2, 6, -16.0
			if t == ggml.TypeQ5_1 {
				qhOff, qsOff, off = 4, 8, 0
			}
			qh := binary.LittleEndian.Uint32(blk[qhOff:])
			for j := 0; j < 32; j++ {
				nib := blk[qsOff+j%16] & 15
				if j >= 16 {
					nib = blk[qsOff+j%16] >> 4
				}
				q := float64(uint32(nib)|(qh>>j&1)<<4) + off
				o[j] = h(blk) * q
				if t == ggml.TypeQ5_1 {
					o[j] += h(blk[2:])
				}
			}
		case ggml.TypeQ8_0:
			for j := 0; j < 32; j++ {
				o[j] = h(blk) * float64(int8(blk[2+j]))
			}
		case ggml.TypeQ2_K:
			for e := 0; e < 256; e++ {
				sc := blk[e/16]
				q := blk[16+32*(e/128)+e%32] >> (2 * (e % 128 / 32)) & 3
				o[e] = h(blk[80:])*float64(sc&15)*float64(q) - h(blk[82:])*float64(sc>>4)
			}
		case ggml.TypeQ3_K:
			for e := 0; e < 256; e++ {
				l, j, half := e%32, e%128/32, e/128
				q := int(blk[32+32*half+l]>>(2*j)) & 3
				if blk[l]>>(4*half+j)&1 == 0 {
					q -= 4
				}
				o[e] = h(blk[108:]) * float64(block.ScaleQ3_K(blk[96:108], e/16)) * float64(q)
			}
		case ggml.TypeQ4_K, ggml.TypeQ5_K:
			for e := 0; e < 256; e++ {
				j := e / 32
				sc, m := block.ScaleMinK4(j, blk[4:16])
				var q int
				if t == ggml.TypeQ4_K {
					q = int(blk[16+32*(j/2)+e%32] >> (4 * (j & 1)) & 15)
				} else {
					q = int(blk[48+32*(j/2)+e%32]>>(4*(j&1))&15) | int(blk[16+e%32]>>j&1)<<4
				}
				o[e] = h(blk)*float64(sc)*float64(q) - h(blk[2:])*float64(m)
			}
		case ggml.TypeQ6_K:
			for e := 0; e < 256; e++ {
				half, k, l := e/128, e%128/32, e%32
				lb := blk[64*half+32*(k&1)+l]
				lo := int(lb & 15)
				if k >= 2 {
					lo = int(lb >> 4)
				}
				hi := int(blk[128+32*half+l]>>(2*k)) & 3
				o[e] = h(blk[208:]) * float64(int8(blk[192+e/16])) * float64(lo|hi<<4-32)
			}
		case ggml.TypeIQ4_XS:
			sh := binary.LittleEndian.Uint16(blk[2:])
			for e := 0; e < 256; e++ {
				j := e / 32
				ls := int(blk[4+j/2]>>(4*(j&1))&15) | int(sh>>(2*j)&3)<<4
				b := blk[8+16*j+e%16]
				q := b & 15
				if e%32 >= 16 {
					q = b >> 4
				}
				o[e] = h(blk) * float64(ls-32) * float64(block.IQ4NLValues[q])
			}
		case ggml.TypeTQ1_0:
			// qs[48] holds 5 trits a byte, qh[4] 4 (then a 0 trit): byte b
			// is the base-3 fraction b/256 = 0.t0 t1 t2 t3 t4…, so its
			// trits are the digits of ⌊b·243/256⌋, the first most
			// significant.
			trit := func(b byte, n int) float64 {
				u := math.Floor(float64(b) * 243 / 256)
				return math.Mod(math.Floor(u/math.Pow(3, float64(4-n))), 3)
			}
			for e := 0; e < 256; e++ {
				var u float64
				switch {
				case e < 160:
					u = trit(blk[e%32], e/32)
				case e < 240:
					u = trit(blk[32+(e-160)%16], (e-160)/16)
				default:
					u = trit(blk[48+(e-240)%4], (e-240)/4)
				}
				o[e] = h(blk[52:]) * (u - 1)
			}
		case ggml.TypeIQ1_S:
			// d | qs[32] | qh[8] (u16): group l of sub-block j is grid
			// point qs[4j+l] | (qh[j]>>3l & 7)<<8, scaled by d·(2s+1) with s
			// in qh[j] bits 12-14, shifted by ±1/8 (bit 15 set: −).
			for e := 0; e < 256; e++ {
				j, l := e/32, e%32/8
				qh := binary.LittleEndian.Uint16(blk[34+2*j:])
				g := int8(block.IQ1SGrid[int(blk[2+4*j+l])|int(qh>>(3*l)&7)<<8] >> (8 * (e % 8)))
				delta := 0.125
				if qh&0x8000 != 0 {
					delta = -0.125
				}
				o[e] = h(blk) * float64(2*(qh>>12&7)+1) * (float64(g) + delta)
			}
		case ggml.TypeIQ1_M:
			// qs[32] | qh[16] | scales[8]: group k of sub-block j (16
			// elements) is grid point qs[2j+k] | (qh[j]>>4k & 7)<<8,
			// shifted by −1/8 when bit 4k+3 of qh[j] is set, scaled by
			// d·(2s+1) with s in bits 3(j%4).. of scale word j/4.
			for e := 0; e < 256; e++ {
				j, k := e/16, e%16/8
				qh := int(blk[32+j])
				g := int8(block.IQ1SGrid[int(blk[2*j+k])|(qh>>(4*k)&7)<<8] >> (8 * (e % 8)))
				delta := 0.125
				if qh>>(4*k+3)&1 != 0 {
					delta = -0.125
				}
				word := binary.LittleEndian.Uint16(blk[48+2*(j/4):])
				o[e] = iq1MScale(blk) * float64(2*(word>>(3*(j%4))&7)+1) * (float64(g) + delta)
			}
		case ggml.TypeTQ2_0:
			for e := 0; e < 256; e++ {
				r := e % 128
				o[e] = h(blk[64:]) * float64(int(blk[32*(e/128)+r%32]>>(2*(r/32))&3)-1)
			}
		case ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S:
			// Group g of eight: a grid point's byte magnitudes with signs,
			// times d·(0.5+s)/4 for the 4-bit scale s of its sub-block.
			for g := 0; g < 32; g++ {
				var point uint64
				var signs uint8
				var s int
				switch t {
				case ggml.TypeIQ2_XXS:
					aux := binary.LittleEndian.Uint32(blk[2+8*(g/4)+4:])
					point = block.IQ2XXSGrid[blk[2+8*(g/4)+g%4]]
					signs = block.KSignsIQ2XS[aux>>(7*(g%4))&127]
					s = int(aux >> 28)
				case ggml.TypeIQ2_XS:
					q := binary.LittleEndian.Uint16(blk[2+2*g:])
					point, signs = block.IQ2XSGrid[q&511], block.KSignsIQ2XS[q>>9]
					s = int(blk[66+g/4]>>(4*(g%4/2))) & 15
				default:
					idx := int(blk[2+g]) | int(blk[66+g/4]>>(2*(g%4))&3)<<8
					point, signs = block.IQ2SGrid[idx], blk[34+g]
					s = int(blk[74+g/4]>>(4*(g%4/2))) & 15
				}
				for j := 0; j < 8; j++ {
					v := h(blk) * (0.5 + float64(s)) / 4 * float64(uint8(point>>(8*j)))
					if signs>>j&1 != 0 {
						v = -v
					}
					o[8*g+j] = v
				}
			}
		case ggml.TypeIQ3_XXS:
			for e := 0; e < 256; e++ {
				j, k, i := e/32, e%32/4, e%4
				aux := binary.LittleEndian.Uint32(blk[66+4*j:])
				signs := aux >> (7 * (k / 2)) & 127
				if bits.OnesCount32(signs)%2 == 1 {
					signs |= 128 // the eighth sign keeps the negatives even
				}
				v := float64(uint8(block.IQ3XXSGrid[blk[2+8*j+k]] >> (8 * i)))
				if signs>>(e%8)&1 != 0 {
					v = -v
				}
				o[e] = h(blk) * (0.5 + float64(aux>>28)) * 0.5 * v
			}
		case ggml.TypeIQ3_S:
			for e := 0; e < 256; e++ {
				j, k, i := e/32, e%32/4, e%4
				idx := int(blk[2+8*j+k]) | int(blk[66+j]>>k&1)<<8
				v := float64(uint8(block.IQ3SGrid[idx] >> (8 * i)))
				if blk[74+e/8]>>(e%8)&1 != 0 {
					v = -v
				}
				o[e] = h(blk) * float64(1+2*int(blk[106+j/2]>>(4*(j%2))&15)) * v
			}
		default:
			panic("no dequantizer for " + t.String())
		}
	}
	return out
}

// dequantAct turns a converted activation row back into float64 values.
func dequantAct(f actFormat, a []byte, cols int) []float64 {
	out := make([]float64, cols)
	for i := range out {
		switch f {
		case actF32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:])))
		case actF16, actBF16:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:])))
		case actQ8_0:
			b := a[i/32*block.Q8_0Bytes:]
			out[i] = h(b) * float64(int8(b[2+i%32]))
		case actQ8_1:
			b := a[i/32*block.Q8_1Bytes:]
			out[i] = h(b) * float64(int8(b[4+i%32]))
		case actQ8_K:
			b := a[i/256*block.Q8_KBytes:]
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) * float64(int8(b[4+i%256]))
		}
	}
	return out
}

func convertAct(f actFormat, x []float32) []byte {
	a := make([]byte, f.rowBytes(len(x)))
	if f == actF32 {
		for i, v := range x {
			binary.LittleEndian.PutUint32(a[4*i:], math.Float32bits(v))
		}
		return a
	}
	f.convert(a, x)
	return a
}

// refDot is the float64 dot of the dequantized rows and the bound on the
// float32 rounding error of any summation order.
func refDot(w, a []float64) (dot, tol float64) {
	var mag float64
	for i := range w {
		dot += w[i] * a[i]
		mag += math.Abs(w[i] * a[i])
	}
	return dot, 1e-5*mag + 1e-6
}

// minTerms returns, per element, the magnitude of the offset term of types
// whose value is scale·q − min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K), or of the
// quant offset that the assembly takes out through the bsums (Q3_K's 4,
// Q6_K's 32), or nil. Kernels sum those parts separately (Q3_K and Q6_K per
// vector lane), so when they cancel the float32 error scales with them
// rather than with the value.
func minTerms(t ggml.Type, row []byte, cols int) []float64 {
	out := make([]float64, cols)
	bs, be := t.TypeSize(), t.BlockSize()
	for b := 0; b < cols/max(be, 1); b++ {
		blk := row[b*bs:]
		for e := 0; e < be; e++ {
			var m float64
			switch t {
			case ggml.TypeQ4_1, ggml.TypeQ5_1:
				m = h(blk[2:])
			case ggml.TypeQ2_K:
				m = h(blk[82:]) * float64(blk[e/16]>>4)
			case ggml.TypeQ4_K, ggml.TypeQ5_K:
				_, mi := block.ScaleMinK4(e/32, blk[4:16])
				m = h(blk[2:]) * float64(mi)
			case ggml.TypeQ3_K:
				m = 4 * h(blk[108:]) * float64(block.ScaleQ3_K(blk[96:108], e/16))
			case ggml.TypeQ6_K:
				m = 32 * h(blk[208:]) * float64(int8(blk[192+e/16]))
			default:
				return nil
			}
			out[b*be+e] = math.Abs(m)
		}
	}
	return out
}

// refDotFor is refDot with the tolerance widened by the offset terms: by
// float32 rounding, and for Q4_1/Q5_1 by Q8_1's s, which ggml rounds to f16.
func refDotFor(t ggml.Type, row []byte, cols int, w, a []float64) (dot, tol float64) {
	dot, tol = refDot(w, a)
	factor := 1e-5
	if t == ggml.TypeQ4_1 || t == ggml.TypeQ5_1 {
		factor = 1e-3
	}
	for i, m := range minTerms(t, row, cols) {
		tol += factor * math.Abs(m*a[i])
	}
	return dot, tol
}

var goDots = map[ggml.Type]dotFunc{
	ggml.TypeF32: dotF32Go, ggml.TypeF16: dotF16ActGo, ggml.TypeBF16: dotBF16ActGo,
	ggml.TypeQ4_0: block.DotQ4_0Q8_0, ggml.TypeQ4_1: block.DotQ4_1Q8_1, ggml.TypeQ5_0: block.DotQ5_0Q8_0,
	ggml.TypeQ5_1: block.DotQ5_1Q8_1, ggml.TypeQ8_0: block.DotQ8_0Q8_0, ggml.TypeIQ4_NL: block.DotIQ4_NLQ8_0,
	ggml.TypeQ2_K: block.DotQ2_KQ8_K, ggml.TypeQ3_K: block.DotQ3_KQ8_K, ggml.TypeQ4_K: block.DotQ4_KQ8_K,
	ggml.TypeQ5_K: block.DotQ5_KQ8_K, ggml.TypeQ6_K: block.DotQ6_KQ8_K, ggml.TypeIQ4_XS: block.DotIQ4_XSQ8_K,
	ggml.TypeIQ2_XXS: block.DotIQ2_XXSQ8_K, ggml.TypeIQ2_XS: block.DotIQ2_XSQ8_K, ggml.TypeIQ2_S: block.DotIQ2_SQ8_K,
	ggml.TypeIQ3_XXS: block.DotIQ3_XXSQ8_K, ggml.TypeIQ3_S: block.DotIQ3_SQ8_K,
	ggml.TypeTQ1_0: block.DotTQ1_0Q8_K, ggml.TypeTQ2_0: block.DotTQ2_0Q8_K,
	ggml.TypeIQ1_S: block.DotIQ1_SQ8_K, ggml.TypeIQ1_M: block.DotIQ1_MQ8_K,
}

// TestDotsAgainstReference checks the kernel in use and the Go reference for
// every type against a float64 dot of dequantized values, on random and
// extreme blocks, for one and several blocks.
func TestDotsAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range allTypes {
		for _, nblocks := range []int{1, 3, 8} {
			for _, extreme := range []bool{false, true} {
				if extreme && !typ.Quantized() {
					continue
				}
				cols := nblocks * 256
				if typ.BlockSize() == 32 {
					cols = nblocks * 32
				} else if typ.BlockSize() == 1 {
					cols = nblocks*32 + 7
				}
				name := fmt.Sprintf("%v/cols=%d/extreme=%v", typ, cols, extreme)
				t.Run(name, func(t *testing.T) {
					format, dot, _ := kernelFor(typ)
					w := randomRow(rng, typ, cols, extreme)
					x := randomActivations(rng, cols)
					a := convertAct(format, x)
					want, tol := refDotFor(typ, w, cols, dequant(typ, w, cols), dequantAct(format, a, cols))
					for kname, k := range map[string]dotFunc{"inuse": dot, "go": goDots[typ]} {
						got := float64(k(w, a, cols))
						if math.Abs(got-want) > tol {
							t.Errorf("%s: got %g, want %g (tol %g)", kname, got, want, tol)
						}
					}
				})
			}
		}
	}
}

// TestActivationQuantizers checks that each activation format reproduces its
// input within half a quantization step and that Q8_1's s and Q8_K's bsums
// agree with the quants.
func TestActivationQuantizers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randomActivations(rng, 512)
	copy(x[256:288], make([]float32, 32)) // an all-zero Q8 block
	for _, f := range []actFormat{actQ8_0, actQ8_1, actQ8_K, actF16, actBF16} {
		a := convertAct(f, x)
		back := dequantAct(f, a, len(x))
		bs := 32
		if f == actQ8_K {
			bs = 256
		}
		for b := 0; b < len(x)/bs; b++ {
			var amax float64
			for _, v := range x[b*bs : (b+1)*bs] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			step := amax / 127
			if f == actF16 || f == actBF16 {
				step = amax / 128 // generous: both round to at least 8 significant bits
			}
			for i := b * bs; i < (b+1)*bs; i++ {
				if d := math.Abs(back[i] - float64(x[i])); d > step*0.5+step*0.01+1e-12 {
					t.Fatalf("format %d: element %d: %g back from %g (step %g)", f, i, back[i], x[i], step)
				}
			}
		}
		switch f {
		case actQ8_1:
			for b := 0; b < len(x)/32; b++ {
				blk := a[b*block.Q8_1Bytes:]
				sum := 0
				for _, q := range blk[4:36] {
					sum += int(int8(q))
				}
				var amax float32
				for _, v := range x[32*b : 32*b+32] {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				// s uses the float32 scale before its rounding to f16.
				if want := float16.Fromfloat32(amax / 127 * float32(sum)).Float32(); float32(h(blk[2:])) != want {
					t.Errorf("q8_1 block %d: s = %g, want %g", b, h(blk[2:]), want)
				}
			}
		case actQ8_K:
			for b := 0; b < len(x)/256; b++ {
				blk := a[b*block.Q8_KBytes:]
				for g := 0; g < 16; g++ {
					sum := 0
					for _, q := range blk[4+16*g : 4+16*g+16] {
						sum += int(int8(q))
					}
					if got := int(int16(binary.LittleEndian.Uint16(blk[260+2*g:]))); got != sum {
						t.Errorf("q8_K block %d group %d: bsum %d, want %d", b, g, got, sum)
					}
				}
			}
		}
	}
}

func TestQ8RoundingMatchesGGML(t *testing.T) {
	// 127/amax scaling with ties to even: with amax 127 the quants are x
	// itself, so 2.5 → 2 and 3.5 → 4 (roundf would give 3 and 4).
	x := make([]float32, 32)
	x[0], x[1], x[2], x[3] = 127, 2.5, 3.5, -2.5
	a := convertAct(actQ8_0, x)
	if got := []int8{int8(a[2]), int8(a[3]), int8(a[4]), int8(a[5])}; got[0] != 127 || got[1] != 2 || got[2] != 4 || got[3] != -2 {
		t.Errorf("q8_0 quants %v, want [127 2 4 -2]", got)
	}
	// Q8_K: iscale = -127/max of the signed extreme (127 here), so d = 1/iscale
	// = -1 and 127 becomes -127.
	xk := make([]float32, 256)
	xk[0], xk[1] = 127, -0.5
	ak := convertAct(actQ8_K, xk)
	if d := math.Float32frombits(binary.LittleEndian.Uint32(ak)); d != -1 || int8(ak[4]) != -127 || int8(ak[5]) != 0 {
		t.Errorf("q8_K: d=%g q0=%d q1=%d, want -1, -127, 0", d, int8(ak[4]), int8(ak[5]))
	}
}

func TestF16Conversions(t *testing.T) {
	// Every half converts exactly and back.
	src := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i))
	}
	f := make([]float32, 1<<16)
	F16ToF32(f, src)
	back := make([]byte, len(src))
	F32ToF16(back, f)
	for i := 0; i < 1<<16; i++ {
		want := float16.Frombits(uint16(i)).Float32()
		if math.Float32bits(f[i]) != math.Float32bits(want) && !(f[i] != f[i] && want != want) {
			t.Fatalf("half %#04x: got %g want %g", i, f[i], want)
		}
		hb := binary.LittleEndian.Uint16(back[2*i:])
		if f[i] == f[i] && hb != uint16(i) {
			t.Fatalf("half %#04x: round trip gives %#04x", i, hb)
		}
		if f[i] != f[i] && hb&0x7c00 != 0x7c00 {
			t.Fatalf("NaN %#04x became %#04x", i, hb)
		}
	}
	// Random floats, including ties and subnormal/overflow ranges, at odd lengths.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 33, 1001} {
		x := make([]float32, n)
		for i := range x {
			switch rng.IntN(4) {
			case 0:
				x[i] = math.Float32frombits(rng.Uint32())
			case 1:
				x[i] = float32(rng.NormFloat64() * 1e-6)
			case 2:
				x[i] = float16.Frombits(uint16(rng.Uint32())).Float32() + float32(rng.NormFloat64())*1e-4
			default:
				x[i] = float32(rng.NormFloat64() * 7e4)
			}
		}
		got := make([]byte, 2*n)
		F32ToF16(got, x)
		goGot := make([]byte, 2*n)
		f32ToF16Go(goGot, x)
		for i, v := range x {
			want := float16.Fromfloat32(v).Bits()
			g := binary.LittleEndian.Uint16(got[2*i:])
			if v != v {
				if g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
					t.Errorf("n=%d: NaN %#x → %#04x", n, math.Float32bits(v), g)
				}
				continue
			}
			if g != want || binary.LittleEndian.Uint16(goGot[2*i:]) != want {
				t.Errorf("n=%d: %g (%#x) → %#04x (go %#04x), want %#04x", n, v, math.Float32bits(v), g, binary.LittleEndian.Uint16(goGot[2*i:]), want)
			}
		}
		bf := make([]float32, n)
		BF16ToF32(bf, got)
		for i := range bf {
			if want := math.Float32frombits(uint32(binary.LittleEndian.Uint16(got[2*i:])) << 16); math.Float32bits(bf[i]) != math.Float32bits(want) {
				t.Errorf("bf16 %d: %g want %g", i, bf[i], want)
			}
		}
	}
}

func TestBF16Rounding(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7f800001, 0x7fc0}, // signalling NaN quieted
		{0x7f7fffff, 0x7f80}, // overflow to inf
	} {
		if got := block.FloatToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("%#08x: got %#04x want %#04x", c.in, got, c.want)
		}
	}
}

// TestFloatDotsOddLengths compares DotF32, DotF16 and AxpyF16 with float64
// references and with the Go reference at lengths around the vector widths.
func TestFloatDotsOddLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 80; n++ {
		for _, n := range []int{n, n + 1000} {
			a, b := randomActivations(rng, n), randomActivations(rng, n)
			hb := make([]byte, 2*n)
			F32ToF16(hb, a)
			ah := make([]float32, n)
			F16ToF32(ah, hb)
			var want32, want16, mag32, mag16 float64
			for i := range a {
				want32 += float64(a[i]) * float64(b[i])
				mag32 += math.Abs(float64(a[i]) * float64(b[i]))
				want16 += float64(ah[i]) * float64(b[i])
				mag16 += math.Abs(float64(ah[i]) * float64(b[i]))
			}
			if got := float64(DotF32(a, b)); math.Abs(got-want32) > 1e-5*mag32+1e-6 {
				t.Errorf("DotF32 n=%d: %g want %g", n, got, want32)
			}
			if got, g := float64(DotF32(a, b)), float64(dotF32SliceGo(a, b)); math.Abs(got-g) > 1e-5*mag32+1e-6 {
				t.Errorf("DotF32 n=%d: asm %g go %g", n, got, g)
			}
			if got := float64(DotF16(hb, b)); math.Abs(got-want16) > 1e-5*mag16+1e-6 {
				t.Errorf("DotF16 n=%d: %g want %g", n, got, want16)
			}
			y := append([]float32(nil), b...)
			yGo := append([]float32(nil), b...)
			AxpyF16(y, 0.75, hb)
			axpyF16Go(yGo, 0.75, hb)
			for i := range y {
				want := float64(b[i]) + 0.75*float64(ah[i])
				if math.Abs(float64(y[i])-want) > 1e-6*(math.Abs(want)+math.Abs(float64(b[i]))+1e-3) || math.Abs(float64(y[i]-yGo[i])) > 1e-5*(math.Abs(want)+1) {
					t.Fatalf("AxpyF16 n=%d i=%d: %g (go %g) want %g", n, i, y[i], yGo[i], want)
				}
			}
		}
	}
}

// TestMatMulThreads checks that MatMul matches row-by-row dots and gives
// bit-identical results for 1, 2 and 4 threads, for single rows and batches
// that span several tiles.
func TestMatMulThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, typ := range allTypes {
		cols := 512
		rows := 37
		w := make([]byte, 0)
		for r := 0; r < rows; r++ {
			w = append(w, randomRow(rng, typ, cols, false)...)
		}
		m := Matrix{Type: typ, Data: w, Rows: rows, Cols: cols}
		rowSize, _ := typ.RowSize(uint64(cols))
		// 300: more than one column tile of word panels (wordColTile).
		for _, n := range []int{1, 3, 70, 100, 300} {
			x := randomActivations(rng, n*cols)
			var first []float32
			for _, threads := range []int{1, 2, 4} {
				dst := make([]float32, n*rows)
				MatMul(dst, m, x, n, threads)
				if first == nil {
					first = dst
					format, dot, _ := kernelFor(typ)
					for i := 0; i < n; i++ {
						a := convertAct(format, x[i*cols:(i+1)*cols])
						for r := 0; r < rows; r++ {
							if want := dot(w[r*int(rowSize):], a, cols); dst[i*rows+r] != want {
								t.Fatalf("%v n=%d: dst[%d,%d]=%g, single dot %g", typ, n, i, r, dst[i*rows+r], want)
							}
						}
					}
					continue
				}
				for k := range dst {
					if math.Float32bits(dst[k]) != math.Float32bits(first[k]) {
						t.Fatalf("%v n=%d threads=%d: dst[%d]=%g, threads=1 gave %g", typ, n, threads, k, dst[k], first[k])
					}
				}
			}
		}
	}
}

func TestSupported(t *testing.T) {
	for _, typ := range allTypes {
		if !Supported(typ) {
			t.Errorf("%v not supported", typ)
		}
	}
	for _, typ := range []ggml.Type{ggml.TypeQ8_K, ggml.TypeI32, ggml.TypeMXFP4} {
		if Supported(typ) {
			t.Errorf("%v reported supported", typ)
		}
	}
}

// asmExactlyGo are the types whose assembly dots add each block's exact
// integer sum into the total in the Go reference's float operations, and so
// must give its bits.
var asmExactlyGo = map[ggml.Type]bool{ggml.TypeTQ1_0: true, ggml.TypeTQ2_0: true, ggml.TypeIQ1_S: true, ggml.TypeIQ1_M: true}

// TestAsmMatchesGo compares the kernels in use (assembly on AVX2 machines)
// with the Go reference on many random, extreme and zero rows and activation
// rows with outliers, for block counts that exercise the unrolled loops.
func TestAsmMatchesGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("assembly kernels not in use (purego build or no AVX2/FMA/F16C)")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, typ := range allTypes {
		format, dot, _ := kernelFor(typ)
		for trial := 0; trial < 40; trial++ {
			nblocks := 1 + trial%9
			cols := nblocks * typ.BlockSize()
			if typ.BlockSize() == 1 {
				cols = 1 + trial*13
			}
			w := randomRow(rng, typ, cols, trial%5 == 4)
			if trial%7 == 6 && typ.Quantized() {
				for i := range w {
					w[i] = 0
				}
			}
			x := randomActivations(rng, cols)
			if trial%3 == 0 {
				for i := range x {
					x[i] *= float32(math.Pow(10, float64(rng.IntN(7)-3)))
				}
			}
			a := convertAct(format, x)
			_, tol := refDotFor(typ, w, cols, dequant(typ, w, cols), dequantAct(format, a, cols))
			got, want := float64(dot(w, a, cols)), float64(goDots[typ](w, a, cols))
			if asmExactlyGo[typ] && got != want {
				t.Errorf("%v cols=%d trial %d: asm %g, go %g (must be the same bits)", typ, cols, trial, got, want)
			}
			if math.Abs(got-want) > tol {
				t.Errorf("%v cols=%d trial %d: asm %g, go %g (tol %g)", typ, cols, trial, got, want, tol)
			}
		}
	}
}

// TestIQAsmMatchesGoBits requires the dots in use for the 2- and 3-bit grid
// types to give exactly the Go reference's bits: both round each block's
// product before adding it, in ggml's generic order (exact integer block
// sums, then a multiply and an add per block, unfused), so unlike the other
// types there is no rounding slack between them. Rows are random, extreme,
// zero and of varied scale (activations over ±decades decades), one to nine
// blocks, through every grid row and sign pattern the random bytes reach.
func TestIQAsmMatchesGoBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, c := range []struct {
		typ     ggml.Type
		decades int
	}{{ggml.TypeIQ2_XXS, 3}, {ggml.TypeIQ2_XS, 3}, {ggml.TypeIQ2_S, 3}, {ggml.TypeIQ3_XXS, 6}, {ggml.TypeIQ3_S, 6}} {
		typ := c.typ
		format, dot, _ := kernelFor(typ)
		for trial := 0; trial < 200; trial++ {
			nblocks := 1 + trial%9
			cols := nblocks * typ.BlockSize()
			w := randomRow(rng, typ, cols, trial%5 == 4)
			if trial%7 == 6 {
				clear(w)
			}
			x := randomActivations(rng, cols)
			if trial%3 == 0 {
				for i := range x {
					x[i] *= float32(math.Pow(10, float64(rng.IntN(2*c.decades+1)-c.decades)))
				}
			}
			a := convertAct(format, x)
			got, want := dot(w, a, cols), goDots[typ](w, a, cols)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("%v cols=%d trial %d: in use %g (%#08x), go %g (%#08x)", typ, cols, trial, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestQuantizersAsmMatchGo requires the activation quantizers in use to
// produce exactly the Go reference's bytes, including ties, zero blocks,
// and a Q8_K block whose largest magnitude appears with both signs.
func TestQuantizersAsmMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for trial := 0; trial < 50; trial++ {
		n := 256 * (1 + trial%4)
		x := randomActivations(rng, n)
		switch trial % 5 {
		case 1: // exact ties after scaling by 127/amax
			for i := range x {
				x[i] = float32(rng.IntN(255)-127) / 2
			}
			x[0] = 127
		case 2: // zero blocks
			clear(x[:256])
		case 3: // ±amax: the first one decides the sign of the Q8_K scale
			x[200], x[7] = 50, -50
		case 4:
			for i := range x {
				x[i] *= 1e-30
			}
		}
		for _, c := range []struct {
			name       string
			inuse, go_ func([]byte, []float32)
			size       int
		}{
			{"Q8_0", quantizeRowQ8_0, quantizeRowQ8_0Go, n / 32 * block.Q8_0Bytes},
			{"Q8_1", quantizeRowQ8_1, quantizeRowQ8_1Go, n / 32 * block.Q8_1Bytes},
			{"Q8_K", quantizeRowQ8_K, quantizeRowQ8_KGo, n / 256 * block.Q8_KBytes},
		} {
			got, want := make([]byte, c.size), make([]byte, c.size)
			for i := range got {
				got[i] = 0xa5 // stale bytes must be overwritten
			}
			c.inuse(got, x)
			c.go_(want, x)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s trial %d: byte %d is %#02x, Go reference %#02x", c.name, trial, i, got[i], want[i])
				}
			}
		}
	}
}

// TestRoundingAsmMatchesGo checks the activation rounding for F16 and BF16
// weights in use against the Go reference and the scalar rule on random bit
// patterns (NaNs, infs, ties) at odd lengths.
func TestRoundingAsmMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for n := 0; n < 40; n++ {
		x := make([]float32, n)
		for i := range x {
			u := rng.Uint32()
			if i%3 == 0 {
				u = u&^0xffff | 0x8000 // a tie
			}
			x[i] = math.Float32frombits(u)
		}
		for _, c := range []struct {
			name       string
			inuse, go_ func(dst, x []float32)
			rule       func(float32) uint32
		}{
			{"bf16", roundBF16Impl, roundBF16Go, func(v float32) uint32 { return uint32(block.FloatToBF16(v)) << 16 }},
			{"f16", roundF16Impl, roundF16Go, func(v float32) uint32 { return math.Float32bits(block.HalfToFloat(block.FloatToHalf(v))) }},
		} {
			got, want := make([]float32, n), make([]float32, n)
			c.inuse(got, x)
			c.go_(want, x)
			for i := 0; i < n; i++ {
				g, w := math.Float32bits(got[i]), math.Float32bits(want[i])
				if g != w || w != c.rule(x[i]) {
					t.Fatalf("%s n=%d: %#08x → %#08x (go %#08x, rule %#08x)", c.name, n, math.Float32bits(x[i]), g, w, c.rule(x[i]))
				}
			}
		}
	}
}

// TestAsmUsesOnlyAVX2Registers guards against the register allocator spilling
// into X16–X31/Y16–Y31, which exist only with AVX-512 and would fault on
// AVX2-only machines (the Go assembler quietly EVEX-encodes them). Only the
// zmm kernels (named …ZMM, installed where the CPU has AVX-512) and the AMX
// kernels (named amx…, installed where it has AMX and AVX-512) may use
// AVX-512 registers.
func TestAsmUsesOnlyAVX2Registers(t *testing.T) {
	src, err := os.ReadFile("kernels_amd64.s")
	if err != nil {
		t.Skipf("no generated assembly here: %v", err)
	}
	re := regexp.MustCompile(`\b[XYZ](1[6-9]|2[0-9]|3[01])\b|\bZ[0-9]+\b|\bK[1-7]\b`)
	text := regexp.MustCompile(`^TEXT ·(\w+)\(SB\)`)
	fn, zmm := "", 0
	avx512 := func(fn string) bool { return strings.HasSuffix(fn, "ZMM") || strings.HasPrefix(fn, "amx") }
	for i, line := range strings.Split(string(src), "\n") {
		if m := text.FindStringSubmatch(line); m != nil {
			fn = m[1]
			if avx512(fn) {
				zmm++
			}
		}
		if strings.HasPrefix(strings.TrimSpace(line), "//") || avx512(fn) {
			continue
		}
		if m := re.FindString(line); m != "" {
			t.Errorf("kernels_amd64.s:%d (%s) uses %s: %s", i+1, fn, m, strings.TrimSpace(line))
		}
	}
	if zmm == 0 {
		t.Error("found no zmm kernel: the TEXT pattern no longer matches the generated file")
	}
}

// TestDot4MatchesDot checks the four-row kernels against four single dots,
// bit for bit, with the outputs strided as MatMul stores them.
func TestDot4MatchesDot(t *testing.T) {
	if len(dot4Kernels()) == 0 {
		t.Skip("no four-row kernels in use")
	}
	rng := rand.New(rand.NewPCG(17, 18))
	for typ, dot4 := range dot4Kernels() {
		format, dot, _ := kernelFor(typ)
		for _, nblocks := range []int{1, 2, 3, 8} {
			cols := nblocks * typ.BlockSize()
			if typ.BlockSize() == 1 {
				cols = nblocks*29 + 5 // through the 16-, 8- and 1-element loops
			}
			w := randomRow(rng, typ, cols, nblocks == 3 && typ.Quantized())
			arow := format.rowBytes(cols)
			act := make([]byte, 4*arow)
			for c := 0; c < 4; c++ {
				copy(act[c*arow:], convertAct(format, randomActivations(rng, cols)))
			}
			const stride = 5
			out := make([]float32, 3*stride+1)
			dot4(w, act, arow, cols, out, stride)
			for c := 0; c < 4; c++ {
				want := dot(w, act[c*arow:(c+1)*arow], cols)
				if math.Float32bits(out[c*stride]) != math.Float32bits(want) {
					t.Errorf("%v cols=%d row %d: dot4 %g, dot %g", typ, cols, c, out[c*stride], want)
				}
			}
			// The many-rows form: three weight rows, padded apart.
			rows4 := installed[typ].rows4
			if rows4 == nil {
				continue
			}
			const nrows, pad, ostride = 3, 6, 7
			ws := [][]byte{w, randomRow(rng, typ, cols, false), randomRow(rng, typ, cols, false)}
			var wpad []byte
			for _, wr := range ws {
				wpad = append(append(wpad, wr...), make([]byte, pad)...)
			}
			outs := make([]float32, nrows-1+3*ostride+1)
			rows4(wpad, len(w)+pad, act, arow, cols, nrows, outs, ostride)
			for r, wr := range ws {
				for c := range 4 {
					want := dot(wr, act[c*arow:(c+1)*arow], cols)
					if got := outs[r+c*ostride]; math.Float32bits(got) != math.Float32bits(want) {
						t.Errorf("%v cols=%d weight row %d, row %d: rows4 %g, dot %g", typ, cols, r, c, got, want)
					}
				}
			}
		}
	}
}

// TestTileMatchesDot checks the 4×4 tile kernels against sixteen single
// dots, bit for bit, with padding between the weight rows.
func TestTileMatchesDot(t *testing.T) {
	if len(tileKernels()) == 0 {
		t.Skip("no tile kernels in use")
	}
	rng := rand.New(rand.NewPCG(23, 24))
	for typ, tile := range tileKernels() {
		format, dot, _ := kernelFor(typ)
		for _, nblocks := range []int{1, 2, 3, 8, 9} {
			cols := nblocks * typ.BlockSize()
			const pad = 7 // bytes of padding between the weight rows
			var w []byte
			var rows [][]byte
			for r := range 4 {
				row := randomRow(rng, typ, cols, nblocks == 3 && r == 1)
				rows = append(rows, row)
				w = append(append(w, row...), make([]byte, pad)...)
			}
			arow := format.rowBytes(cols)
			act := make([]byte, 4*arow)
			for c := 0; c < 4; c++ {
				copy(act[c*arow:], convertAct(format, randomActivations(rng, cols)))
			}
			const stride = 5
			out := make([]float32, 3*stride+4)
			tile(w, len(rows[0])+pad, act, arow, cols, out, stride)
			for c := 0; c < 4; c++ {
				for r, wr := range rows {
					want := dot(wr, act[c*arow:(c+1)*arow], cols)
					if got := out[c*stride+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Errorf("%v cols=%d row %d col %d: tile %g, dot %g", typ, cols, r, c, got, want)
					}
				}
			}
		}
	}
}

// TestPanelMatchesDot checks the panel kernels (two weight rows times
// sixteen packed activation rows) and the wide ones (times several panels)
// against single dots, bit for bit, with extreme quants among random ones.
func TestPanelMatchesDot(t *testing.T) {
	if len(panelKernels()) == 0 {
		t.Skip("no panel kernels in use")
	}
	rng := rand.New(rand.NewPCG(25, 26))
	for typ, panel := range panelKernels() {
		format, dot, _ := kernelFor(typ)
		for _, nblocks := range []int{1, 2, 3, 8, 9} {
			cols := nblocks * typ.BlockSize()
			const pad = 3
			w0, w1 := randomRow(rng, typ, cols, false), randomRow(rng, typ, cols, nblocks == 3)
			if typ == ggml.TypeQ8_0 {
				w0[2], w0[3], w1[5] = 0x80, 0x7f, 0x80
			}
			if format == actQ8_K && nblocks == 2 {
				// The first block of w0 at its integer extremes: largest
				// quants with the largest scales and mins (Q4_K, Q5_K), the
				// most negative int8 scales (Q6_K), the largest table
				// values with the largest and smallest scales (IQ4_XS).
				blk := w0[:len(w0)/2]
				for i := range blk {
					blk[i] = 0xff
				}
				switch typ {
				case ggml.TypeQ4_K, ggml.TypeQ5_K:
					blk[0], blk[1], blk[2], blk[3] = 0x00, 0x3c, 0x00, 0x38 // d 1, dmin 0.5
				case ggml.TypeQ6_K:
					for i := 192; i < 208; i++ {
						blk[i] = 0x80 // scale -128
					}
					blk[208], blk[209] = 0x00, 0x3c
				case ggml.TypeIQ4_XS:
					blk[0], blk[1] = 0x00, 0x3c
					// Runs 0-5 scale 63-32, runs 6-7 scale 0-32.
					blk[2], blk[3], blk[7] = 0xff, 0x0f, 0x00
				}
			}
			w := append(append(append([]byte{}, w0...), make([]byte, pad)...), w1...)
			arow := format.rowBytes(cols)
			// Four panels' rows: the others for the wide kernels, if any.
			const maxPanels = 4
			act := make([]byte, maxPanels*panelRows*arow)
			for c := range maxPanels * panelRows {
				copy(act[c*arow:], convertAct(format, randomActivations(rng, cols)))
			}
			// Activation quants stay within ±127 (ggml's sign trick in the
			// other kernels relies on it; the quantizer guarantees it).
			if format == actQ8_0 {
				act[2], act[arow+3], act[17*arow+4], act[60*arow+5] = 0x81, 0x7f, 0x81, 0x7f
			}
			if format == actQ8_K {
				// A constant row quantizes to all -127: the largest bsums.
				ones := make([]float32, cols)
				for i := range ones {
					ones[i] = 1
				}
				copy(act[5*arow:6*arow], convertAct(format, ones))
			}
			words := installed[typ].words
			pb := format.panelBytes(cols, words != nil)
			packed := make([]byte, maxPanels*pb)
			for q := range maxPanels {
				format.packPanel(packed[q*pb:], act[q*panelRows*arow:], arow, cols, words != nil)
			}
			wstride := len(w0) + pad
			if words != nil { // word panels take the rows widened
				nb := cols / words.per
				wstride = nb*words.bytes + pad
				w = make([]byte, wstride+nb*words.bytes)
				words.widen(w, w0, nb)
				words.widen(w[wstride:], w1, nb)
			}
			check := func(kernel string, out []float32, ncols, stride int) {
				t.Helper()
				for c := range ncols {
					for r, wr := range [][]byte{w0, w1} {
						want := dot(wr, act[c*arow:(c+1)*arow], cols)
						if got := out[c*stride+r]; math.Float32bits(got) != math.Float32bits(want) {
							t.Errorf("%v cols=%d row %d col %d: %s %g, dot %g", typ, cols, r, c, kernel, got, want)
						}
					}
				}
			}
			const stride = 3
			out := make([]float32, (panelRows-1)*stride+2)
			panel(w, wstride, packed, cols, out, stride)
			check("panel", out, panelRows, stride)
			for _, wide := range installed[typ].wide {
				out := make([]float32, (wide.panels*panelRows-1)*stride+2)
				wide.f(w, wstride, packed[:wide.panels*pb], pb, cols, out, stride)
				check(fmt.Sprintf("%d-panel kernel", wide.panels), out, wide.panels*panelRows, stride)
			}
			if quad := installed[typ].quad; quad.f != nil {
				// Rows w0, w1, w1, w0: each output against its row's dot.
				w4 := append(append([]byte{}, w...), make([]byte, pad)...)
				w4 = append(append(append(w4, w1...), make([]byte, pad)...), w0...)
				const stride4 = 5
				out := make([]float32, (quad.panels*panelRows-1)*stride4+4)
				quad.f(w4, wstride, packed[:quad.panels*pb], pb, cols, out, stride4)
				for c := range quad.panels * panelRows {
					for r, wr := range [][]byte{w0, w1, w1, w0} {
						want := dot(wr, act[c*arow:(c+1)*arow], cols)
						if got := out[c*stride4+r]; math.Float32bits(got) != math.Float32bits(want) {
							t.Errorf("%v cols=%d row %d col %d: four-row kernel %g, dot %g", typ, cols, r, c, got, want)
						}
					}
				}
			}
		}
	}
}

// TestMatMulEdges covers empty shapes, many threads and the pool staying
// bounded over repeated calls.
func TestMatMulEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	// Zero columns: every output is an empty dot.
	dst := []float32{1, 2, 3}
	MatMul(dst, Matrix{Type: ggml.TypeQ4_K, Rows: 3, Cols: 0}, nil, 1, 2)
	for i, v := range dst {
		if v != 0 {
			t.Errorf("cols=0: dst[%d]=%g", i, v)
		}
	}
	// n=0 leaves dst alone.
	dst[0] = 7
	MatMul(dst, Matrix{Type: ggml.TypeQ8_0, Rows: 3, Cols: 32, Data: make([]byte, 3*34)}, nil, 0, 4)
	if dst[0] != 7 {
		t.Errorf("n=0 wrote dst")
	}
	// Far more threads than tasks, repeatedly: same result, bounded goroutines.
	w := randomRow(rng, ggml.TypeQ6_K, 256*3, false)
	m := Matrix{Type: ggml.TypeQ6_K, Data: w, Rows: 3, Cols: 256}
	x := randomActivations(rng, 256*5)
	want := make([]float32, 15)
	MatMul(want, m, x, 5, 1)
	got := make([]float32, 15)
	MatMul(got, m, x, 5, 64)
	before := runtime.NumGoroutine()
	for range 50 {
		MatMul(got, m, x, 5, 64)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines grew from %d to %d over repeated calls", before, after)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("threads=64: dst[%d]=%g, threads=1 gave %g", i, got[i], want[i])
		}
	}
	// Unsupported types and short slices are caller bugs and panic clearly.
	for _, c := range []struct {
		name string
		m    Matrix
	}{
		{"type", Matrix{Type: ggml.TypeI32, Rows: 1, Cols: 256, Data: make([]byte, 4*256)}},
		{"cols", Matrix{Type: ggml.TypeQ4_K, Rows: 1, Cols: 100, Data: make([]byte, 144)}},
		{"data", Matrix{Type: ggml.TypeQ4_K, Rows: 2, Cols: 256, Data: make([]byte, 144)}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			MatMul(make([]float32, 2), c.m, make([]float32, 256), 1, 1)
		}()
	}
}

// TestRowsMatchesDot checks the many-rows kernels against one dot per row,
// bit for bit, for odd block counts (the Q8_0 family's one-block tail must
// leave x at the next row; Q4_0's zmm kernel takes four blocks at a time,
// then single ones) and row counts.
func TestRowsMatchesDot(t *testing.T) {
	if len(rowsKernels()) == 0 {
		t.Skip("no many-rows kernels in use")
	}
	rng := rand.New(rand.NewPCG(19, 20))
	for typ, rows := range rowsKernels() {
		format, dot, _ := kernelFor(typ)
		for _, nblocks := range []int{1, 2, 3, 4, 8, 9} {
			for _, nrows := range []int{1, 2, 4, 7, 8} {
				cols := nblocks * typ.BlockSize()
				var w []byte
				for r := 0; r < nrows; r++ {
					w = append(w, randomRow(rng, typ, cols, r == 1 && typ.Quantized())...)
				}
				wrow := len(w) / nrows
				a := convertAct(format, randomActivations(rng, cols))
				out := make([]float32, nrows+1)
				out[nrows] = 42
				rows(w, a, cols, nrows, out)
				for r := 0; r < nrows; r++ {
					want := dot(w[r*wrow:(r+1)*wrow], a, cols)
					if math.Float32bits(out[r]) != math.Float32bits(want) {
						t.Errorf("%v blocks=%d rows=%d: row %d: %g, dot %g", typ, nblocks, nrows, r, out[r], want)
					}
				}
				if out[nrows] != 42 {
					t.Errorf("%v blocks=%d rows=%d: wrote past the rows", typ, nblocks, nrows)
				}
			}
		}
	}
}

// The installed kernels of each shape, by weight type.

func dot4Kernels() map[ggml.Type]dot4Func {
	return kernelsOf(func(k *kernelRow) (dot4Func, bool) { return k.dot4, k.dot4 != nil })
}

func tileKernels() map[ggml.Type]tileFunc {
	return kernelsOf(func(k *kernelRow) (tileFunc, bool) { return k.tile, k.tile != nil })
}

func panelKernels() map[ggml.Type]panelFunc {
	return kernelsOf(func(k *kernelRow) (panelFunc, bool) { return k.panel, k.panel != nil })
}

func rowsKernels() map[ggml.Type]rowsFunc {
	return kernelsOf(func(k *kernelRow) (rowsFunc, bool) { return k.rows, k.rows != nil })
}

// kernelsOf returns, by weight type, the installed kernels that pick finds.
func kernelsOf[F any](pick func(*kernelRow) (F, bool)) map[ggml.Type]F {
	m := map[ggml.Type]F{}
	for t, k := range installed {
		if f, ok := pick(k); ok {
			m[t] = f
		}
	}
	return m
}
