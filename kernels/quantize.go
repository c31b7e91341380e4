package kernels

import (
	"encoding/binary"
	"math"

	"github.com/llqt/llqt/formats/block"
)

// quantizeRowQ8_0Go writes len(x)/32 Q8_0 blocks to dst the way ggml-cpu's AVX2
// quantize_row_q8_0 does: d = amax/127 stored as f16, quants round(x*127/amax)
// with ties to even.
func quantizeRowQ8_0Go(dst []byte, x []float32) {
	for b := 0; b < len(x)/block.QK; b++ {
		blk := dst[b*block.Q8_0Bytes : (b+1)*block.Q8_0Bytes]
		d, _ := quantizeBlock8(blk[2:34], x[b*block.QK:(b+1)*block.QK])
		binary.LittleEndian.PutUint16(blk, block.FloatToHalf(d))
	}
}

// quantizeRowQ8_1Go is quantizeRowQ8_0Go plus s = d*Σq stored as f16, as in
// ggml-cpu's AVX2 quantize_row_q8_1.
func quantizeRowQ8_1Go(dst []byte, x []float32) {
	for b := 0; b < len(x)/block.QK; b++ {
		blk := dst[b*block.Q8_1Bytes : (b+1)*block.Q8_1Bytes]
		d, sum := quantizeBlock8(blk[4:36], x[b*block.QK:(b+1)*block.QK])
		binary.LittleEndian.PutUint16(blk, block.FloatToHalf(d))
		binary.LittleEndian.PutUint16(blk[2:], block.FloatToHalf(d*float32(sum)))
	}
}

// quantizeBlock8 fills 32 int8 quants and returns the float scale and the sum
// of the quants.
func quantizeBlock8(qs []byte, x []float32) (d float32, sum int) {
	var amax float32
	for _, v := range x[:block.QK] {
		amax = max(amax, abs32(v))
	}
	d = amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for j, v := range x[:block.QK] {
		p := v * id
		q := int(block.NearestInt(p)) // vroundps: nearest, ties to even
		q = min(max(q, -128), 127)    // vpackss saturation
		qs[j] = byte(int8(q))
		sum += q
	}
	return d, sum
}

// quantizeRowQ8_KGo writes len(x)/256 Q8_K blocks as quantize_row_q8_K_ref does:
// scale -127/max of the signed extreme, nearest_int (ties to even), clamp at
// 127, and the 16 bsums of 16 quants each.
func quantizeRowQ8_KGo(dst []byte, x []float32) {
	for b := 0; b < len(x)/block.QK_K; b++ {
		blk := dst[b*block.Q8_KBytes : (b+1)*block.Q8_KBytes]
		xs := x[b*block.QK_K : (b+1)*block.QK_K]
		var amax, maxv float32
		for _, v := range xs {
			if a := abs32(v); a > amax {
				amax, maxv = a, v
			}
		}
		if amax == 0 {
			clear(blk)
			continue
		}
		iscale := -127 / maxv
		qs := blk[4 : 4+block.QK_K]
		for j, v := range xs {
			p := iscale * v
			q := min(block.NearestInt(p), 127)
			qs[j] = byte(int8(q))
		}
		for g := 0; g < block.QK_K/16; g++ {
			s := 0
			for _, q := range qs[g*16 : g*16+16] {
				s += int(int8(q))
			}
			binary.LittleEndian.PutUint16(blk[4+block.QK_K+2*g:], uint16(int16(s)))
		}
		binary.LittleEndian.PutUint32(blk, math.Float32bits(1/iscale))
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// The activation quantizers in use: the Go ones above, or assembly that
// produces the same bytes.
var (
	quantizeRowQ8_0 = quantizeRowQ8_0Go
	quantizeRowQ8_1 = quantizeRowQ8_1Go
	quantizeRowQ8_K = quantizeRowQ8_KGo
)

// roundF16Go and roundBF16Go round activations as ggml does before an F16 or
// BF16 dot (ggml_cpu_fp32_to_fp16 / ggml_compute_fp32_to_bf16, nearest even)
// and keep them as float32: a float32 product with such a value is exactly
// the product of the two narrow values that ggml forms.
func roundF16Go(dst, x []float32) {
	for i, v := range x {
		dst[i] = block.HalfToFloat(block.FloatToHalf(v))
	}
}

func roundBF16Go(dst, x []float32) {
	for i, v := range x {
		dst[i] = block.BF16ToFloat(block.FloatToBF16(v))
	}
}

// F16 or BF16 dot.
