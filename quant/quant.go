package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// rowQuantizer encodes one row (a whole number of blocks) into dst. qw is
// nil or the row's importance weights, one per element.
type rowQuantizer func(dst []byte, src []float32, qw []float32)

// blockDequantizer decodes whole blocks of src into dst.
type blockDequantizer func(dst []float32, src []byte)

type codec struct {
	quantize   rowQuantizer
	dequantize blockDequantizer
}

var codecs = map[ggml.Type]codec{
	ggml.TypeQ4_0:    {block.EncodeQ4_0, block.DecodeQ4_0},
	ggml.TypeQ4_1:    {block.EncodeQ4_1, block.DecodeQ4_1},
	ggml.TypeQ5_0:    {block.EncodeQ5_0, block.DecodeQ5_0},
	ggml.TypeQ5_1:    {block.EncodeQ5_1, block.DecodeQ5_1},
	ggml.TypeQ8_0:    {block.EncodeQ8_0, block.DecodeQ8_0},
	ggml.TypeQ8_1:    {block.EncodeQ8_1, block.DecodeQ8_1},
	ggml.TypeQ2_K:    {block.EncodeQ2_K, block.DecodeQ2_K},
	ggml.TypeQ3_K:    {block.EncodeQ3_K, block.DecodeQ3_K},
	ggml.TypeQ4_K:    {block.EncodeQ4_K, block.DecodeQ4_K},
	ggml.TypeQ5_K:    {block.EncodeQ5_K, block.DecodeQ5_K},
	ggml.TypeQ6_K:    {block.EncodeQ6_K, block.DecodeQ6_K},
	ggml.TypeQ8_K:    {block.EncodeQ8_K, block.DecodeQ8_K},
	ggml.TypeIQ4_NL:  {block.EncodeIQ4_NL, block.DecodeIQ4_NL},
	ggml.TypeIQ4_XS:  {block.EncodeIQ4_XS, block.DecodeIQ4_XS},
	ggml.TypeIQ2_XXS: {block.EncodeIQ2_XXS, block.DecodeIQ2_XXS},
	ggml.TypeIQ2_XS:  {block.EncodeIQ2_XS, block.DecodeIQ2_XS},
	ggml.TypeIQ2_S:   {block.EncodeIQ2_S, block.DecodeIQ2_S},
	ggml.TypeIQ3_XXS: {block.EncodeIQ3_XXS, block.DecodeIQ3_XXS},
	ggml.TypeIQ3_S:   {block.EncodeIQ3_S, block.DecodeIQ3_S},
	ggml.TypeTQ1_0:   {block.EncodeTQ1_0, block.DecodeTQ1_0},
	ggml.TypeTQ2_0:   {block.EncodeTQ2_0, block.DecodeTQ2_0},
	ggml.TypeIQ1_S:   {block.EncodeIQ1_S, block.DecodeIQ1_S},
	ggml.TypeIQ1_M:   {block.EncodeIQ1_M, block.DecodeIQ1_M},
}

// requiresImatrix is ggml_quantize_requires_imatrix: ggml's encoders of
// these types assert that importance weights were given.
func requiresImatrix(t ggml.Type) bool {
	return t == ggml.TypeIQ2_XXS || t == ggml.TypeIQ2_XS || t == ggml.TypeIQ1_S
}

// CanQuantize reports whether Quantize supports t.
func CanQuantize(t ggml.Type) bool {
	_, ok := codecs[t]
	return ok
}

// CanDequantize reports whether Dequantize supports t.
func CanDequantize(t ggml.Type) bool {
	if _, ok := codecs[t]; ok {
		return true
	}
	return t.Known() && !t.Quantized()
}

// RowSize is the number of bytes of one encoded row of ne0 elements.
func RowSize(t ggml.Type, ne0 int) (int, error) {
	if !CanQuantize(t) {
		return 0, fmt.Errorf("quant: cannot quantize to %s", t)
	}
	if ne0 <= 0 || ne0%t.BlockSize() != 0 {
		return 0, fmt.Errorf("quant: row of %d elements is not a whole number of %s blocks (%d)", ne0, t, t.BlockSize())
	}
	return ne0 / t.BlockSize() * t.TypeSize(), nil
}

