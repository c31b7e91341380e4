package quant

import (
	"encoding/binary"
	"math"

	"github.com/llqt/llqt/formats/block"
)

// The 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1. Without an
// importance matrix they are encoded as quantize_row_<type>_ref does.

// maxAbsSigned returns the element of largest magnitude (the first one on
// ties) and that magnitude.
func maxAbsSigned(x []float32) (max, amax float32) {
	for _, v := range x {
		if ax := abs32(v); amax < ax {
			amax = ax
			max = v
		}
	}
	return max, amax
}

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

// Q4_0: d f16, qs[16] (low nibbles elements 0..15, high nibbles 16..31).
func quantizeRowQ4_0(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q4_0Bytes : (i+1)*block.Q4_0Bytes]
		max, _ := maxAbsSigned(xb)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		for j := 0; j < block.QK/2; j++ {
			x0 := xb[j] * id
			x1 := xb[j+block.QK/2] * id
			xi0 := uint8(min(15, int8(truncToInt(x0+8.5))))
			xi1 := uint8(min(15, int8(truncToInt(x1+8.5))))
			b[2+j] = xi0 | xi1<<4
		}
	}
}

func dequantizeQ4_0(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q4_0Bytes:]
		d := block.LoadF16(b)
		for j := 0; j < block.QK/2; j++ {
			y[i*block.QK+j] = float32(int32(b[2+j]&0xF)-8) * d
			y[i*block.QK+j+block.QK/2] = float32(int32(b[2+j]>>4)-8) * d
		}
	}
}

// Q4_1: d f16, m f16, qs[16].
func quantizeRowQ4_1(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q4_1Bytes : (i+1)*block.Q4_1Bytes]
		min, max := minMax(xb)
		d := (max - min) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		block.StoreF16(b[2:], min)
		for j := 0; j < block.QK/2; j++ {
			x0 := (xb[j] - min) * id
			x1 := (xb[j+block.QK/2] - min) * id
			xi0 := uint8(minI8(15, int8(truncToInt(x0+0.5))))
			xi1 := uint8(minI8(15, int8(truncToInt(x1+0.5))))
			b[4+j] = xi0 | xi1<<4
		}
	}
}

func minI8(a, b int8) int8 {
	if a < b {
		return a
	}
	return b
}

func dequantizeQ4_1(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q4_1Bytes:]
		d, m := block.LoadF16(b), block.LoadF16(b[2:])
		for j := 0; j < block.QK/2; j++ {
			y[i*block.QK+j] = float32(float32(b[4+j]&0xF)*d) + m
			y[i*block.QK+j+block.QK/2] = float32(float32(b[4+j]>>4)*d) + m
		}
	}
}

// Q5_0: d f16, qh u32 (fifth bits), qs[16].
func quantizeRowQ5_0(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q5_0Bytes : (i+1)*block.Q5_0Bytes]
		max, _ := maxAbsSigned(xb)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		var qh uint32
		for j := 0; j < block.QK/2; j++ {
			x0 := xb[j] * id
			x1 := xb[j+block.QK/2] * id
			xi0 := uint8(min(31, int8(truncToInt(x0+16.5))))
			xi1 := uint8(min(31, int8(truncToInt(x1+16.5))))
			b[6+j] = xi0&0xF | (xi1&0xF)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + block.QK/2)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

func dequantizeQ5_0(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q5_0Bytes:]
		d := block.LoadF16(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		for j := 0; j < block.QK/2; j++ {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[i*block.QK+j] = float32(int32(b[6+j]&0xF|h0)-16) * d
			y[i*block.QK+j+block.QK/2] = float32(int32(b[6+j]>>4|h1)-16) * d
		}
	}
}

// Q5_1: d f16, m f16, qh u32, qs[16].
func quantizeRowQ5_1(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q5_1Bytes : (i+1)*block.Q5_1Bytes]
		min, max := minMax(xb)
		d := (max - min) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		block.StoreF16(b[2:], min)
		var qh uint32
		for j := 0; j < block.QK/2; j++ {
			x0 := (xb[j] - min) * id
			x1 := (xb[j+block.QK/2] - min) * id
			xi0 := uint8(truncToInt(x0 + 0.5))
			xi1 := uint8(truncToInt(x1 + 0.5))
			b[8+j] = xi0&0xF | (xi1&0xF)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + block.QK/2)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

func dequantizeQ5_1(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q5_1Bytes:]
		d, m := block.LoadF16(b), block.LoadF16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		for j := 0; j < block.QK/2; j++ {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[i*block.QK+j] = float32(float32(b[8+j]&0xF|h0)*d) + m
			y[i*block.QK+j+block.QK/2] = float32(float32(b[8+j]>>4|h1)*d) + m
		}
	}
}

// Q8_0: d f16, qs[32] int8.
func quantizeRowQ8_0(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q8_0Bytes : (i+1)*block.Q8_0Bytes]
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		for j, v := range xb {
			b[2+j] = byte(int8(truncToInt(roundAway(v * id))))
		}
	}
}

func dequantizeQ8_0(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q8_0Bytes:]
		d := block.LoadF16(b)
		for j := 0; j < block.QK; j++ {
			y[i*block.QK+j] = float32(int8(b[2+j])) * d
		}
	}
}

// Q8_1: d f16, s f16 (d times the sum of the quants), qs[32] int8.
func quantizeRowQ8_1(y []byte, x []float32, _ []float32) {
	for i := 0; i < len(x)/block.QK; i++ {
		xb := x[i*block.QK : (i+1)*block.QK]
		b := y[i*block.Q8_1Bytes : (i+1)*block.Q8_1Bytes]
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		block.StoreF16(b, d)
		var sum int32
		for j := 0; j < block.QK/2; j++ {
			q0 := int8(truncToInt(roundAway(xb[j] * id)))
			q1 := int8(truncToInt(roundAway(xb[j+block.QK/2] * id)))
			b[4+j] = byte(q0)
			b[4+j+block.QK/2] = byte(q1)
			sum += int32(q0) + int32(q1)
		}
		block.StoreF16(b[2:], float32(sum)*d)
	}
}

func dequantizeQ8_1(y []float32, x []byte) {
	for i := 0; i < len(y)/block.QK; i++ {
		b := x[i*block.Q8_1Bytes:]
		d := block.LoadF16(b)
		for j := 0; j < block.QK; j++ {
			y[i*block.QK+j] = float32(int8(b[4+j])) * d
		}
	}
}
