package formats

import (
	"fmt"

	"github.com/llqt/llqt/formats/ggml"
)

// A writer that materialises whole tensors holds each one several times
// over (the source bytes, a float32 copy and the encoded bytes): for a
// 32000×2048 embedding that is most of a gigabyte. The interfaces here let
// it produce a tensor a range of rows at a time instead, with memory
// bounded by the ranges in flight rather than by the largest tensor.

// RowSource is a Source that can read part of its bytes.
type RowSource interface {
	Source
	// RawSize is the number of bytes ReadRaw would return.
	RawSize() int64
	// ReadRange fills p with the source bytes starting at byte off (a
	// multiple of the row size when called by RowStream). It is safe for
	// concurrent use.
	ReadRange(p []byte, off int64) error
}

// RowEncoder is a Source that produces its (already encoded) bytes a range
// of whole rows at a time: a quantizer converting another tensor.
type RowEncoder interface {
	Source
	// RowLayout describes the rows EncodeRows produces.
	RowLayout() RowLayout
	// EncodeRows fills dst (len (hi-lo)*RowLayout().Bytes) with rows
	// [lo, hi). It is safe for concurrent use with other row ranges.
	EncodeRows(dst []byte, lo, hi int) error
}

// RowLayout is the shape of a RowEncoder's output.
type RowLayout struct {
	// Rows is the number of rows and Bytes the bytes of one row.
	Rows, Bytes int
	// Scratch is the working memory encoding one row takes besides its
	// output.
	Scratch int
	// Granule, when above 1, is what ranges of rows should be multiples of
	// (the encoder's own work units); the last range may be shorter.
	Granule int
}

// RowPermutation is a Transform that only moves whole rows (ne0 elements),
// such as the Llama q/k rotary permutation. A writer applies it by reading
// rows in permuted order, without decoding the tensor.
type RowPermutation interface {
	Transform
	// SourceRows returns, for each output row of a tensor of the given
	// shape (ggml order, two or more dimensions), the input row it is
	// copied from; an error for a shape the permutation does not fit.
	SourceRows(shape []uint64) ([]int, error)
}

// PlainCompatible is a Codec that converts the plain types (F32, F16,
// BF16) exactly as PlainCodec does, so a writer may convert those element
// by element (ConvertPlain) instead of through the codec.
type PlainCompatible interface {
	Codec
	ConvertsPlainExactly()
}

// ConvertsPlainExactly implements PlainCompatible.
func (PlainCodec) ConvertsPlainExactly() {}

// RowStream produces a tensor's output bytes a range of rows at a time. It
// gives exactly the bytes Materialize gives.
type RowStream struct {
	t        *Tensor
	rows     int
	rowBytes int // output bytes per row
	// srcRowBytes is the source bytes per row; zero for an encoder.
	srcRowBytes int
	// perm maps output rows to source rows; nil for the identity.
	perm []int
	src  RowSource
	enc  RowEncoder
}

// NewRowStream returns a stream for t when t can be produced by rows: its
// source is a RowEncoder of t's type, or a RowSource of t's type without
// transforms (a copy), or a RowSource whose transforms only permute rows
// and whose plain float type converts to t's element by element (the
// codec, nil or PlainCompatible, would convert them the same way). ok is
// false otherwise; Materialize then does the whole tensor.
func NewRowStream(t *Tensor, codec Codec) (s *RowStream, ok bool, err error) {
	if codec == nil {
		codec = PlainCodec{}
	}
	if len(t.Shape) == 0 || t.Shape[0] == 0 {
		return nil, false, nil
	}
	size, err := t.Size()
	if err != nil {
		return nil, false, err
	}
	rows := int(t.Elements() / t.Shape[0])
	if rows == 0 {
		return nil, false, nil
	}
	s = &RowStream{t: t, rows: rows, rowBytes: int(size) / rows}
	if enc, isEnc := t.Source.(RowEncoder); isEnc && len(t.Transforms) == 0 && enc.Type() == t.Type {
		if l := enc.RowLayout(); l.Rows != rows || l.Bytes != s.rowBytes {
			return nil, false, fmt.Errorf("tensor %s: encoder makes %d rows of %d bytes, %s%v needs %d of %d",
				t.Name, l.Rows, l.Bytes, t.Type, t.Shape, rows, s.rowBytes)
		}
		s.enc = enc
		return s, true, nil
	}
	src, isSrc := t.Source.(RowSource)
	if !isSrc {
		return nil, false, nil
	}
	from := src.Type()
	srcRow, rowOK := from.RowSize(t.Shape[0])
	if !rowOK || src.RawSize() != int64(rows)*int64(srcRow) {
		return nil, false, nil // Materialize reports the mismatch
	}
	if from != t.Type || len(t.Transforms) > 0 {
		_, compatible := codec.(PlainCompatible)
		if !compatible || !PlainConvertible(from, t.Type) {
			return nil, false, nil
		}
	}
	for _, tr := range t.Transforms {
		p, isPerm := tr.(RowPermutation)
		if !isPerm || len(t.Shape) < 2 {
			return nil, false, nil
		}
		perm, err := p.SourceRows(t.Shape)
		if err != nil {
			return nil, false, fmt.Errorf("tensor %s: %s: %w", t.Name, tr.Name(), err)
		}
		if len(perm) != rows {
			return nil, false, fmt.Errorf("tensor %s: %s maps %d rows, the tensor has %d", t.Name, tr.Name(), len(perm), rows)
		}
		// After this transform, output row r holds what was row perm[r]
		// before it.
		if s.perm != nil {
			composed := make([]int, rows)
			for r, from := range perm {
				composed[r] = s.perm[from]
			}
			perm = composed
		}
		s.perm = perm
	}
	s.src, s.srcRowBytes = src, int(srcRow)
	return s, true, nil
}

