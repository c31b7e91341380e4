package formats

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"

	"github.com/llqt/llqt/formats/ggml"
)

// PlainCodec converts the plain element types: F32, F16 and BF16 both ways,
// and F64, I8, I16 and I32 for decoding. Rounding to F16 and BF16 is to
// nearest even, as numpy and gguf-py do.
type PlainCodec struct{}

// Decode implements Codec.
func (PlainCodec) Decode(t ggml.Type, raw []byte, n int) ([]float32, error) {
	if t.Quantized() || !t.Known() {
		return nil, fmt.Errorf("cannot decode %s data without a dequantizer", t)
	}
	if len(raw) != n*t.TypeSize() {
		return nil, fmt.Errorf("%s data has %d bytes for %d elements", t, len(raw), n)
	}
	out := make([]float32, n)
	switch t {
	case ggml.TypeF32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case ggml.TypeF16:
		F16ToF32(out, raw)
	case ggml.TypeBF16:
		BF16ToF32(out, raw)
	case ggml.TypeF64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case ggml.TypeI8:
		for i := range out {
			out[i] = float32(int8(raw[i]))
		}
	case ggml.TypeI16:
		for i := range out {
			out[i] = float32(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case ggml.TypeI32:
		for i := range out {
			out[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	default:
		return nil, fmt.Errorf("cannot decode %s data", t)
	}
	return out, nil
}

// Encode implements Codec for F32, F16 and BF16.
func (PlainCodec) Encode(t ggml.Type, data []float32, ne0 int) ([]byte, error) {
	switch t {
	case ggml.TypeF32:
		out := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	case ggml.TypeF16:
		out := make([]byte, 2*len(data))
		F32ToF16(out, data)
		return out, nil
	case ggml.TypeBF16:
		out := make([]byte, 2*len(data))
		F32ToBF16(out, data)
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode %s data without a quantizer", t)
}

// F16ToF32 decodes little-endian IEEE half floats.
func F16ToF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float16.Frombits(binary.LittleEndian.Uint16(src[2*i:])).Float32()
	}
}

// F32ToF16 encodes to little-endian IEEE half floats, rounding to nearest even.
func F32ToF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(float16.Fromfloat32(v)))
	}
}

// BF16ToF32 decodes little-endian bfloat16 values (exact).
func BF16ToF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// FloatToBF16 rounds one float32 to bfloat16: to nearest even, with NaN made
// quiet, as ggml_compute_fp32_to_bf16 and gguf-py do.
func FloatToBF16(v float32) uint16 {
	u := math.Float32bits(v)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16 | 64)
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// F32ToBF16 encodes to little-endian bfloat16 with FloatToBF16.
func F32ToBF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], FloatToBF16(v))
	}
}
