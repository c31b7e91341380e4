package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/internal/mmap"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed GGUF")

// FormatError describes one malformed field; its Kind is ErrFormat.
type FormatError = formats.FormatError

// ErrorList is every problem Check found in one file, in the order the
// reader met them (tensor data ranges last), as go/scanner's ErrorList is for
// a source file.
type ErrorList []*FormatError

// Error describes the first problem and counts the others.
func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	return fmt.Sprintf("%s (and %d more errors)", l[0], len(l)-1)
}

// Err returns l as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Unwrap gives errors.Is and errors.As the individual problems.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	// Shape in ggml order: Shape[0] (ne0) is contiguous.
	Shape []uint64
	Type  ggml.Type
	// Offset of the data, relative to the start of the data section.
	Offset uint64
	// Size in bytes of the data.
	Size uint64
}

// Elements is the number of elements in the tensor.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is an open GGUF file.
type File struct {
	Path      string
	Version   uint32
	Alignment uint64
	KV        formats.KVs
	Tensors   []TensorInfo
	// DataOffset is the absolute file offset of the data section.
	DataOffset int64
	// Size of the whole file in bytes.
	Size int64

	r      io.ReaderAt
	mapped []byte     // whole file when mmap'd
	mf     *mmap.File // nil for a file Parse read from an io.ReaderAt
	// shards are the other files of a split model opened by OpenModel;
	// shardOf maps each of their tensors to its file (see split_reader.go).
	shards  []*File
	shardOf map[string]*File
}

// Open opens and parses a GGUF file, memory-mapping it where the platform
// allows and falling back to reads otherwise.
func Open(path string) (*File, error) {
	return mmap.OpenParsed(path, Parse, func(f *File, mf *mmap.File) { f.mapped, f.mf = mf.Data, mf })
}

// Close releases the file and its mapping. Slices returned by Data must not
// be used afterwards.
func (f *File) Close() error {
	err := f.closeShards()
	return errors.Join(f.mf.Close(), err)
}

// Tensor finds a tensor by name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Data returns a tensor's bytes. For a mapped file the slice aliases the
// read-only mapping and must not be written; otherwise it is a fresh copy.
func (f *File) Data(t *TensorInfo) ([]byte, error) {
	if sf := f.owner(t); sf != f {
		return sf.Data(t)
	}
	start := f.DataOffset + int64(t.Offset)
	if f.mapped != nil {
		return f.mapped[start : start+int64(t.Size) : start+int64(t.Size)], nil
	}
	buf := make([]byte, t.Size)
	// io.ReaderAt may report io.EOF with a full read (always, for an empty
	// tensor at the end of the file); only a short read is an error.
	if n, err := f.r.ReadAt(buf, start); n < len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: reading tensor %s at offset %d: %w", f.Path, t.Name, start, err)
	}
	return buf, nil
}

// Model returns the file as a graph whose tensors read lazily from f, keeping
// their stored types. The graph is valid while f is open.
func (f *File) Model() *formats.Model {
	m := &formats.Model{KV: append(formats.KVs(nil), f.KV...)}
	m.Arch, _ = f.KV.String("general.architecture")
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		m.Tensors = append(m.Tensors, &formats.Tensor{
			Name:   ti.Name,
			Shape:  append([]uint64(nil), ti.Shape...),
			Type:   ti.Type,
			Source: &tensorSource{f: f.owner(ti), ti: ti},
		})
	}
	return m
}

type tensorSource struct {
	f  *File
	ti *TensorInfo
}

func (s *tensorSource) Type() ggml.Type { return s.ti.Type }

// ReadRaw copies, so callers may modify the result without touching the
// read-only mapping.
func (s *tensorSource) ReadRaw() ([]byte, error) {
	b, err := s.f.Data(s.ti)
	if err != nil || s.f.mapped == nil {
		return b, err
	}
	out := append([]byte(nil), b...)
	// A streaming pass reads each tensor once: give the pages back so the
	// resident set stays about one tensor per worker, not the whole file.
	mmap.Release(s.f.mapped, s.f.DataOffset+int64(s.ti.Offset), int64(s.ti.Size))
	return out, nil
}

