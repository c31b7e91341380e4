package eval

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/llqt/llqt/formats/block"
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

// softmaxInPlace turns scores into probabilities; the denominator is summed
// in float64 (ggml's soft_max does the same).
func softmaxInPlace(x []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		if v > maxv {
			maxv = v
		}
	}
	kernels.ExpShifted(x, maxv)
	var sum float64
	for _, e := range x {
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

// matrix is w as the kernels see it.
func (w *Weight) matrix() kernels.Matrix {
	return kernels.Matrix{Type: w.Type, Data: w.Data, Rows: w.Rows, Cols: w.Cols}
}

// maxF16 is the largest finite float16.
const maxF16 = 65504

// NumericError reports the first value of a forward pass that is not
// finite, or that does not fit the F16 KV cache (where ggml would store an
// infinity and every later score would be NaN): the layer, the token's
// position in the sequence and what overflowed.
type NumericError struct {
	Layer int     // 0-based
	Pos   int     // the token's position in the sequence
	What  string  // "key", "value", "query", "residual stream", "logit"
	Value float32 // the offending value
	// KVF16 is set when the value is finite but outside F16's range, so an
	// F32 KV cache avoids it.
	KVF16 bool
}

func (e *NumericError) Error() string {
	where := fmt.Sprintf("layer %d, token position %d", e.Layer, e.Pos)
	if e.Layer < 0 {
		where = fmt.Sprintf("output, token position %d", e.Pos)
	}
	if e.KVF16 && e.What == "query" {
		return fmt.Sprintf("%s: a query of %g exceeds F16's range (largest %d); with an F16 KV cache it is rounded to F16 for the product with the keys, which would make every later score NaN; keep the KV cache in F32 (--kv-f32, or -ctk f32 -ctv f32)",
			where, e.Value, maxF16)
	}
	if e.KVF16 {
		return fmt.Sprintf("%s: a %s of %g overflows the F16 KV cache (largest %d), which would make every later score NaN; keep the KV cache in F32 (--kv-f32, or -ctk f32 -ctv f32)",
			where, e.What, e.Value, maxF16)
	}
	return fmt.Sprintf("%s: the %s holds %g: the model's weights or the computation overflow float32", where, e.What, e.Value)
}

// checkF16 returns a NumericError for the first value of x (a [n][dim]
// block of tokens at positions p0…) that is not finite or exceeds F16's range.
func checkF16(x []float32, dim, layer, p0 int, what string) error {
	for i, v := range x {
		if !(v >= -maxF16 && v <= maxF16) {
			return &NumericError{Layer: layer, Pos: p0 + i/dim, What: what, Value: v, KVF16: !isNaNOrInf(v)}
		}
	}
	return nil
}

// checkFinite returns a NumericError for the first value of x that is not finite.
func checkFinite(x []float32, dim, layer, p0 int, what string) error {
	for i, v := range x {
		if isNaNOrInf(v) {
			return &NumericError{Layer: layer, Pos: p0 + i/dim, What: what, Value: v}
		}
	}
	return nil
}

func isNaNOrInf(v float32) bool { return v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 }

// softcap bounds x to ±cap smoothly: cap·tanh(x/cap), with x/cap computed as
// x·(1/cap) as ggml's scale does (Gemma 2's soft-capping).
func softcap(x []float32, cap float32) {
	inv := 1 / cap
	for i, v := range x {
		x[i] = float32(math.Tanh(float64(v*inv))) * cap
	}
}

// geluCoefA and sqrt2OverPi are the constants of GELU's tanh approximation.
const (
	geluCoefA   = 0.044715
	sqrt2OverPi = 0.79788456080286535587989211986876
)

// gelu is GELU's tanh approximation in float32.
func gelu(x float32) float32 {
	return 0.5 * x * (1 + float32(math.Tanh(float64(sqrt2OverPi*x*(1+geluCoefA*x*x)))))
}

// geluTable holds GELU of every half-precision input, rounded to half.
var geluTable = sync.OnceValue(func() []float32 {
	t := make([]float32, 1<<16)
	for i := range t {
		t[i] = block.HalfToFloat(block.FloatToHalf(gelu(block.HalfToFloat(uint16(i)))))
	}
	return t
})

// geluF16 is GELU as ggml's CPU backend computes it (GGML_GELU_FP16): the
// input rounded to half precision looks up a half-precision table, except
// beyond ±10 where GELU is 0 or x. Matching its rounding matters: the random
// test models amplify differences of a half ulp through their layers.
func geluF16(x float32) float32 {
	switch {
	case x <= -10:
		return 0
	case x >= 10:
		return x
	}
	return geluTable()[block.FloatToHalf(x)]
}

// sqrtf is the float32 square root (correctly rounded, as C's sqrtf).
func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }
