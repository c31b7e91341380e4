package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// rowEncodedSource is an encodedSource that a writer can drive a range of
// rows at a time (formats.RowEncoder), so that quantizing a tensor holds a
// few ranges of its input, float32 values and output rather than all of
// them: the difference between ~1 MB per thread and ~400 MB for a 32000 ×
// 2048 embedding. The bytes, and the errors, are encodedSource's.
type rowEncodedSource struct {
	*encodedSource
	in *formats.RowStream // the input tensor's bytes as stored

	ne0, rows, rowBytes int
	rowsPerMatrix       int
	// chunkRows is encodedSource's unit of work: errors name its ranges.
	chunkRows int

	started  sync.Once
	start    time.Time
	rowsDone atomic.Int64
}

// newRowEncodedSource returns nil when the input cannot be read by rows
// (a transform that needs the whole tensor in float32).
func newRowEncodedSource(s *encodedSource) *rowEncodedSource {
	t := s.in
	in, ok, err := formats.NewRowStream(t, Codec{})
	if !ok || err != nil || len(t.Shape) == 0 {
		return nil
	}
	ne0 := int(t.Shape[0])
	rs, err := RowSize(s.to, ne0)
	if err != nil {
		return nil
	}
	if !t.Type.Quantized() && !isPlain(t.Type) {
		return nil
	}
	r := &rowEncodedSource{encodedSource: s, in: in, ne0: ne0, rows: in.Rows(), rowBytes: rs,
		rowsPerMatrix: in.Rows(), chunkRows: max(1, chunkElements/ne0)}
	if len(t.Shape) > 1 {
		r.rowsPerMatrix = int(t.Shape[1])
	}
	if r.rowsPerMatrix == 0 {
		return nil
	}
	return r
}

func isPlain(t ggml.Type) bool {
	return t == ggml.TypeF32 || t == ggml.TypeF16 || t == ggml.TypeBF16
}

// RowLayout implements formats.RowEncoder.
func (s *rowEncodedSource) RowLayout() formats.RowLayout {
	return formats.RowLayout{Rows: s.rows, Bytes: s.rowBytes,
		Scratch: s.in.RowBytes() + s.in.ScratchRowBytes() + 4*s.ne0, Granule: s.chunkRows}
}

// rangeBuffers are the per-range working buffers, reused across ranges.
type rangeBuffers struct {
	raw     []byte
	scratch []byte
	f       []float32
}

var rangeBufferPool = sync.Pool{New: func() any { return new(rangeBuffers) }}

// EncodeRows implements formats.RowEncoder: rows [lo, hi) of the input are
// read, checked, decoded and encoded as encodedSource.ReadRaw does for the
// whole tensor.
func (s *rowEncodedSource) EncodeRows(dst []byte, lo, hi int) error {
	s.started.Do(func() { s.start = time.Now() })
	t := s.in.Tensor()
	n := hi - lo
	if lo < 0 || hi > s.rows || lo > hi || len(dst) != n*s.rowBytes {
		return fmt.Errorf("tensor %s: rows [%d,%d) into %d bytes", t.Name, lo, hi, len(dst))
	}
	bufs := rangeBufferPool.Get().(*rangeBuffers)
	defer rangeBufferPool.Put(bufs)
	inRow := s.in.RowBytes()
	if cap(bufs.raw) < n*inRow {
		bufs.raw = make([]byte, n*inRow)
	}
	raw := bufs.raw[:n*inRow]
	var err error
	if bufs.scratch, err = s.in.Fill(raw, lo, hi, bufs.scratch); err != nil {
		return err
	}
	if t.Type.Known() && (t.Type.Quantized() || t.Type == ggml.TypeF32 || t.Type == ggml.TypeF16 ||
		t.Type == ggml.TypeBF16 || t.Type == ggml.TypeF64) {
		if err := validateRowsFrom(t.Type, raw, s.ne0, lo); err != nil {
			return fmt.Errorf("tensor %s has invalid input data: %w", t.Name, err)
		}
	}
	if cap(bufs.f) < n*s.ne0 {
		bufs.f = make([]float32, n*s.ne0)
	}
	f := bufs.f[:n*s.ne0]
	if err := decodeInto(t.Type, f, raw); err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if !s.to.Quantized() {
		out, err := formats.PlainCodec{}.Encode(s.to, f, s.ne0)
		if err != nil {
			return fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		copy(dst, out)
	} else if err := s.quantizeRange(dst, f, lo, hi); err != nil {
		return err
	}
	if err := validateRowsFrom(s.to, dst, s.ne0, lo); err != nil {
		return fmt.Errorf("tensor %s: quantized data validation failed: %w", t.Name, err)
	}
	if s.rowsDone.Add(int64(n)) == int64(s.rows) && s.onDone != nil {
		s.onDone(t.Name, s.to, time.Since(s.start))
	}
	return nil
}

// quantizeRange encodes rows [lo, hi) (f holds them) in encodedSource's
// units of work, each matrix of a 3-D tensor with its own importance
// weights.
func (s *rowEncodedSource) quantizeRange(dst []byte, f []float32, lo, hi int) error {
	ne0, rs := s.ne0, s.rowBytes
	for r0 := lo; r0 < hi; {
		matrix := r0 / s.rowsPerMatrix
		first := matrix * s.rowsPerMatrix
		unit := first + (r0-first)/s.chunkRows*s.chunkRows
		end := min(unit+s.chunkRows, first+s.rowsPerMatrix, hi)
		var qw []float32
		if s.imatrix != nil {
			qw = s.imatrix[matrix*ne0 : (matrix+1)*ne0]
		}
		if err := QuantizeRows(s.to, dst[(r0-lo)*rs:(end-lo)*rs], f[(r0-lo)*ne0:(end-lo)*ne0], ne0, qw); err != nil {
			return fmt.Errorf("tensor %s, rows %d–%d: %w", s.in.Tensor().Name, r0, end-1, err)
		}
		r0 = end
	}
	return nil
}

// decodeInto decodes raw data of type t into f without allocating for the
// plain types, with exactly Dequantize's values.
func decodeInto(t ggml.Type, f []float32, raw []byte) error {
	switch t {
	case ggml.TypeF32:
		if len(raw) != 4*len(f) {
			break
		}
		for i := range f {
			f[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return nil
	case ggml.TypeF16:
		if len(raw) != 2*len(f) {
			break
		}
		for i := range f {
			f[i] = block.LoadF16(raw[2*i:])
		}
		return nil
	case ggml.TypeBF16:
		if len(raw) != 2*len(f) {
			break
		}
		for i := range f {
			f[i] = block.BF16ToFloat(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		return nil
	}
	if t.Quantized() {
		return DequantizeInto(t, f, raw)
	}
	v, err := Dequantize(t, raw, len(f))
	if err != nil {
		return err
	}
	copy(f, v)
	return nil
}

var _ formats.RowEncoder = (*rowEncodedSource)(nil)
