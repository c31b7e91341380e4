// Package inspect describes a model file for `llqt inspect`: its metadata
// (arrays summarised), a table of its tensors, a summary (tensor and
// parameter counts, file size, bits per weight), per-tensor SHA-256 on
// request, and a structural verification that lists every problem it finds
// rather than stopping at the first.
//
// GGUF files are read with package formats/gguf; verification re-scans the
// file independently of that reader, so a file the reader rejects still gets
// a full list of what is wrong with it.
package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
)

// Options selects the optional parts of a report.
type Options struct {
	// Verify checks the file's structure and fills Report.Verify.
	Verify bool
	// Hash computes each tensor's SHA-256.
	Hash bool
	// ArrayPreview is how many leading values of an array to show; 0 means 5.
	ArrayPreview int
}

// Report describes one model file.
type Report struct {
	Path       string   `json:"path"`
	Format     string   `json:"format"`
	Version    uint32   `json:"version,omitempty"`
	FileSize   int64    `json:"file_size"`
	Alignment  uint64   `json:"alignment,omitempty"`
	DataOffset int64    `json:"data_offset,omitempty"`
	Metadata   []Meta   `json:"metadata"`
	Tensors    []Tensor `json:"tensors"`
	// ShapeOrder is "ggml" (ne0, the contiguous dimension, first) for GGUF
	// and "torch" (contiguous dimension last) for safetensors.
	ShapeOrder string   `json:"shape_order"`
	Summary    Summary  `json:"summary"`
	Verify     *Verdict `json:"verify,omitempty"`
	Error      string   `json:"error,omitempty"`
	// opened is set when the reader accepted the input.
	opened bool
}

// Meta is one metadata entry. Scalars are kept as they are; arrays are
// summarised by their element type, length and first few values.
type Meta struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value,omitempty"`
	// For arrays:
	ElemType string `json:"elem_type,omitempty"`
	Len      int    `json:"len,omitempty"`
	First    []any  `json:"first,omitempty"`
	// Escaped is set when a string value (or one of First) is not valid
	// UTF-8: it is then shown Go-quoted without the quotes ("\xe2\x82"),
	// since real vocabularies hold partial byte sequences.
	Escaped bool `json:"escaped,omitempty"`
}

// EscapedString is a string value that is not valid UTF-8, held as
// strconv.Quote writes it, without the surrounding quotes.
type EscapedString string

// Tensor is one row of the tensor table.
type Tensor struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Shape in the file's own order (Report.ShapeOrder).
	Shape  []uint64 `json:"shape"`
	Offset uint64   `json:"offset"`
	Bytes  uint64   `json:"bytes"`
	SHA256 string   `json:"sha256,omitempty"`
	// File is the shard holding the tensor (Hugging Face directories).
	File string `json:"file,omitempty"`
}

// Summary totals the tensors.
type Summary struct {
	Tensors     int     `json:"tensors"`
	Parameters  uint64  `json:"parameters"`
	TensorBytes uint64  `json:"tensor_bytes"`
	FileSize    int64   `json:"file_size"`
	BPW         float64 `json:"bits_per_weight"`
}

// Verdict is the result of a structural verification.
type Verdict struct {
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

// ErrVerify is returned by Run when verification found problems; the report
// is still returned and describes them.
var ErrVerify = errors.New("verification failed")

// Run inspects path: a GGUF file, a .safetensors file or a Hugging Face
// checkpoint directory.
//
// With Verify set, a GGUF file the reader rejects still yields a report
// whose Verify lists every problem, together with an error wrapping both
// ErrVerify and the reader's error.
func Run(path string, opt Options) (*Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		// Opening a FIFO would block; a device never ends.
		return nil, fmt.Errorf("%s: not a regular file or directory", path)
	}
	if st.IsDir() || strings.EqualFold(filepath.Ext(path), ".safetensors") {
		return inspectSafetensors(path, st.IsDir(), opt)
	}
	return inspectGGUF(path, st.Size(), opt)
}

