package inspect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
)

// maxProblems caps the list, so a file of a million broken tensors does not
// produce a million lines.
const maxProblems = 100

// verifyGGUF scans a GGUF file's structure on its own (not through package
// gguf's reader, which stops at the first problem) and lists each problem:
// header fields, metadata it cannot walk, the alignment, and for every
// tensor its dimensions, type, size against type×shape, offset alignment,
// range inside the file and overlap with its neighbours.
func verifyGGUF(path string, size int64) (*Verdict, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return verifyReader(fh, size), nil
}

// verifyReader scans size bytes of GGUF from r.
func verifyReader(r io.ReaderAt, size int64) *Verdict {
	s := &scan{
		br:   bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(max(min(size, 1<<16), 16))),
		size: size,
	}
	s.run()
	v := &Verdict{Problems: s.problems, OK: len(s.problems) == 0}
	if v.Problems == nil {
		v.Problems = []string{}
	}
	if s.dropped > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("… and %d more problems", s.dropped))
	}
	return v
}

type scan struct {
	br       *bufio.Reader
	pos      int64
	size     int64
	buf      [8]byte
	problems []string
	dropped  int
}

// errStop ends the scan where the layout can no longer be followed.
var errStop = errors.New("stop")

func (s *scan) problem(at int64, format string, args ...any) {
	if len(s.problems) >= maxProblems {
		s.dropped++
		return
	}
	s.problems = append(s.problems, fmt.Sprintf("offset %d: ", at)+fmt.Sprintf(format, args...))
}

// fatal records a problem after which nothing more can be read.
func (s *scan) fatal(format string, args ...any) error {
	s.problem(s.pos, format, args...)
	return errStop
}

func (s *scan) read(what string, n int64) ([]byte, error) {
	if n > s.size-s.pos {
		return nil, s.fatal("%s needs %d bytes, only %d left in the file", what, n, s.size-s.pos)
	}
	var b []byte
	if n <= int64(len(s.buf)) {
		b = s.buf[:n]
	} else {
		b = make([]byte, n)
	}
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, s.fatal("reading %s: %v", what, err)
	}
	s.pos += n
	return b, nil
}

