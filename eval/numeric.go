package eval

import (
	"encoding/binary"
	"math"

	"github.com/x448/float16"
)

// rmsNorm writes x scaled to unit root-mean-square times weight. The sum of
// squares accumulates in float64 as ggml's rms_norm does.
func rmsNorm(dst, x, weight []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	for i, v := range x {
		dst[i] = v * scale * weight[i]
	}
}

// silu is x·σ(x), computed as ggml does (x / (1 + e^-x)).
func silu(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// roundF16 rounds v to the nearest half-precision value.
func roundF16(v float32) float32 {
	return float16.Fromfloat32(v).Float32()
}

func putF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(float16.Fromfloat32(v)))
	}
}

// softmaxInPlace turns scores into probabilities; the denominator is summed
// in float64 (ggml's soft_max does the same).
func softmaxInPlace(x []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		if v > maxv {
			maxv = v
		}
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}