// RawSize implements formats.RowSource.
func (s *tensorSource) RawSize() int64 { return int64(s.ti.Size) }

// ReadRange implements formats.RowSource: len(p) bytes from byte off of
// the tensor.
func (s *tensorSource) ReadRange(p []byte, off int64) error {
	ti := s.ti
	if off < 0 || off > int64(ti.Size) || int64(len(p)) > int64(ti.Size)-off {
		return fmt.Errorf("tensor %s: bytes [%d,%d) are outside its %d", ti.Name, off, off+int64(len(p)), ti.Size)
	}
	f := s.f
	start := f.DataOffset + int64(ti.Offset) + off
	// Read the file itself rather than the mapping: the bytes are copied
	// out anyway, and this way no mapped page joins the resident set.
	read := f.r.ReadAt
	if f.mf != nil {
		read = f.mf.ReadAtFile
	}
	if n, err := read(p, start); n < len(p) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: reading tensor %s at offset %d: %w", f.Path, ti.Name, start, err)
	}
	return nil
}

var _ formats.RowSource = (*tensorSource)(nil)

// Parse reads the header, metadata and tensor infos of a GGUF file of the
// given size from r. name is used in errors.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	p := newParser(r, size, name)
	f := &File{Path: name, Size: size, r: r}
	if err := p.header(f); err != nil {
		return nil, err
	}
	return f, nil
}

// Check reads a GGUF file as Parse does, with the same rules, but goes on
// past each problem after which the layout can still be followed (a
// duplicate key or tensor name, a bad alignment, a tensor's type, shape,
// offset or data range), and returns every problem found. It returns nil
// exactly when Parse accepts the file, and otherwise its first entry is
// Parse's error. inspect --verify reports with it.
func Check(r io.ReaderAt, size int64, name string) ErrorList {
	p := newParser(r, size, name)
	p.collect = true
	if err := p.header(&File{Path: name, Size: size, r: r}); err != nil {
		fe, ok := err.(*FormatError)
		if !ok {
			fe = &FormatError{Kind: ErrFormat, File: name, Offset: p.pos, Msg: err.Error()}
		}
		p.problems = append(p.problems, fe)
	}
	return p.problems
}

func newParser(r io.ReaderAt, size int64, name string) *parser {
	// A small file gets a small buffer: parsing allocates in proportion to
	// the file, never a fixed 64 KiB for a 1 KiB file.
	return &parser{
		br:   bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(max(min(size, 1<<16), 16))),
		size: size,
		name: name,
	}
}

type parser struct {
	br   *bufio.Reader
	pos  int64
	size int64
	name string
	buf  [8]byte
	// collect makes problems that leave the layout readable (see Check)
	// go to problems instead of ending the parse.
	collect  bool
	problems ErrorList
	// depth counts the arrays being read, one inside the other.
	depth int
}

func (p *parser) fail(field, format string, args ...any) error {
	return p.failAt(p.pos, field, format, args...)
}

