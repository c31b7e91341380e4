package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/mmap"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed safetensors")

// FormatError describes one malformed field; its Kind is ErrFormat.
type FormatError = formats.FormatError

// malformed is a FormatError about field of file name, offset bytes in.
func malformed(name, field string, offset int64, format string, args ...any) error {
	return &FormatError{Kind: ErrFormat, File: name, Field: field, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

// MaxHeaderSize bounds the JSON header (the reference implementation uses
// the same 100 MB limit), so a lying length cannot make us allocate
// gigabytes.
const MaxHeaderSize = 100 << 20

// DType is a safetensors element type name as written in the header.
type DType string

// The dtypes this package knows. F32, F16 and BF16 are the weight types a
// converter accepts; the others can be read as raw bytes.
const (
	F64     DType = "F64"
	F32     DType = "F32"
	F16     DType = "F16"
	BF16    DType = "BF16"
	I64     DType = "I64"
	I32     DType = "I32"
	I16     DType = "I16"
	I8      DType = "I8"
	U64     DType = "U64"
	U32     DType = "U32"
	U16     DType = "U16"
	U8      DType = "U8"
	BOOL    DType = "BOOL"
	F8E4M3  DType = "F8_E4M3"
	F8E5M2  DType = "F8_E5M2"
	noDType DType = ""
)

var dtypeSizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1, F8E4M3: 1, F8E5M2: 1,
}

var dtypeGGML = map[DType]ggml.Type{
	F64: ggml.TypeF64, F32: ggml.TypeF32, F16: ggml.TypeF16, BF16: ggml.TypeBF16,
	I64: ggml.TypeI64, I32: ggml.TypeI32, I16: ggml.TypeI16, I8: ggml.TypeI8,
}

// Size is the number of bytes per element, 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is a dtype this package can read.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }

// GGML returns the ggml type with the same bytes, if there is one.
func (d DType) GGML() (ggml.Type, bool) {
	t, ok := dtypeGGML[d]
	return t, ok
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	// Shape as stored (torch order: the last dimension is contiguous).
	Shape []uint64
	// Begin and End are byte offsets relative to the data section.
	Begin, End uint64
}

// Elements is the number of elements (1 for a scalar).
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Size is the number of data bytes.
func (t *TensorInfo) Size() uint64 { return t.End - t.Begin }

// File is an open safetensors file.
type File struct {
	Path string
	// Metadata is the "__metadata__" object (nil when absent).
	Metadata map[string]string
	// Tensors in data-offset order, which is the order writers lay them out
	// and the order converters visit them in.
	Tensors []TensorInfo
	// DataOffset is the absolute file offset of the data section (8 + header).
	DataOffset int64
	// Size of the whole file in bytes.
	Size int64

	byName map[string]int
	r      io.ReaderAt
	mapped []byte
	mf     *mmap.File // nil for a file Parse read from an io.ReaderAt
	// closer releases the reader of a NewFile (a PyTorch zip checkpoint).
	closer func() error
}

// Open opens and validates a safetensors file, memory-mapping it where the
// platform allows.
func Open(path string) (*File, error) {
	return mmap.OpenParsed(path, Parse, func(f *File, mf *mmap.File) { f.mapped, f.mf = mf.Data, mf })
}

// NewFile describes tensors that lie as contiguous byte ranges in r (size
// bytes; Begin/End are absolute offsets), for containers other than
// safetensors, such as PyTorch's zip checkpoints. Tensors keep the given
// order. mapped, when not nil, is r's memory mapping; closer releases r.
// Every range must lie inside the file and match its dtype and shape.
func NewFile(path string, r io.ReaderAt, size int64, tensors []TensorInfo, mapped []byte, closer func() error) (*File, error) {
	f := &File{Path: path, Tensors: tensors, Size: size, byName: map[string]int{}, r: r, mapped: mapped, closer: closer}
	for i, t := range tensors {
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("%s: tensor %s appears twice", path, t.Name)
		}
		f.byName[t.Name] = i
		if !t.DType.Known() {
			return nil, fmt.Errorf("%s: tensor %s: unknown dtype %q", path, t.Name, t.DType)
		}
		n := uint64(t.DType.Size())
		for _, d := range t.Shape {
			hi, lo := bits.Mul64(n, d)
			if hi != 0 {
				return nil, fmt.Errorf("%s: tensor %s: shape %v overflows", path, t.Name, t.Shape)
			}
			n = lo
		}
		if t.Begin > t.End || t.End > uint64(size) || t.End-t.Begin != n {
			return nil, fmt.Errorf("%s: tensor %s: %s%v at bytes [%d,%d) does not fit the file (%d bytes) or its shape", path, t.Name, t.DType, t.Shape, t.Begin, t.End, size)
		}
	}
	return f, nil
}

