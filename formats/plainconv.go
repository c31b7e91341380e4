package formats

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// PlainConvertible reports whether ConvertPlain converts from to to: both
// F32, F16 or BF16.
func PlainConvertible(from, to ggml.Type) bool { return isPlainFloat(from) && isPlainFloat(to) }

func isPlainFloat(t ggml.Type) bool {
	return t == ggml.TypeF32 || t == ggml.TypeF16 || t == ggml.TypeBF16
}

// ConvertPlain converts the elements in src, of type from, to type to in
// dst, element by element without a float32 slice in between. The bytes
// are exactly those of PlainCodec's Decode followed by its Encode; dst must
// have room for exactly as many elements as src holds.
func ConvertPlain(to ggml.Type, dst []byte, from ggml.Type, src []byte) error {
	if !PlainConvertible(from, to) {
		return fmt.Errorf("cannot convert %s to %s element by element", from, to)
	}
	n := len(src) / from.TypeSize()
	if len(src) != n*from.TypeSize() || len(dst) != n*to.TypeSize() {
		return fmt.Errorf("%d bytes of %s do not fit %d bytes of %s", len(src), from, len(dst), to)
	}
	switch {
	case from == to:
		copy(dst, src)
	case from == ggml.TypeBF16 && to == ggml.TypeF16:
		BF16ToF16(dst, src)
	case from == ggml.TypeBF16 && to == ggml.TypeF32:
		for i := range n {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(binary.LittleEndian.Uint16(src[2*i:]))<<16)
		}
	case from == ggml.TypeF16 && to == ggml.TypeF32:
		for i := range n {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(block.LoadF16(src[2*i:])))
		}
	case from == ggml.TypeF16 && to == ggml.TypeBF16:
		for i := range n {
			binary.LittleEndian.PutUint16(dst[2*i:], block.FloatToBF16(block.LoadF16(src[2*i:])))
		}
	case from == ggml.TypeF32 && to == ggml.TypeF16:
		for i := range n {
			block.StoreF16(dst[2*i:], math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case from == ggml.TypeF32 && to == ggml.TypeBF16:
		for i := range n {
			binary.LittleEndian.PutUint16(dst[2*i:], block.FloatToBF16(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))))
		}
	}
	return nil
}

// bf16ToF16Table is the half nearest (ties to even) to each bfloat16, for
// the values the fast path below leaves out: zeros, values below the
// half's normal range, overflow, infinities and NaNs.
var bf16ToF16Table = func() *[1 << 16]uint16 {
	var t [1 << 16]uint16
	for h := range t {
		t[h] = block.FloatToHalf(block.BF16ToFloat(uint16(h)))
	}
	return &t
}()

// Bit patterns of four little-endian 16-bit lanes packed in a uint64.
const (
	lanes4Sign = 0x8000_8000_8000_8000
	lanes4Mag  = 0x7fff_7fff_7fff_7fff
	// A bfloat16's exponent and mantissa (its low 15 bits) are em =
	// e<<7 | m. Halves are normal for e-127 in [-14, 15], that is e in
	// [113, 142]: em in [113<<7, 143<<7).
	bf16HalfLow  = 113 << 7
	bf16HalfHigh = 143 << 7
	// Adding 0x8000-x to a 15-bit lane sets its bit 15 exactly when the
	// lane is at least x, with no carry into the next lane.
	lanes4AtLeastLow  = (0x8000 - bf16HalfLow) * 0x0001_0001_0001_0001
	lanes4AtLeastHigh = (0x8000 - bf16HalfHigh) * 0x0001_0001_0001_0001
	// A normal half is sign | (e-112)<<10 | m<<3 = sign | (em - 112<<7)<<3.
	lanes4Rebias = (112 << 7) * 0x0001_0001_0001_0001
)

// BF16ToF16 converts little-endian bfloat16s in src to little-endian halves
// in dst (len(dst) == len(src)), rounding as FloatToHalf does on the
// bfloat16's float32 value: exactly numpy's astype(float16) after the
// bfloat16 is widened, which is what convert_hf_to_gguf.py computes.
//
// Every bfloat16 in the half's normal range converts exactly: its 7
// mantissa bits fit the half's 10, so the result is a re-biased exponent
// and a shift, done on four values at once. Groups with any other value
// (zero, tiny, huge, infinite or NaN) go through a table.
func BF16ToF16(dst, src []byte) {
	n := len(src) / 2
	dst = dst[:2*n]
	i := 0
	for ; i+4 <= n; i += 4 {
		s, d := src[2*i:2*i+8], dst[2*i:2*i+8]
		x := binary.LittleEndian.Uint64(s)
		mag := x & lanes4Mag
		ge := (mag + lanes4AtLeastLow) & lanes4Sign
		gt := (mag + lanes4AtLeastHigh) & lanes4Sign
		if ge == lanes4Sign && gt == 0 {
			binary.LittleEndian.PutUint64(d, x&lanes4Sign|(mag-lanes4Rebias)<<3)
			continue
		}
		for k := 0; k < 8; k += 2 {
			binary.LittleEndian.PutUint16(d[k:], bf16ToF16Table[binary.LittleEndian.Uint16(s[k:])])
		}
	}
	for ; i < n; i++ {
		binary.LittleEndian.PutUint16(dst[2*i:], bf16ToF16Table[binary.LittleEndian.Uint16(src[2*i:])])
	}
}