// Tensor is the tensor the stream produces.
func (s *RowStream) Tensor() *Tensor { return s.t }

// Rows is the number of rows of the tensor.
func (s *RowStream) Rows() int { return s.rows }

// RowBytes is the output bytes of one row.
func (s *RowStream) RowBytes() int { return s.rowBytes }

// Granule is what ranges of rows given to Fill should be multiples of,
// for the best speed (and, for an encoder, the same error messages as
// whole tensors); any range is correct.
func (s *RowStream) Granule() int {
	switch {
	case s.enc != nil:
		return max(1, s.enc.RowLayout().Granule)
	case s.perm != nil:
		// Whole groups of 64 rows keep a row permutation within heads
		// (head dimensions divide 64 or are multiples of it) readable
		// in one piece.
		return 64
	}
	return 1
}

// ScratchRowBytes is the working memory one row needs besides its output:
// the source row, twice for a permutation (as read, then in order), or
// what an encoder says it needs.
func (s *RowStream) ScratchRowBytes() int {
	if s.enc != nil {
		return s.enc.RowLayout().Scratch
	}
	n := s.srcRowBytes
	if s.perm != nil {
		n *= 2
	}
	return n
}

// Fill writes rows [lo, hi) of the output into dst (len (hi-lo)*RowBytes).
// scratch is a buffer the call may use and returns grown; pass the
// previous result back to reuse it. Fill is safe for concurrent use with
// distinct scratch buffers.
func (s *RowStream) Fill(dst []byte, lo, hi int, scratch []byte) ([]byte, error) {
	t := s.t
	if lo < 0 || hi > s.rows || lo > hi || len(dst) != (hi-lo)*s.rowBytes {
		return scratch, fmt.Errorf("tensor %s: rows [%d,%d) into %d bytes", t.Name, lo, hi, len(dst))
	}
	if s.enc != nil {
		if err := s.enc.EncodeRows(dst, lo, hi); err != nil {
			return scratch, fmt.Errorf("tensor %s: %w", t.Name, err) // as Materialize wraps ReadRaw's
		}
		return scratch, nil
	}
	n := hi - lo
	from := s.src.Type()
	if from == t.Type && s.perm == nil {
		if err := s.src.ReadRange(dst, int64(lo)*int64(s.srcRowBytes)); err != nil {
			return scratch, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		return scratch, nil
	}
	need := n * s.srcRowBytes
	if s.perm != nil {
		need *= 2 // the rows as read, then in output order
	}
	if cap(scratch) < need {
		scratch = make([]byte, need)
	}
	raw := scratch[:n*s.srcRowBytes]
	if err := s.readRows(raw, scratch[n*s.srcRowBytes:need], lo, hi); err != nil {
		return scratch, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if from == t.Type {
		// Materialize round-trips permuted rows through float32, which
		// quiets signalling NaNs.
		copy(dst, raw)
		quietNaNs(from, dst)
		return scratch, nil
	}
	return scratch, ConvertPlain(t.Type, dst, from, raw)
}

// readRows reads the source rows of output rows [lo, hi) into raw, in
// output order. A permutation that maps the range onto a contiguous range
// of source rows (row permutations within heads, with ranges aligned to
// heads) is read in one piece into span and gathered from there; otherwise
// one read per run of consecutive source rows.
func (s *RowStream) readRows(raw, span []byte, lo, hi int) error {
	rb := s.srcRowBytes
	if s.perm == nil {
		return s.src.ReadRange(raw, int64(lo)*int64(rb))
	}
	first, last := s.perm[lo], s.perm[lo]
	for _, p := range s.perm[lo:hi] {
		first, last = min(first, p), max(last, p)
	}
	if last-first+1 == hi-lo {
		if err := s.src.ReadRange(span, int64(first)*int64(rb)); err != nil {
			return err
		}
		for r := lo; r < hi; r++ {
			k := s.perm[r] - first
			copy(raw[(r-lo)*rb:(r-lo+1)*rb], span[k*rb:(k+1)*rb])
		}
		return nil
	}
	for r := lo; r < hi; {
		first := s.perm[r]
		end := r + 1
		for end < hi && s.perm[end] == first+(end-r) {
			end++
		}
		if err := s.src.ReadRange(raw[(r-lo)*rb:(end-lo)*rb], int64(first)*int64(rb)); err != nil {
			return err
		}
		r = end
	}
	return nil
}

// quietNaNs sets the quiet bit of every NaN among the F16 or BF16 values
// in b, as their float32 round trip in PlainCodec does; other values and
// types are left alone.
func quietNaNs(t ggml.Type, b []byte) {
	var inf, quiet uint16
	switch t {
	case ggml.TypeF16:
		inf, quiet = 0x7c00, 0x0200
	case ggml.TypeBF16:
		inf, quiet = 0x7f80, 0x0040
	default:
		return
	}
	for i := 0; i+2 <= len(b); i += 2 {
		if h := uint16(b[i]) | uint16(b[i+1])<<8; h&0x7fff > inf {
			h |= quiet
			b[i], b[i+1] = byte(h), byte(h>>8)
		}
	}
}

var _ PlainCompatible = PlainCodec{}