// Quantize encodes nrows rows of ne0 float32 each (len(src) = nrows*ne0) as
// type t into a new slice. imatrix may be nil; otherwise it holds one
// importance weight per column (len ne0) and selects llama.cpp's
// importance-weighted encoders. It returns an error for unsupported types,
// ne0 not a multiple of the block size, or non-finite input.
func Quantize(t ggml.Type, src []float32, ne0 int, imatrix []float32) ([]byte, error) {
	rs, err := RowSize(t, ne0)
	if err != nil {
		return nil, err
	}
	if len(src)%ne0 != 0 {
		return nil, fmt.Errorf("quant: %d values are not a whole number of rows of %d", len(src), ne0)
	}
	dst := make([]byte, len(src)/ne0*rs)
	if err := QuantizeRows(t, dst, src, ne0, imatrix); err != nil {
		return nil, err
	}
	return dst, nil
}

// QuantizeRows encodes the whole rows in src (len(src) a multiple of ne0)
// into dst, which must hold exactly len(src)/ne0 rows of RowSize(t, ne0)
// bytes. Rows are encoded independently, so a caller may split a tensor into
// row ranges and encode them concurrently; row indices in errors count from
// the start of src.
//
// Values beyond the range a format's fp16 scales can express encode to
// infinite scales, exactly as in ggml; llama-quantize then refuses the
// tensor, and callers should do the same with ValidateRows (Codec does).
func QuantizeRows(t ggml.Type, dst []byte, src []float32, ne0 int, imatrix []float32) error {
	return quantizeRows(t, dst, src, ne0, imatrix, 0)
}

// quantizeRows is QuantizeRows with errors numbering rows from firstRow.
func quantizeRows(t ggml.Type, dst []byte, src []float32, ne0 int, imatrix []float32, firstRow int) error {
	rs, err := RowSize(t, ne0)
	if err != nil {
		return err
	}
	if len(src)%ne0 != 0 {
		return fmt.Errorf("quant: %d values are not a whole number of rows of %d", len(src), ne0)
	}
	nrows := len(src) / ne0
	if len(dst) != nrows*rs {
		return fmt.Errorf("quant: destination has %d bytes, %d rows of %s need %d", len(dst), nrows, t, nrows*rs)
	}
	if imatrix == nil && requiresImatrix(t) {
		return fmt.Errorf("quant: %s needs an importance matrix", t)
	}
	if imatrix != nil && len(imatrix) != ne0 {
		return fmt.Errorf("quant: importance matrix has %d weights for rows of %d", len(imatrix), ne0)
	}
	for i, w := range imatrix {
		if !finite(w) {
			return fmt.Errorf("quant: importance weight %d is %v", i, w)
		}
	}
	q := codecs[t].quantize
	for r := 0; r < nrows; r++ {
		row := src[r*ne0 : (r+1)*ne0]
		for j, v := range row {
			if !finite(v) {
				return fmt.Errorf("quant: row %d, column %d: value %v cannot be quantized", firstRow+r, j, v)
			}
		}
		q(dst[r*rs:(r+1)*rs], row, imatrix)
	}
	return nil
}

func finite(f float32) bool { return math.Float32bits(f)&0x7f800000 != 0x7f800000 }

// Dequantize decodes n elements of type t: any supported block format, and
// the plain types F32, F16, BF16 (and F64, I8, I16, I32).
func Dequantize(t ggml.Type, src []byte, n int) ([]float32, error) {
	if n < 0 {
		return nil, fmt.Errorf("quant: negative element count %d", n)
	}
	c, ok := codecs[t]
	if !ok {
		if t.Known() && !t.Quantized() {
			return formats.PlainCodec{}.Decode(t, src, n)
		}
		return nil, fmt.Errorf("quant: cannot dequantize %s", t)
	}
	bs := t.BlockSize()
	if n%bs != 0 {
		return nil, fmt.Errorf("quant: %d elements are not a whole number of %s blocks (%d)", n, t, bs)
	}
	if want := n / bs * t.TypeSize(); len(src) != want {
		return nil, fmt.Errorf("quant: %s data has %d bytes, %d elements need %d", t, len(src), n, want)
	}
	dst := make([]float32, n)
	c.dequantize(dst, src)
	return dst, nil
}