func inspectGGUF(path string, size int64, opt Options) (*Report, error) {
	rep := &Report{Path: path, Format: "gguf", FileSize: size, ShapeOrder: "ggml"}
	// The first shard of a split model shows the whole model, as llama.cpp
	// loads it; any other file (a later shard too) is shown alone.
	f, openErr := gguf.OpenModel(path)
	if openErr != nil {
		if g, err := gguf.Open(path); err == nil {
			f, openErr = g, nil
		}
	}
	if openErr != nil && !opt.Verify {
		return nil, openErr
	}
	if openErr == nil {
		defer f.Close()
		rep.opened = true
		rep.fill(f, opt)
		if opt.Hash {
			if err := rep.hash(f); err != nil {
				return nil, err
			}
		}
	} else {
		rep.Error = openErr.Error()
	}
	if !opt.Verify {
		return rep, nil
	}
	v, err := verifyGGUF(path, size)
	if err != nil {
		return nil, err
	}
	if openErr != nil && v.OK {
		// The scan found nothing the reader did; never call a rejected file OK.
		v = &Verdict{Problems: []string{openErr.Error()}}
	}
	rep.Verify = v
	if openErr != nil {
		return rep, fmt.Errorf("%w: %w", ErrVerify, openErr)
	}
	if !v.OK {
		return rep, fmt.Errorf("%s: %w: %d problem(s)", path, ErrVerify, len(v.Problems))
	}
	return rep, nil
}

func (rep *Report) fill(f *gguf.File, opt Options) {
	rep.Version = f.Version
	rep.Alignment = f.Alignment
	rep.DataOffset = f.DataOffset
	preview := opt.ArrayPreview
	if preview <= 0 {
		preview = 5
	}
	rep.Metadata = make([]Meta, 0, len(f.KV))
	for _, kv := range f.KV {
		rep.Metadata = append(rep.Metadata, describeKV(kv, preview))
	}
	rep.Tensors = make([]Tensor, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		rep.Tensors = append(rep.Tensors, Tensor{
			Name: t.Name, Type: t.Type.String(), Shape: append([]uint64(nil), t.Shape...),
			Offset: t.Offset, Bytes: t.Size,
		})
		rep.Summary.Parameters += t.Elements()
		rep.Summary.TensorBytes += t.Size
	}
	rep.Summary.Tensors = len(f.Tensors)
	rep.Summary.FileSize = f.Size
	if rep.Summary.Parameters > 0 {
		rep.Summary.BPW = float64(rep.Summary.TensorBytes) * 8 / float64(rep.Summary.Parameters)
	}
}

func (rep *Report) hash(f *gguf.File) error {
	for i := range f.Tensors {
		b, err := f.Data(&f.Tensors[i])
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rep.Tensors[i].SHA256 = hex.EncodeToString(sum[:])
	}
	return nil
}

func describeKV(kv formats.KV, preview int) Meta {
	t, _ := formats.TypeOf(kv.Value)
	m := Meta{Key: kv.Key, Type: t.String()}
	a, isArray := kv.Value.(formats.Array)
	if !isArray {
		m.Value = jsonSafe(kv.Value)
		_, m.Escaped = m.Value.(EscapedString)
		return m
	}
	m.ElemType = a.Elem.String()
	m.Len = a.Len()
	m.First = firstValues(a, preview)
	for _, v := range m.First {
		if _, ok := v.(EscapedString); ok {
			m.Escaped = true
		}
	}
	return m
}

// firstValues returns up to n leading values of a; nested arrays are shown
// by their own summary.
func firstValues(a formats.Array, n int) []any {
	n = min(n, a.Len())
	out := make([]any, 0, n)
	switch vs := a.Values.(type) {
	case []formats.Array:
		for _, v := range vs[:n] {
			out = append(out, fmt.Sprintf("array[%s] len %d", v.Elem, v.Len()))
		}
	default:
		for i := 0; i < n; i++ {
			out = append(out, jsonSafe(index(a.Values, i)))
		}
	}
	return out
}

func index(values any, i int) any {
	switch vs := values.(type) {
	case []uint8:
		return vs[i]
	case []int8:
		return vs[i]
	case []uint16:
		return vs[i]
	case []int16:
		return vs[i]
	case []uint32:
		return vs[i]
	case []int32:
		return vs[i]
	case []float32:
		return vs[i]
	case []bool:
		return vs[i]
	case []string:
		return vs[i]
	case []uint64:
		return vs[i]
	case []int64:
		return vs[i]
	case []float64:
		return vs[i]
	}
	return nil
}

// jsonSafe turns the floats encoding/json refuses (NaN, ±Inf) into strings.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			q := strconv.Quote(x)
			return EscapedString(q[1 : len(q)-1])
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Sprint(x)
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	}
	return v
}
