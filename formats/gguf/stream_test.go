package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/block"
	"github.com/llqt/llqt/formats/ggml"
)

// memRowSource is an in-memory formats.RowSource.
type memRowSource struct {
	typ  ggml.Type
	data []byte
}

func (m memRowSource) Type() ggml.Type          { return m.typ }
func (m memRowSource) ReadRaw() ([]byte, error) { return append([]byte(nil), m.data...), nil }
func (m memRowSource) RawSize() int64           { return int64(len(m.data)) }
func (m memRowSource) ReadRange(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return fmt.Errorf("range [%d,%d) outside %d bytes", off, off+int64(len(p)), len(m.data))
	}
	copy(p, m.data[off:])
	return nil
}

// failingRowSource fails to read at or past byte from.
type failingRowSource struct {
	memRowSource
	from int64
}

func (f failingRowSource) ReadRange(p []byte, off int64) error {
	if off+int64(len(p)) > f.from {
		return fmt.Errorf("disk on fire at byte %d", off)
	}
	return f.memRowSource.ReadRange(p, off)
}

// swapPairs exchanges rows 2k and 2k+1 (a RowPermutation), or fails on an
// odd row count.
type swapPairs struct{}

func (swapPairs) Name() string { return "swap-pairs" }
func (swapPairs) SourceRows(shape []uint64) ([]int, error) {
	rows := int(shape[1])
	if rows%2 != 0 {
		return nil, fmt.Errorf("%d rows are odd", rows)
	}
	from := make([]int, rows)
	for r := range from {
		from[r] = r ^ 1
	}
	return from, nil
}
func (p swapPairs) Apply(data []float32, shape []uint64) error {
	from, err := p.SourceRows(shape)
	if err != nil {
		return err
	}
	cols := int(shape[0])
	src := append([]float32(nil), data...)
	for r, f := range from {
		copy(data[r*cols:(r+1)*cols], src[f*cols:(f+1)*cols])
	}
	return nil
}

// rotateRows moves row r to r+1 (mod rows): not within pairs, so ranges
// read row by row.
type rotateRows struct{}

func (rotateRows) Name() string { return "rotate" }
func (rotateRows) SourceRows(shape []uint64) ([]int, error) {
	rows := int(shape[1])
	from := make([]int, rows)
	for r := range from {
		from[r] = (r + rows - 1) % rows
	}
	return from, nil
}
func (p rotateRows) Apply(data []float32, shape []uint64) error {
	from, _ := p.SourceRows(shape)
	cols := int(shape[0])
	src := append([]float32(nil), data...)
	for r, f := range from {
		copy(data[r*cols:(r+1)*cols], src[f*cols:(f+1)*cols])
	}
	return nil
}

// scaleTwo needs floats, so its tensor is materialised whole.
type scaleTwo struct{}

func (scaleTwo) Name() string { return "scale" }
func (scaleTwo) Apply(data []float32, _ []uint64) error {
	for i := range data {
		data[i] *= 2
	}
	return nil
}

// q8Codec is a toy codec with a Q8_0-like encoder (a half scale and 32
// rounded bytes per block): its tensors mix with streamed ones, and are
// materialised whole.
type q8Codec struct{ formats.PlainCodec }

func (q8Codec) ConvertsPlainExactly() {}

func (c q8Codec) Encode(t ggml.Type, data []float32, ne0 int) ([]byte, error) {
	if t != ggml.TypeQ8_0 {
		return c.PlainCodec.Encode(t, data, ne0)
	}
	out := make([]byte, 0, len(data)/32*34)
	for b := 0; b+32 <= len(data); b += 32 {
		var amax float32
		for _, v := range data[b : b+32] {
			if !(math.Abs(float64(v)) <= float64(amax)) && !math.IsNaN(float64(v)) {
				amax = float32(math.Abs(float64(v)))
			}
		}
		d := amax / 127
		out = binary.LittleEndian.AppendUint16(out, uint16(math.Float32bits(d)>>16))
		for _, v := range data[b : b+32] {
			q := 0
			if d != 0 && !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
				q = int(math.Round(float64(v / d)))
			}
			out = append(out, byte(int8(q)))
		}
	}
	return out, nil
}

