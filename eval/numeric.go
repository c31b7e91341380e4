package eval

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/kernels"
	"github.com/llqt/llqt/quant"
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

// dequantizeRow decodes len(dst) elements of type t from src without
// allocating.
func dequantizeRow(dst []float32, t ggml.Type, src []byte) error {
	switch t {
	case ggml.TypeF32:
		if len(src) < 4*len(dst) {
			return fmt.Errorf("F32 row has %d bytes, need %d", len(src), 4*len(dst))
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case ggml.TypeF16:
		if len(src) < 2*len(dst) {
			return fmt.Errorf("F16 row has %d bytes, need %d", len(src), 2*len(dst))
		}
		kernels.F16ToF32(dst, src[:2*len(dst)])
		return nil
	case ggml.TypeBF16:
		if len(src) < 2*len(dst) {
			return fmt.Errorf("BF16 row has %d bytes, need %d", len(src), 2*len(dst))
		}
		kernels.BF16ToF32(dst, src[:2*len(dst)])
		return nil
	}
	return quant.DequantizeInto(t, dst, src)
}

// matmulSupported reports whether weights of type t can be multiplied and
// their rows dequantized.
func matmulSupported(t ggml.Type) bool {
	return kernels.Supported(t) && (!t.Quantized() || quant.CanDequantize(t))
}

// matmul computes dst[i*w.Rows+r] = row r of w · x[i] for n activation rows.
func (m *Model) matmul(dst []float32, w *Weight, x []float32, n int) {
	kernels.MatMul(dst, kernels.Matrix{Type: w.Type, Data: w.Data, Rows: w.Rows, Cols: w.Cols}, x, n, m.threads)
}
