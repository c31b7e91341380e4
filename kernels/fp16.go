package kernels

import (
	"encoding/binary"

	"github.com/llqt/llqt/formats/block"
)

// f16 reads the half at b[0:2] as float32.
func f16(b []byte) float32 { return block.LoadF16(b) }

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
		dst[i] = block.HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func f32ToF16Go(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], block.FloatToHalf(v))
	}
}

func bf16ToF32Go(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = block.BF16ToFloat(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// RoundF16 stores in dst[i] the value of src[i] rounded to half precision
// (nearest even), as float32; dst may be src. It equals F32ToF16 followed by
// F16ToF32 without the staging buffer.
func RoundF16(dst, src []float32) {
	dst = dst[:len(src)]
	roundF16Impl(dst, src)
}
