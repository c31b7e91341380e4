// Package formats holds llqt's common model graph: the in-memory description
// of a model (architecture, metadata, tokenizer and an ordered list of
// tensors with lazy data) that converters produce and writers consume.
//
// Tensor bytes are never held here: each Tensor names a Source that reads its
// data on demand and a chain of Transforms applied when it is materialised,
// so a writer can stream a model one tensor at a time. The subpackages read
// and write concrete file formats (gguf, safetensors); ggml holds the type
// table shared by all of them. formats imports no other llqt package.
package formats

import (
	"fmt"

	"github.com/llqt/llqt/formats/ggml"
)

// Model is a model graph.
type Model struct {
	// Arch is the GGUF architecture name ("llama").
	Arch string
	// KV is the ordered metadata, exactly as it will be written to GGUF:
	// general.*, the architecture's hyperparameters and tokenizer.ggml.*.
	KV KVs
	// Tensors in output order.
	Tensors []*Tensor
}

// Tensor is one named tensor with lazily read data.
type Tensor struct {
	Name string
	// Shape in ggml order: Shape[0] (ne0) is the contiguous dimension, so a
	// torch weight of shape [out, in] has Shape {in, out}.
	Shape []uint64
	// Type is the type the tensor is stored as in the output.
	Type ggml.Type
	// Source yields the input bytes.
	Source Source
	// Transforms run, in order, on the float32 view of the source before the
	// data is encoded as Type. With none, and Source.Type() == Type, the
	// source bytes are copied through unchanged.
	Transforms []Transform
}

// Elements is the number of elements of the tensor.
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Size is the number of bytes the tensor takes in its output Type.
func (t *Tensor) Size() (uint64, error) {
	if len(t.Shape) == 0 {
		return 0, fmt.Errorf("tensor %s: no shape", t.Name)
	}
	row, ok := t.Type.RowSize(t.Shape[0])
	if !ok {
		return 0, fmt.Errorf("tensor %s: row of %d elements is not a whole number of %s blocks (%d)",
			t.Name, t.Shape[0], t.Type, t.Type.BlockSize())
	}
	if t.Shape[0] == 0 { // zero-sized (valid GGUF); Elements()/Shape[0] would divide by zero
		return 0, nil
	}
	return row * (t.Elements() / t.Shape[0]), nil
}

// Source is the lazy data of a tensor.
type Source interface {
	// Type is the ggml type of the bytes ReadRaw returns.
	Type() ggml.Type
	// ReadRaw reads the whole tensor's bytes. Each call reads afresh, so
	// the caller may modify the result.
	ReadRaw() ([]byte, error)
}

// Transform changes a tensor's float32 data in place; shape is in ggml order.
type Transform interface {
	Apply(data []float32, shape []uint64) error
	// Name describes the transform in plans and errors.
	Name() string
}

// Codec converts between float32 and a stored type. Plain float types are
// handled by PlainCodec; a quantizer supplies one for the block formats.
type Codec interface {
	// Decode converts raw data of type t to float32. n is the element count.
	Decode(t ggml.Type, raw []byte, n int) ([]float32, error)
	// Encode converts float32 rows of ne0 elements to type t.
	Encode(t ggml.Type, data []float32, ne0 int) ([]byte, error)
}

// Materialize reads t's source, applies its transforms and encodes the
// result as t.Type using codec (PlainCodec when nil).
func Materialize(t *Tensor, codec Codec) ([]byte, error) {
	if codec == nil {
		codec = PlainCodec{}
	}
	raw, err := t.Source.ReadRaw()
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	want, err := t.Size()
	if err != nil {
		return nil, err
	}
	if len(t.Transforms) == 0 && t.Source.Type() == t.Type {
		if uint64(len(raw)) != want {
			return nil, fmt.Errorf("tensor %s: source has %d bytes, %s%v needs %d", t.Name, len(raw), t.Type, t.Shape, want)
		}
		return raw, nil
	}
	n := t.Elements()
	f, err := codec.Decode(t.Source.Type(), raw, int(n))
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	for _, tr := range t.Transforms {
		if err := tr.Apply(f, t.Shape); err != nil {
			return nil, fmt.Errorf("tensor %s: %s: %w", t.Name, tr.Name(), err)
		}
	}
	out, err := codec.Encode(t.Type, f, int(t.Shape[0]))
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if uint64(len(out)) != want {
		return nil, fmt.Errorf("tensor %s: encoded %d bytes, want %d", t.Name, len(out), want)
	}
	return out, nil
}

// PartedSource is a Source made of equal parts stacked along the tensor's
// slowest dimension, such as Mixtral's experts stacked into one 3-D
// tensor. A writer may materialise it one part at a time, so that memory
// holds one part rather than the stack.
type PartedSource interface {
	Source
	Parts() []Source
}

// MaterializeParts encodes t one part at a time when its source is a
// PartedSource with one part per index of its slowest dimension and t has
// no transforms, calling fn with each part's bytes in order. handled is
// false (and nothing is read) otherwise; Materialize then does the whole.
func MaterializeParts(t *Tensor, codec Codec, fn func([]byte) error) (handled bool, err error) {
	ps, ok := t.Source.(PartedSource)
	if !ok || len(t.Transforms) > 0 || len(t.Shape) < 2 {
		return false, nil
	}
	parts := ps.Parts()
	if uint64(len(parts)) != t.Shape[len(t.Shape)-1] {
		return false, nil
	}
	for i, p := range parts {
		if p.Type() != ps.Type() {
			return true, fmt.Errorf("tensor %s: part %d has type %s, the stack %s", t.Name, i, p.Type(), ps.Type())
		}
		sub := &Tensor{Name: fmt.Sprintf("%s[%d]", t.Name, i), Shape: t.Shape[:len(t.Shape)-1], Type: t.Type, Source: p}
		data, err := Materialize(sub, codec)
		if err != nil {
			return true, err
		}
		if err := fn(data); err != nil {
			return true, err
		}
	}
	return true, nil
}
