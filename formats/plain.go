package formats

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats/block"
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
		for i := range out {
			out[i] = block.LoadF16(raw[2*i:])
		}
	case ggml.TypeBF16:
		for i := range out {
			out[i] = block.BF16ToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
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

// F32ToF16 encodes to little-endian IEEE half floats, rounding to nearest even.
func F32ToF16(dst []byte, src []float32) {
	for i, v := range src {
		block.StoreF16(dst[2*i:], v)
	}
}

// F32ToBF16 encodes to little-endian bfloat16 with block.FloatToBF16.
func F32ToBF16(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], block.FloatToBF16(v))
	}
}
