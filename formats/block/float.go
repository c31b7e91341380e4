package block

import (
	"encoding/binary"
	"math"
)

// IEEE half precision (F16) and bfloat16 (BF16): the element types of plain
// tensors and the scales of most block formats.
//
// F16 is 1 sign bit, 5 exponent bits (bias 15) and 10 mantissa bits; BF16
// is the top 16 bits of a float32. Both are stored little-endian.

// f16Table maps every half bit pattern to its float32 value. Decoding is on
// every block's scale, so a lookup beats the bit manipulation per element.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = halfBitsToFloat(uint16(h))
	}
	return &t
}()

// halfBitsToFloat converts one half exactly. NaNs come out quiet with their
// payload in the top mantissa bits, as F16C's vcvtph2ps gives them.
func halfBitsToFloat(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f && man != 0:
		return math.Float32frombits(sign | 0x7fc00000 | man<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: the value is man * 2^-24, exact in float32.
	v := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// HalfToFloat returns the value of the half with bits h (exact).
func HalfToFloat(h uint16) float32 { return f16Table[h] }

// LoadF16 returns the value of the little-endian half at b[0:2].
func LoadF16(b []byte) float32 { return f16Table[binary.LittleEndian.Uint16(b)] }

// StoreF16 writes f at b[0:2] as a little-endian half (see FloatToHalf).
func StoreF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, FloatToHalf(f)) }

// FloatToHalf rounds f to the nearest half, ties to even, as F16C's
// vcvtps2ph with imm 0 and ggml's software path do; NaNs stay NaN (quieted)
// and overflow becomes infinity.
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - e)
		half := man >> shift
		rem := man & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // a carry into the exponent is the correct rounding, up to inf
	}
	return sign | uint16(half)
}

// BF16ToFloat returns the value of the bfloat16 with bits h (exact).
func BF16ToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// FloatToBF16 rounds f to bfloat16: to nearest even, with NaNs made quiet,
// as ggml's ggml_compute_fp32_to_bf16 and gguf-py do.
func FloatToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}