func randomPlain(rng *rand.Rand, t ggml.Type, n int) []byte {
	b := make([]byte, n*t.TypeSize())
	for i := 0; i < n; i++ {
		v := float32(rng.NormFloat64())
		switch t {
		case ggml.TypeF32:
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		case ggml.TypeF16:
			binary.LittleEndian.PutUint16(b[2*i:], block.FloatToHalf(v))
		case ggml.TypeBF16:
			binary.LittleEndian.PutUint16(b[2*i:], block.FloatToBF16(v))
		}
		if rng.IntN(20) == 0 && t != ggml.TypeF32 {
			// any bits: NaNs, infinities and subnormals too
			binary.LittleEndian.PutUint16(b[2*i:], uint16(rng.Uint32()))
		}
	}
	return b
}

// TestStreamedWriteMatchesWhole writes models whose tensors stream by rows
// and compares them with the same models written tensor by tensor (an
// OnTensor hook turns streaming off).
func TestStreamedWriteMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	types := []ggml.Type{ggml.TypeF32, ggml.TypeF16, ggml.TypeBF16}
	transforms := [][]formats.Transform{nil, {swapPairs{}}, {rotateRows{}}, {swapPairs{}, rotateRows{}}, {scaleTwo{}}}
	m := &formats.Model{Arch: "test"}
	for _, from := range types {
		for _, to := range append(types, ggml.TypeQ8_0) {
			for k, tr := range transforms {
				// 70 rows of 64: several ranges for small range sizes.
				rows := 70 + 2*k
				m.Tensors = append(m.Tensors, &formats.Tensor{
					Name: fmt.Sprintf("%s-%s-%d", from, to, k), Shape: []uint64{64, uint64(rows)}, Type: to,
					Source: memRowSource{from, randomPlain(rng, from, 64*rows)}, Transforms: tr,
				})
			}
		}
	}
	m.Tensors = append(m.Tensors, &formats.Tensor{Name: "vector", Shape: []uint64{33}, Type: ggml.TypeF16,
		Source: memRowSource{ggml.TypeBF16, randomPlain(rng, ggml.TypeBF16, 33)}})
	write := func(threads int, whole bool) []byte {
		var buf bytes.Buffer
		opt := WriteOptions{Codec: q8Codec{}, Threads: threads}
		if whole {
			opt.OnTensor = func(*formats.Tensor, []byte) {}
		}
		if err := Write(context.Background(), &buf, m, opt); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	defer func(n int) { streamRangeBytes = n }(streamRangeBytes)
	streamRangeBytes = 700 // a few rows per range
	want := write(1, true)
	for _, threads := range []int{1, 2, 5} {
		if got := write(threads, false); !bytes.Equal(got, want) {
			t.Errorf("%d threads: streamed file differs from the whole-tensor one", threads)
		}
	}
}

// TestStreamedWriteErrors: a failing range read and a permutation that
// does not fit are reported with the tensor's name.
func TestStreamedWriteErrors(t *testing.T) {
	m := &formats.Model{Arch: "test", Tensors: []*formats.Tensor{{
		Name: "short", Shape: []uint64{8, 4}, Type: ggml.TypeF16,
		Source: memRowSource{ggml.TypeBF16, make([]byte, 2*8*3)},
	}}}
	err := Write(context.Background(), &bytes.Buffer{}, m, WriteOptions{Threads: 2})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("short")) {
		t.Errorf("short source: %v", err)
	}
	// A source longer than the tensor is refused too, not cut short.
	m.Tensors[0] = &formats.Tensor{Name: "long", Shape: []uint64{8, 4}, Type: ggml.TypeF16,
		Source: memRowSource{ggml.TypeBF16, make([]byte, 2*8*5)}}
	err = Write(context.Background(), &bytes.Buffer{}, m, WriteOptions{Threads: 2})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("long")) {
		t.Errorf("long source: %v", err)
	}
	// A read failing part way through a streamed tensor.
	m.Tensors[0] = &formats.Tensor{Name: "failing", Shape: []uint64{8, 4096}, Type: ggml.TypeF16,
		Source: failingRowSource{memRowSource{ggml.TypeBF16, make([]byte, 2*8*4096)}, 2 * 8 * 3000}}
	err = Write(context.Background(), &bytes.Buffer{}, m, WriteOptions{Threads: 2})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("failing")) || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Errorf("failing source: %v", err)
	}
	m.Tensors[0] = &formats.Tensor{Name: "odd", Shape: []uint64{8, 3}, Type: ggml.TypeF16,
		Source: memRowSource{ggml.TypeBF16, make([]byte, 2*8*3)}, Transforms: []formats.Transform{swapPairs{}}}
	err = Write(context.Background(), &bytes.Buffer{}, m, WriteOptions{Threads: 2})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("odd")) {
		t.Errorf("odd rows: %v", err)
	}
}