func (s *scan) u32(what string) (uint32, error) {
	b, err := s.read(what, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (s *scan) u64(what string) (uint64, error) {
	b, err := s.read(what, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (s *scan) str(what string) (string, error) {
	n, err := s.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(s.size-s.pos) {
		return "", s.fatal("%s: length %d exceeds the %d bytes left", what, n, s.size-s.pos)
	}
	b, err := s.read(what, int64(n))
	return string(b), err
}

// skip advances over n bytes without keeping them.
func (s *scan) skip(what string, n uint64) error {
	if n > uint64(s.size-s.pos) {
		return s.fatal("%s: %d bytes exceed the %d left", what, n, s.size-s.pos)
	}
	if _, err := s.br.Discard(int(n)); err != nil {
		return s.fatal("reading %s: %v", what, err)
	}
	s.pos += int64(n)
	return nil
}

type tensorRange struct {
	name        string
	offset, end uint64
	infoAt      int64
}

func (s *scan) run() {
	magic, err := s.u32("magic")
	if err != nil {
		return
	}
	if magic != gguf.Magic {
		s.problem(0, "not a GGUF file (magic %#08x)", magic)
		return
	}
	version, err := s.u32("version")
	if err != nil {
		return
	}
	if version != 2 && version != 3 {
		s.problem(4, "unsupported GGUF version %d (want 2 or 3)", version)
		return
	}
	nTensors, err := s.u64("tensor count")
	if err != nil {
		return
	}
	nKV, err := s.u64("metadata count")
	if err != nil {
		return
	}
	alignment := uint64(gguf.DefaultAlignment)
	keys := map[string]bool{}
	for i := uint64(0); i < nKV; i++ {
		at := s.pos
		key, err := s.str(fmt.Sprintf("metadata[%d] key", i))
		if err != nil {
			return
		}
		dup := keys[key]
		keys[key] = true
		key = clipName(key) // from here on only shown
		if dup {
			s.problem(at, "metadata key %q appears twice", key)
		}
		vt, err := s.u32("metadata " + key + " type")
		if err != nil {
			return
		}
		if key == "general.alignment" {
			if formats.ValueType(vt) != formats.ValUint32 {
				s.problem(at, "general.alignment has type %s, want uint32", formats.ValueType(vt))
			} else {
				a, err := s.u32("general.alignment")
				if err != nil {
					return
				}
				if a == 0 || a&(a-1) != 0 {
					s.problem(at, "general.alignment %d is not a non-zero power of two", a)
				} else {
					alignment = uint64(a)
				}
				continue
			}
		}
		if err := s.skipValue("metadata "+key, formats.ValueType(vt), 0); err != nil {
			return
		}
	}
	var ranges []tensorRange
	names := map[string]bool{}
	for i := uint64(0); i < nTensors; i++ {
		r, ok, err := s.tensorInfo(i, alignment, names)
		if err != nil {
			return
		}
		if ok {
			ranges = append(ranges, r)
		}
	}
	dataOffset := (uint64(s.pos) + alignment - 1) / alignment * alignment
	if dataOffset > uint64(s.size) && nTensors > 0 {
		s.problem(s.pos, "data section starts at %d, past the end of the %d-byte file", dataOffset, s.size)
		return
	}
	dataSize := uint64(s.size) - min(dataOffset, uint64(s.size))
	sort.SliceStable(ranges, func(a, b int) bool { return ranges[a].offset < ranges[b].offset })
	var prev *tensorRange
	for i := range ranges {
		r := &ranges[i]
		if r.end > dataSize {
			s.problem(r.infoAt, "tensor %q data [%d, %d) runs past the end of the data section (%d bytes)",
				r.name, r.offset, r.end, dataSize)
		}
		if prev != nil && r.offset < prev.end && r.end > r.offset {
			s.problem(r.infoAt, "tensor %q data [%d, %d) overlaps tensor %q [%d, %d)",
				r.name, r.offset, r.end, prev.name, prev.offset, prev.end)
		}
		if prev == nil || r.end > prev.end {
			prev = r
		}
	}
}

// tensorInfo reads one tensor info and checks it on its own; ok is false
// when its size cannot be known.
func (s *scan) tensorInfo(i, alignment uint64, names map[string]bool) (tensorRange, bool, error) {
	at := s.pos
	name, err := s.str(fmt.Sprintf("tensor[%d] name", i))
	if err != nil {
		return tensorRange{}, false, err
	}
	dup := names[name]
	names[name] = true
	if len(name) >= maxNameLen {
		s.problem(at, "tensor name %q is %d bytes long (llama.cpp allows %d)", clipName(name), len(name), maxNameLen-1)
	}
	name = clipName(name) // from here on only shown
	if dup {
		s.problem(at, "tensor name %q appears twice", name)
	}
	nd, err := s.u32(fmt.Sprintf("tensor %q n_dims", name))
	if err != nil {
		return tensorRange{}, false, err
	}
	if nd == 0 || nd > gguf.MaxDims {
		// The info's length depends on n_dims; past a wrong one nothing lines up.
		return tensorRange{}, false, s.fatal("tensor %q has %d dimensions (1 to %d allowed)", name, nd, gguf.MaxDims)
	}
	shape := make([]uint64, nd)
	elems, overflow := uint64(1), false
	for d := range shape {
		if shape[d], err = s.u64(fmt.Sprintf("tensor %q ne[%d]", name, d)); err != nil {
			return tensorRange{}, false, err
		}
		hi, lo := mulU64(elems, shape[d])
		overflow = overflow || hi != 0 || lo > math.MaxInt64
		elems = lo
	}
	typ, err := s.u32(fmt.Sprintf("tensor %q type", name))
	if err != nil {
		return tensorRange{}, false, err
	}
	offset, err := s.u64(fmt.Sprintf("tensor %q offset", name))
	if err != nil {
		return tensorRange{}, false, err
	}
	t := ggml.Type(typ)
	ok := true
	switch {
	case overflow:
		s.problem(at, "tensor %q shape %v: element count overflows", name, shape)
		ok = false
	case !t.Known():
		s.problem(at, "tensor %q has unknown ggml type id %d", name, typ)
		ok = false
	case shape[0]%uint64(t.BlockSize()) != 0:
		s.problem(at, "tensor %q ne[0]=%d is not a multiple of the %s block size %d", name, shape[0], t, t.BlockSize())
		ok = false
	}
	if offset%alignment != 0 {
		s.problem(at, "tensor %q offset %d is not a multiple of the alignment %d", name, offset, alignment)
	}
	if !ok {
		return tensorRange{}, false, nil
	}
	hi, bytes := mulU64(elems/uint64(t.BlockSize()), uint64(t.TypeSize()))
	if hi != 0 || bytes > math.MaxInt64 {
		s.problem(at, "tensor %q of %s%v: byte size overflows", name, t, shape)
		return tensorRange{}, false, nil
	}
	end := offset + bytes
	if end < offset {
		s.problem(at, "tensor %q offset %d + %d bytes overflows", name, offset, bytes)
		return tensorRange{}, false, nil
	}
	return tensorRange{name: name, offset: offset, end: end, infoAt: at}, true, nil
}

// maxNameLen is ggml's GGML_MAX_NAME; llama.cpp rejects longer tensor names.
const maxNameLen = 64

// clipName cuts a file-supplied name for messages (which quote it with %q,
// escaping anything non-printable).
func clipName(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

func mulU64(a, b uint64) (hi, lo uint64) {
	if a == 0 || b == 0 {
		return 0, 0
	}
	lo = a * b
	if lo/b != a {
		return 1, lo
	}
	return 0, lo
}

// elemSize is the smallest encoding of one array element.
func elemSize(t formats.ValueType) uint64 {
	switch t {
	case formats.ValUint8, formats.ValInt8, formats.ValBool:
		return 1
	case formats.ValUint16, formats.ValInt16:
		return 2
	case formats.ValUint32, formats.ValInt32, formats.ValFloat32:
		return 4
	case formats.ValString, formats.ValUint64, formats.ValInt64, formats.ValFloat64:
		return 8
	case formats.ValArray:
		return 12
	}
	return 0
}

const maxArrayDepth = 8

// skipValue walks over one metadata value, checking lengths on the way.
func (s *scan) skipValue(what string, t formats.ValueType, depth int) error {
	switch t {
	case formats.ValString:
		n, err := s.u64(what + " length")
		if err != nil {
			return err
		}
		return s.skip(what, n)
	case formats.ValBool:
		b, err := s.read(what, 1)
		if err != nil {
			return err
		}
		if b[0] > 1 {
			s.problem(s.pos-1, "%s: bool byte %d is neither 0 nor 1", what, b[0])
		}
		return nil
	case formats.ValArray:
		if depth >= maxArrayDepth {
			return s.fatal("%s: arrays nested more than %d deep", what, maxArrayDepth)
		}
		et, err := s.u32(what + " element type")
		if err != nil {
			return err
		}
		es := elemSize(formats.ValueType(et))
		if es == 0 {
			return s.fatal("%s: unknown array element type %d", what, et)
		}
		n, err := s.u64(what + " length")
		if err != nil {
			return err
		}
		if n > uint64(s.size-s.pos)/es {
			return s.fatal("%s: %d elements of %s cannot fit in the %d bytes left", what, n, formats.ValueType(et), s.size-s.pos)
		}
		switch formats.ValueType(et) {
		case formats.ValString, formats.ValArray, formats.ValBool:
			for i := uint64(0); i < n; i++ {
				if err := s.skipValue(what, formats.ValueType(et), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		return s.skip(what, n*es)
	}
	es := elemSize(t)
	if es == 0 {
		return s.fatal("%s: unknown value type %d", what, uint32(t))
	}
	return s.skip(what, es)
}
