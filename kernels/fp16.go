package kernels

import (
	"encoding/binary"
	"math"
)

// f16Table maps every IEEE half-precision bit pattern to its float32 value;
// the Go reference paths use it instead of bit fiddling per element.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = f16BitsToF32(uint16(h))
	}
	return &t
}()

// f16BitsToF32 converts one half-precision value exactly.
func f16BitsToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN; NaN payload kept in the top mantissa bits
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
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

// f16 reads the half at b[0:2] as float32.
func f16(b []byte) float32 { return f16Table[binary.LittleEndian.Uint16(b)] }

// f32ToF16Bits rounds to the nearest half, ties to even, as F16C's
// vcvtps2ph with imm 0 does; NaNs stay NaN (quieted), overflow becomes inf.
func f32ToF16Bits(f float32) uint16 {
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

// f32ToBF16Bits rounds to nearest even and quiets NaNs, as ggml's
// ggml_compute_fp32_to_bf16 does.
func f32ToBF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

func bf16BitsToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16ToF32 converts len(dst) little-endian halves from src (2*len(dst) bytes).
func F16ToF32(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	f16ToF32Impl(dst, src)
}

// F32ToF16 converts len(src) floats into little-endian halves in dst
// (2*len(src) bytes), rounding to nearest even.
func F32ToF16(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	f32ToF16Impl(dst, src)
}

// BF16ToF32 converts len(dst) little-endian bfloat16 values from src.
func BF16ToF32(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	bf16ToF32Impl(dst, src)
}

func f16ToF32Go(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f16Table[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

func f32ToF16Go(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], f32ToF16Bits(v))
	}
}

func bf16ToF32Go(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = bf16BitsToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// RoundF16 stores in dst[i] the value of src[i] rounded to half precision
// (nearest even), as float32; dst may be src. It equals F32ToF16 followed by
// F16ToF32 without the staging buffer.
func RoundF16(dst, src []float32) {
	dst = dst[:len(src)]
	roundF16Impl(dst, src)
}