func (p *parser) failAt(offset int64, field, format string, args ...any) error {
	return &FormatError{Kind: ErrFormat, File: p.name, Field: field, Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

// soft reports a problem after which the parse can go on: Parse stops at
// it (soft returns it), Check records it and goes on (soft returns nil).
func (p *parser) soft(err error) error {
	if !p.collect {
		return err
	}
	p.problems = append(p.problems, err.(*FormatError))
	return nil
}

func (p *parser) remaining() int64 { return p.size - p.pos }

func (p *parser) read(field string, n int) ([]byte, error) {
	if int64(n) > p.remaining() {
		return nil, p.fail(field, "needs %d bytes, only %d left in the file", n, p.remaining())
	}
	b := p.buf[:n]
	if _, err := io.ReadFull(p.br, b); err != nil {
		return nil, p.fail(field, "read failed: %v", err)
	}
	p.pos += int64(n)
	return b, nil
}

// fixed reads a little-endian field of n bytes and decodes it.
func fixed[T any](p *parser, field string, n int, decode func([]byte) T) (T, error) {
	b, err := p.read(field, n)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(b), nil
}

func (p *parser) u8(field string) (uint8, error) {
	return fixed(p, field, 1, func(b []byte) uint8 { return b[0] })
}
func (p *parser) u16(field string) (uint16, error) {
	return fixed(p, field, 2, binary.LittleEndian.Uint16)
}
func (p *parser) u32(field string) (uint32, error) {
	return fixed(p, field, 4, binary.LittleEndian.Uint32)
}
func (p *parser) u64(field string) (uint64, error) {
	return fixed(p, field, 8, binary.LittleEndian.Uint64)
}

func (p *parser) str(field string) (string, error) {
	n, err := p.u64(field + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(p.remaining()) {
		return "", p.fail(field, "string length %d exceeds the %d bytes left in the file", n, p.remaining())
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.br, b); err != nil {
		return "", p.fail(field, "read failed: %v", err)
	}
	p.pos += int64(n)
	return string(b), nil
}

func (p *parser) header(f *File) error {
	magic, err := p.u32("magic")
	if err != nil {
		return err
	}
	if magic != Magic {
		p.pos = 0
		return p.fail("magic", "not a GGUF file (magic %#08x)", magic)
	}
	if f.Version, err = p.u32("version"); err != nil {
		return err
	}
	if f.Version != 2 && f.Version != 3 {
		return p.fail("version", "unsupported GGUF version %d (want 2 or 3)", f.Version)
	}
	nTensors, err := p.u64("tensor count")
	if err != nil {
		return err
	}
	nKV, err := p.u64("metadata count")
	if err != nil {
		return err
	}
	// Each KV needs at least a key length and a type (12 bytes); each
	// tensor info a name length, n_dims, type and offset (24 bytes).
	if nKV > uint64(p.remaining())/12 {
		return p.fail("metadata count", "%d entries cannot fit in the %d bytes left", nKV, p.remaining())
	}
	if nTensors > uint64(p.remaining())/24 {
		return p.fail("tensor count", "%d tensors cannot fit in the %d bytes left", nTensors, p.remaining())
	}
	seen := make(map[string]bool, capHint(nKV))
	f.KV = make(formats.KVs, 0, capHint(nKV))
	for i := uint64(0); i < nKV; i++ {
		at := p.pos
		key, err := p.str(fmt.Sprintf("metadata[%d] key", i))
		if err != nil {
			return err
		}
		if !utf8.ValidString(key) {
			// The parse can go on: the key's length was read.
			if err := p.soft(p.failAt(at, fmt.Sprintf("metadata[%d] key %q", i, key), "the key is not valid UTF-8, which the GGUF specification requires")); err != nil {
				return err
			}
		}
		dup := seen[key]
		if dup {
			if err := p.soft(p.failAt(at, "metadata key "+key, "duplicate key")); err != nil {
				return err
			}
		}
		seen[key] = true
		vt, err := p.u32("metadata " + key + " type")
		if err != nil {
			return err
		}
		v, err := p.value("metadata "+key, formats.ValueType(vt))
		if err != nil {
			return err
		}
		if !dup {
			f.KV = append(f.KV, formats.KV{Key: key, Value: v})
		}
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.KV.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if isU32 && a != 0 && a&(a-1) == 0 {
			f.Alignment = uint64(a)
		} else if err := p.soft(p.fail("general.alignment", "must be a non-zero power of two uint32, got %v (%T)", v, v)); err != nil {
			return err
		}
	}
	names := make(map[string]bool, capHint(nTensors))
	f.Tensors = make([]TensorInfo, 0, capHint(nTensors))
	for i := uint64(0); i < nTensors; i++ {
		ti, sized, err := p.tensorInfo(i)
		if err != nil {
			return err
		}
		if names[ti.Name] {
			if err := p.soft(p.fail("tensor "+ti.Name, "duplicate tensor name")); err != nil {
				return err
			}
		}
		names[ti.Name] = true
		if ti.Offset%f.Alignment != 0 {
			if err := p.soft(p.fail("tensor "+ti.Name+" offset", "offset %d is not a multiple of the alignment %d", ti.Offset, f.Alignment)); err != nil {
				return err
			}
		}
		if sized { // Check leaves out the tensors whose size is unknown
			f.Tensors = append(f.Tensors, ti)
		}
	}
	f.DataOffset = int64(alignUp(uint64(p.pos), f.Alignment))
	if f.DataOffset > p.size && nTensors > 0 {
		return p.fail("data section", "starts at %d, past the end of the %d-byte file", f.DataOffset, p.size)
	}
	dataSize := uint64(0)
	if p.size > f.DataOffset {
		dataSize = uint64(p.size - f.DataOffset)
	}
	// Ranges must lie inside the file and not overlap. Each range is
	// compared with the one that reaches furthest among those before it.
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	var prevEnd uint64
	prevName := ""
	for _, i := range order {
		t := &f.Tensors[i]
		if t.Offset > dataSize || t.Size > dataSize-t.Offset {
			err := p.soft(p.failAt(f.DataOffset+int64(min(t.Offset, dataSize)), "tensor "+t.Name+" data",
				"data [%d, +%d) runs past the end of the file (data section holds %d bytes)", t.Offset, t.Size, dataSize))
			if err != nil {
				return err
			}
		}
		if t.Offset < prevEnd {
			if err := p.soft(p.failAt(f.DataOffset+int64(min(t.Offset, dataSize)), "tensor "+t.Name+" data", "overlaps tensor %s", prevName)); err != nil {
				return err
			}
		}
		if t.Size > 0 && t.Offset <= dataSize && t.Offset+t.Size > prevEnd {
			prevEnd, prevName = t.Offset+t.Size, t.Name
		}
	}
	return nil
}

// tensorInfo reads one tensor info. sized is false when Check went on past
// a problem that leaves the tensor's byte size unknown.
func (p *parser) tensorInfo(i uint64) (ti TensorInfo, sized bool, err error) {
	at := p.pos
	name, err := p.str(fmt.Sprintf("tensor[%d] name", i))
	if err != nil {
		return ti, false, err
	}
	if !utf8.ValidString(name) {
		err := p.soft(p.failAt(at, fmt.Sprintf("tensor[%d] name %q", i, name), "the name is not valid UTF-8, which the GGUF specification requires"))
		if err != nil {
			return ti, false, err
		}
	}
	if len(name) >= maxNameLen {
		err := p.soft(p.fail(fmt.Sprintf("tensor[%d] name", i), "name of %d bytes is too long (llama.cpp allows %d)", len(name), maxNameLen-1))
		if err != nil {
			return ti, false, err
		}
	}
	ti.Name = name
	field := "tensor " + name
	nd, err := p.u32(field + " n_dims")
	if err != nil {
		return ti, false, err
	}
	if nd == 0 || nd > MaxDims {
		// The info's length depends on n_dims: past a wrong one nothing lines up.
		return ti, false, p.fail(field+" n_dims", "%d dimensions (ggml allows 1 to %d)", nd, MaxDims)
	}
	ti.Shape = make([]uint64, nd)
	n, sized := uint64(1), true
	for d := range ti.Shape {
		v, err := p.u64(fmt.Sprintf("%s ne[%d]", field, d))
		if err != nil {
			return ti, false, err
		}
		ti.Shape[d] = v
		if sized && (v > math.MaxInt64 || (v != 0 && n > math.MaxInt64/v)) {
			if err := p.soft(p.fail(fmt.Sprintf("%s ne[%d]", field, d), "dimension %d makes the element count overflow", v)); err != nil {
				return ti, false, err
			}
			sized = false
		}
		n *= v
	}
	typ, err := p.u32(field + " type")
	if err != nil {
		return ti, false, err
	}
	ti.Type = ggml.Type(typ)
	switch {
	case !sized:
	case !ti.Type.Known():
		err, sized = p.soft(p.fail(field+" type", "unknown ggml type id %d", typ)), false
	case ti.Shape[0]%uint64(ti.Type.BlockSize()) != 0:
		err, sized = p.soft(p.fail(field+" ne[0]", "%d is not a multiple of the %s block size %d", ti.Shape[0], ti.Type, ti.Type.BlockSize())), false
	case n/uint64(ti.Type.BlockSize()) > math.MaxInt64/uint64(ti.Type.TypeSize()):
		err, sized = p.soft(p.fail(field, "byte size overflows")), false
	default:
		ti.Size = n / uint64(ti.Type.BlockSize()) * uint64(ti.Type.TypeSize())
	}
	if err != nil {
		return ti, false, err
	}
	if ti.Offset, err = p.u64(field + " offset"); err != nil {
		return ti, false, err
	}
	return ti, sized, nil
}

// The signed and floating-point values are stored as the bits of the
// unsigned integer of their size.
func (p *parser) i8(field string) (int8, error)   { v, err := p.u8(field); return int8(v), err }
func (p *parser) i16(field string) (int16, error) { v, err := p.u16(field); return int16(v), err }
func (p *parser) i32(field string) (int32, error) { v, err := p.u32(field); return int32(v), err }
func (p *parser) i64(field string) (int64, error) { v, err := p.u64(field); return int64(v), err }
func (p *parser) f32(field string) (float32, error) {
	v, err := p.u32(field)
	return math.Float32frombits(v), err
}
func (p *parser) f64(field string) (float64, error) {
	v, err := p.u64(field)
	return math.Float64frombits(v), err
}

// boolean reads a bool byte; one other than 0 or 1 is a soft error (read
// as false).
func (p *parser) boolean(field string) (bool, error) {
	v, err := p.u8(field)
	if err == nil && v > 1 {
		if err := p.soft(p.fail(field, "bool byte %d is neither 0 nor 1", v)); err != nil {
			return false, err
		}
	}
	return v == 1, err
}

func (p *parser) value(field string, t formats.ValueType) (any, error) {
	c, ok := codecs[t]
	if !ok {
		return nil, p.fail(field, "unknown value type %d", uint32(t))
	}
	return c.read(p, field)
}

func (p *parser) array(field string) (formats.Array, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxArrayDepth {
		return formats.Array{}, p.fail(field, "arrays nested more than %d deep", maxArrayDepth)
	}
	et32, err := p.u32(field + " element type")
	if err != nil {
		return formats.Array{}, err
	}
	et := formats.ValueType(et32)
	c, ok := codecs[et]
	if !ok {
		return formats.Array{}, p.fail(field+" element type", "unknown value type %d", et32)
	}
	n, err := p.u64(field + " length")
	if err != nil {
		return formats.Array{}, err
	}
	if n > uint64(p.remaining()/c.minSize()) {
		return formats.Array{}, p.fail(field+" length", "%d elements of %s cannot fit in the %d bytes left", n, et, p.remaining())
	}
	return c.readArray(p, field, et, n)
}

// capHint bounds the capacity reserved for a count read from the file. The
// count has only been checked against the bytes left, and a Go value is
// larger than its smallest encoding (a KV is 32 bytes, its encoding 12), so
// reserving the whole count would let a lying file make the reader allocate
// several times the file's size; beyond the hint, append grows as data
// actually arrives.
func capHint(n uint64) int { return int(min(n, 1024)) }

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }
