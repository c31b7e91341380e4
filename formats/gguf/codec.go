package gguf

import (
	"fmt"

	"github.com/llqt/llqt/formats"
)

// valueCodec reads and writes one GGUF metadata value type, alone and as the
// elements of an array (a Go slice of its type). The reader and the writer
// both look value types up in codecs, so each type's Go type, encoding and
// smallest size are stated once.
type valueCodec interface {
	// minSize is the smallest encoding of one value, which bounds how many
	// elements an array can declare in the bytes left.
	minSize() int64
	read(p *parser, field string) (any, error)
	readArray(p *parser, field string, et formats.ValueType, n uint64) (formats.Array, error)
	// write encodes v, which the caller has typed with formats.TypeOf.
	write(e *encoder, v any) error
	// writeArray encodes the elements of vs; held is false (and nothing is
	// written) when vs is not a slice of this type.
	writeArray(e *encoder, vs any) (held bool, err error)
}

// codec is the valueCodec of values held as T.
type codec[T any] struct {
	size int64
	get  func(p *parser, field string) (T, error)
	put  func(e *encoder, v T) error
}

// scalar is the codec of a type whose encoding cannot fail.
func scalar[T any](size int64, get func(*parser, string) (T, error), put func(*encoder, T)) codec[T] {
	return codec[T]{size, get, func(e *encoder, v T) error { put(e, v); return nil }}
}

func (c codec[T]) minSize() int64 { return c.size }

func (c codec[T]) read(p *parser, field string) (any, error) { return c.get(p, field) }

// readArray reads n elements of type et.
func (c codec[T]) readArray(p *parser, field string, et formats.ValueType, n uint64) (formats.Array, error) {
	out := make([]T, 0, capHint(n))
	for i := uint64(0); i < n; i++ {
		v, err := c.get(p, field)
		if err != nil {
			return formats.Array{}, err
		}
		out = append(out, v)
	}
	return formats.Array{Elem: et, Values: out}, nil
}

func (c codec[T]) write(e *encoder, v any) error {
	x, ok := v.(T)
	if !ok {
		return fmt.Errorf("value of Go type %T has no GGUF type", v)
	}
	return c.put(e, x)
}

func (c codec[T]) writeArray(e *encoder, vs any) (bool, error) {
	xs, ok := vs.([]T)
	if !ok {
		return false, nil
	}
	for _, x := range xs {
		if err := c.put(e, x); err != nil {
			return true, err
		}
	}
	return true, nil
}

// codecs is filled by init: the array codec refers back to the table.
var codecs map[formats.ValueType]valueCodec

func init() {
	codecs = map[formats.ValueType]valueCodec{
		formats.ValUint8:   scalar(1, (*parser).u8, (*encoder).u8),
		formats.ValInt8:    scalar(1, (*parser).i8, (*encoder).i8),
		formats.ValUint16:  scalar(2, (*parser).u16, (*encoder).u16),
		formats.ValInt16:   scalar(2, (*parser).i16, (*encoder).i16),
		formats.ValUint32:  scalar(4, (*parser).u32, (*encoder).u32),
		formats.ValInt32:   scalar(4, (*parser).i32, (*encoder).i32),
		formats.ValFloat32: scalar(4, (*parser).f32, (*encoder).f32),
		formats.ValBool:    scalar(1, (*parser).boolean, (*encoder).boolean),
		formats.ValString:  scalar(8, (*parser).str, (*encoder).str), // its length
		formats.ValUint64:  scalar(8, (*parser).u64, (*encoder).u64),
		formats.ValInt64:   scalar(8, (*parser).i64, (*encoder).i64),
		formats.ValFloat64: scalar(8, (*parser).f64, (*encoder).f64),
		// An array's element type and length.
		formats.ValArray: codec[formats.Array]{12, (*parser).array, (*encoder).array},
	}
}