// DequantizeInto decodes len(dst) elements of block format t from src into
// dst without allocating; len(dst) must be a whole number of blocks and src
// exactly their bytes.
func DequantizeInto(t ggml.Type, dst []float32, src []byte) error {
	c, ok := codecs[t]
	if !ok {
		return fmt.Errorf("quant: cannot dequantize %s", t)
	}
	bs := t.BlockSize()
	if len(dst)%bs != 0 || len(src) != len(dst)/bs*t.TypeSize() {
		return fmt.Errorf("quant: %d bytes of %s do not hold %d elements", len(src), t, len(dst))
	}
	c.dequantize(dst, src)
	return nil
}

// ValidateRows checks encoded rows of ne0 elements like llama.cpp's
// ggml_validate_row_data: no NaN or infinity in the block scales (d, and m
// or dmin where the format has them) or in float data. The error names the
// row and block.
func ValidateRows(t ggml.Type, data []byte, ne0 int) error {
	return validateRowsFrom(t, data, ne0, 0)
}

// validateRowsFrom is ValidateRows for rows that start at row firstRow of
// their tensor, which errors count from.
func validateRowsFrom(t ggml.Type, data []byte, ne0, firstRow int) error {
	if !t.Known() {
		return fmt.Errorf("quant: unknown type %s", t)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if ne0 <= 0 || ne0%bs != 0 {
		return fmt.Errorf("quant: row of %d elements is not a whole number of %s blocks (%d)", ne0, t, bs)
	}
	rs := ne0 / bs * ts
	if len(data)%rs != 0 {
		return fmt.Errorf("quant: %d bytes are not a whole number of %s rows of %d bytes", len(data), t, rs)
	}
	if plainFinite(t, data) {
		return nil // the common case, without the per-element bookkeeping below
	}
	// Byte offsets inside a block of the fp16 fields to check.
	var halves []int
	switch t {
	case ggml.TypeQ4_0, ggml.TypeQ5_0, ggml.TypeQ8_0, ggml.TypeIQ4_NL, ggml.TypeIQ4_XS, ggml.TypeIQ3_XXS, ggml.TypeIQ3_S, ggml.TypeIQ1_S:
		halves = []int{0}
	case ggml.TypeIQ2_XXS, ggml.TypeIQ2_XS, ggml.TypeIQ2_S:
		halves = []int{0}
	case ggml.TypeQ4_1, ggml.TypeQ5_1, ggml.TypeQ4_K, ggml.TypeQ5_K:
		halves = []int{0, 2}
	case ggml.TypeQ2_K:
		halves = []int{80, 82}
	case ggml.TypeQ3_K:
		halves = []int{108}
	case ggml.TypeQ6_K:
		halves = []int{208}
	case ggml.TypeTQ1_0:
		halves = []int{block.TQ1_0DOff}
	case ggml.TypeTQ2_0:
		halves = []int{block.TQ2_0DOff}
	case ggml.TypeQ8_1:
		halves = []int{0} // ggml does not validate Q8_1; the scale is checked anyway
	case ggml.TypeF16:
		halves = []int{0}
	}
	for off := 0; off < len(data); off += ts {
		row, blk := firstRow+off/rs, off%rs/ts
		b := data[off : off+ts]
		bad := func(kind string) error {
			return fmt.Errorf("quant: %s row %d, block %d: %s", t, row, blk, kind)
		}
		switch t {
		case ggml.TypeF32, ggml.TypeQ8_K:
			u := binary.LittleEndian.Uint32(b)
			if u&0x7f800000 == 0x7f800000 {
				return bad(nanOrInf(u&0x7fffff != 0))
			}
		case ggml.TypeF64:
			u := binary.LittleEndian.Uint64(b)
			if u>>52&0x7ff == 0x7ff {
				return bad(nanOrInf(u&(1<<52-1) != 0))
			}
		case ggml.TypeBF16:
			u := binary.LittleEndian.Uint16(b) & 0x7fff
			if u >= 0x7f80 {
				return bad(nanOrInf(u > 0x7f80))
			}
		case ggml.TypeIQ1_M: // the fp16 scale is spread over the scale words
			if u := block.IQ1MScaleBits(b); u&0x7c00 == 0x7c00 {
				return bad(nanOrInf(u&0x3ff != 0))
			}
		}
		for _, h := range halves {
			u := binary.LittleEndian.Uint16(b[h:])
			if u&0x7c00 == 0x7c00 {
				return bad(nanOrInf(u&0x3ff != 0))
			}
		}
	}
	return nil
}

// plainFinite reports whether data of a plain float type (F32, F16, BF16)
// holds no NaN or infinity; false for other types or when it does, and
// the caller then finds and describes the first bad value.
func plainFinite(t ggml.Type, data []byte) bool {
	switch t {
	case ggml.TypeF16:
		for i := 0; i+2 <= len(data); i += 2 {
			if binary.LittleEndian.Uint16(data[i:])&0x7c00 == 0x7c00 {
				return false
			}
		}
		return true
	case ggml.TypeBF16:
		for i := 0; i+2 <= len(data); i += 2 {
			if binary.LittleEndian.Uint16(data[i:])&0x7fff >= 0x7f80 {
				return false
			}
		}
		return true
	case ggml.TypeF32:
		for i := 0; i+4 <= len(data); i += 4 {
			if binary.LittleEndian.Uint32(data[i:])&0x7f800000 == 0x7f800000 {
				return false
			}
		}
		return true
	}
	return false
}

func nanOrInf(nan bool) string {
	if nan {
		return "NaN value"
	}
	return "infinite value"
}

// Codec implements formats.Codec for every block format Quantize supports
// and, through formats.PlainCodec, for the plain float types.
type Codec struct {
	// Imatrix maps tensor names to importance weights (one per column, times
	// the experts of a 3-D tensor), as Imatrix.Weights holds them. Encode
	// has no tensor name and ignores it; EncodeTensor uses it.
	Imatrix map[string][]float32
	// Workers is the number of goroutines a tensor is split over (1 when
	// zero); the bytes do not depend on it.
	Workers int
}

// Decode implements formats.Codec.
func (Codec) Decode(t ggml.Type, raw []byte, n int) ([]float32, error) {
	return Dequantize(t, raw, n)
}

// Encode implements formats.Codec. Like llama-quantize it refuses output
// whose scales overflowed (ValidateRows).
func (c Codec) Encode(t ggml.Type, data []float32, ne0 int) ([]byte, error) {
	return c.encode(t, data, ne0, nil)
}

func (c Codec) encode(t ggml.Type, data []float32, ne0 int, imatrix []float32) ([]byte, error) {
	if !CanQuantize(t) {
		return formats.PlainCodec{}.Encode(t, data, ne0)
	}
	out, err := QuantizeParallel(t, data, ne0, imatrix, max(1, c.Workers))
	if err != nil {
		return nil, err
	}
	if err := ValidateRows(t, out, ne0); err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeTensor encodes the tensor called name, of shape (ggml order, ne0
// first) and float32 data, as t. When c.Imatrix has weights for it they
// are used as llama-quantize does: each of the ne2 matrices of a 3-D tensor
// gets its own ne0 weights; a size mismatch is an error except for
// token_embd.weight, which is then encoded without weights.
func (c Codec) EncodeTensor(name string, t ggml.Type, data []float32, shape []uint64) ([]byte, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("quant: tensor %s has no shape", name)
	}
	ne0 := int(shape[0])
	ne2 := 1
	if len(shape) > 2 {
		ne2 = int(shape[2])
	}
	var weights []float32
	if c.Imatrix != nil && CanQuantize(t) && len(shape) <= 3 {
		w, err := (&Imatrix{Weights: c.Imatrix}).For(name, ne0, ne2)
		if err != nil {
			return nil, err
		}
		weights = w
	}
	if weights == nil || ne2 == 1 {
		out, err := c.encode(t, data, ne0, weights)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		return out, nil
	}
	if len(data)%ne2 != 0 {
		return nil, fmt.Errorf("quant: tensor %s: %d values for %d experts", name, len(data), ne2)
	}
	per := len(data) / ne2
	var out []byte
	for e := 0; e < ne2; e++ {
		part, err := c.encode(t, data[e*per:(e+1)*per], ne0, weights[e*ne0:(e+1)*ne0])
		if err != nil {
			return nil, fmt.Errorf("tensor %s, expert %d: %w", name, e, err)
		}
		out = append(out, part...)
	}
	return out, nil
}

// ConvertsPlainExactly implements formats.PlainCompatible: the plain types
// go through formats.PlainCodec.
func (Codec) ConvertsPlainExactly() {}

var _ formats.PlainCompatible = Codec{}