// Close releases the file and its mapping.
func (f *File) Close() error {
	f.mapped = nil
	err := f.mf.Close()
	if f.closer != nil {
		c := f.closer
		f.closer = nil
		err = errors.Join(err, c())
	}
	return err
}

// Tensor finds a tensor by name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Data returns a fresh copy of a tensor's bytes.
func (f *File) Data(t *TensorInfo) ([]byte, error) {
	start := f.DataOffset + int64(t.Begin)
	n := t.Size()
	if n == 0 {
		return []byte{}, nil
	}
	if f.mapped != nil {
		out := append([]byte(nil), f.mapped[start:start+int64(n)]...)
		mmap.Release(f.mapped, start, int64(n))
		return out, nil
	}
	if f.r == nil {
		return nil, fmt.Errorf("%s: file is closed", f.Path)
	}
	buf := make([]byte, n)
	if _, err := f.r.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("%s: reading tensor %s at offset %d: %w", f.Path, t.Name, start, err)
	}
	return buf, nil
}

// ReadRange copies len(p) bytes of tensor t's data, from byte off of the
// tensor, into p. It reads the file rather than its mapping: the bytes are
// copied out anyway, and this way no mapped page joins the resident set.
func (f *File) ReadRange(t *TensorInfo, p []byte, off int64) error {
	if off < 0 || off > int64(t.Size()) || int64(len(p)) > int64(t.Size())-off {
		return fmt.Errorf("%s: tensor %s: bytes [%d,%d) are outside its %d", f.Path, t.Name, off, off+int64(len(p)), t.Size())
	}
	if len(p) == 0 {
		return nil
	}
	start := f.DataOffset + int64(t.Begin) + off
	if f.mf != nil {
		if n, err := f.mf.ReadAtFile(p, start); n < len(p) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%s: reading tensor %s at offset %d: %w", f.Path, t.Name, start, err)
		}
		return nil
	}
	if f.r == nil {
		return fmt.Errorf("%s: file is closed", f.Path)
	}
	// io.ReaderAt may report io.EOF with a full read; only a short read is
	// an error.
	if n, err := f.r.ReadAt(p, start); n < len(p) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: reading tensor %s at offset %d: %w", f.Path, t.Name, start, err)
	}
	return nil
}

// Parse reads and validates the header of a safetensors file of the given
// size from r. name is used in errors.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 8 {
		return nil, malformed(name, "header length", 0, "file has %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, malformed(name, "header length", 0, "read failed: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, malformed(name, "header length", 0, "%d bytes exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, malformed(name, "header length", 0, "%d bytes but only %d follow in the file", n, size-8)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, malformed(name, "header", 8, "read failed: %v", err)
	}
	f, err := ParseHeader(hdr, uint64(size)-8-n, name)
	if err != nil {
		return nil, err
	}
	f.Size = size
	f.r = r
	return f, nil
}

// rawTensor is one header entry. Shape and offsets are decoded as
// json.Number so that negative, fractional or huge values are reported
// rather than silently converted.
type rawTensor struct {
	DType       *string       `json:"dtype"`
	Shape       []json.Number `json:"shape"`
	DataOffsets []json.Number `json:"data_offsets"`
}

// ParseHeader validates a JSON header (the bytes after the length) for a
// data section of dataSize bytes. The returned File has no data attached.
func ParseHeader(hdr []byte, dataSize uint64, name string) (*File, error) {
	const hdrOff = 8
	fail := func(field, format string, args ...any) error {
		return malformed(name, field, hdrOff, format, args...)
	}
	trimmed := bytes.TrimLeft(hdr, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fail("header", "not a JSON object")
	}
	var entries map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if err := dec.Decode(&entries); err != nil {
		return nil, fail("header", "invalid JSON: %v", err)
	}
	if rest := bytes.TrimSpace(hdr[dec.InputOffset():]); len(rest) > 0 {
		return nil, fail("header", "%d bytes of trailing data after the JSON object", len(rest))
	}
	f := &File{Path: name, DataOffset: int64(hdrOff + len(hdr)), byName: map[string]int{}}
	for key, raw := range entries {
		if key == "__metadata__" {
			if err := json.Unmarshal(raw, &f.Metadata); err != nil {
				return nil, fail("__metadata__", "must map strings to strings: %v", err)
			}
			continue
		}
		ti, err := parseEntry(key, raw, dataSize)
		if err != nil {
			return nil, fail("tensor "+strconv.Quote(key), "%v", err)
		}
		f.Tensors = append(f.Tensors, ti)
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		a, b := f.Tensors[i], f.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return a.Name < b.Name
	})
	// The data section must be exactly covered: no overlaps (two tensors
	// sharing bytes) and no holes (bytes nobody owns), as the format's
	// reference implementation demands.
	var next uint64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Begin < next {
			prev := f.Tensors[i-1]
			return nil, fail("tensor "+strconv.Quote(t.Name)+" data_offsets", "bytes [%d,%d) overlap tensor %q [%d,%d)", t.Begin, t.End, prev.Name, prev.Begin, prev.End)
		}
		if t.Begin > next {
			return nil, fail("tensor "+strconv.Quote(t.Name)+" data_offsets", "hole: bytes [%d,%d) of the data section belong to no tensor", next, t.Begin)
		}
		next = t.End
		f.byName[t.Name] = i
	}
	if next != dataSize {
		return nil, fail("data section", "tensors cover %d bytes but the data section has %d", next, dataSize)
	}
	return f, nil
}

func parseEntry(name string, raw json.RawMessage, dataSize uint64) (TensorInfo, error) {
	var rt rawTensor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rt); err != nil {
		return TensorInfo{}, fmt.Errorf("not a {dtype, shape, data_offsets} object: %v", err)
	}
	if rt.DType == nil {
		return TensorInfo{}, errors.New("missing dtype")
	}
	dt := DType(*rt.DType)
	if !dt.Known() {
		return TensorInfo{}, fmt.Errorf("unknown dtype %q", *rt.DType)
	}
	if rt.Shape == nil {
		return TensorInfo{}, errors.New("missing shape")
	}
	ti := TensorInfo{Name: name, DType: dt, Shape: make([]uint64, len(rt.Shape))}
	elems := uint64(1)
	for i, d := range rt.Shape {
		v, err := strconv.ParseUint(string(d), 10, 64)
		if err != nil {
			return TensorInfo{}, fmt.Errorf("shape[%d] = %s is not a non-negative integer", i, d)
		}
		ti.Shape[i] = v
		hi, lo := bits.Mul64(elems, v)
		if hi != 0 {
			return TensorInfo{}, fmt.Errorf("shape %v overflows", rt.Shape)
		}
		elems = lo
	}
	if len(rt.DataOffsets) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets must have 2 entries, has %d", len(rt.DataOffsets))
	}
	var off [2]uint64
	for i, o := range rt.DataOffsets {
		v, err := strconv.ParseUint(string(o), 10, 64)
		if err != nil {
			return TensorInfo{}, fmt.Errorf("data_offsets[%d] = %s is not a non-negative integer", i, o)
		}
		off[i] = v
	}
	ti.Begin, ti.End = off[0], off[1]
	if ti.End < ti.Begin {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d,%d) end before they begin", ti.Begin, ti.End)
	}
	if ti.End > dataSize {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d,%d) run past the %d-byte data section (truncated file?)", ti.Begin, ti.End, dataSize)
	}
	hi, want := bits.Mul64(elems, uint64(dt.Size()))
	if hi != 0 || want != ti.Size() {
		return TensorInfo{}, fmt.Errorf("%s%v needs %d bytes but data_offsets [%d,%d) hold %d", dt, ti.Shape, want, ti.Begin, ti.End, ti.Size())
	}
	return ti, nil
}

// Tensor is one tensor of an open file; it is a formats.Source when its
// dtype has a ggml equivalent.
type Tensor struct {
	TensorInfo
	File *File
}

// NoGGMLType is what Type reports for dtypes with no ggml equivalent (U8,
// BOOL, …); it is not a known ggml type, so every codec rejects it.
const NoGGMLType = ggml.Type(0xFFFFFFFF)

// Type implements formats.Source. Use Source for a checked formats.Source.
func (t *Tensor) Type() ggml.Type {
	if g, ok := t.DType.GGML(); ok {
		return g
	}
	return NoGGMLType
}

// ReadRaw implements formats.Source: a fresh copy of the tensor's bytes.
func (t *Tensor) ReadRaw() ([]byte, error) { return t.File.Data(&t.TensorInfo) }

// RawSize implements formats.RowSource.
func (t *Tensor) RawSize() int64 { return int64(t.TensorInfo.Size()) }

// ReadRange implements formats.RowSource.
func (t *Tensor) ReadRange(p []byte, off int64) error { return t.File.ReadRange(&t.TensorInfo, p, off) }

// Source returns t as a formats.Source, or an error naming the file when its
// dtype has no ggml equivalent.
func (t *Tensor) Source() (formats.Source, error) {
	var _ formats.RowSource = t
	if _, ok := t.DType.GGML(); !ok {
		return nil, fmt.Errorf("%s: tensor %s has dtype %s, which has no ggml equivalent", t.File.Path, t.Name, t.DType)
	}
	return t, nil
}
