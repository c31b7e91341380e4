package formats

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// ParseTypedValue reads a metadata value written TYPE:VALUE. TYPE is a
// GGUF type name (uint8, int8, uint16, int16, uint32, int32, float32, bool,
// string, uint64, int64, float64), a short form (u8 … f64, str) or one of
// llama.cpp's --override-kv types (int = int32, float = float32). Numbers
// must parse whole and fit the type; bool is true or false.
func ParseTypedValue(s string) (any, error) {
	typ, val, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("value %q: want TYPE:VALUE, e.g. str:hello, u32:4096, f32:1e-5, bool:true", s)
	}
	name := strings.ToLower(typ)
	switch name {
	case "str", "string":
		return val, nil
	case "bool":
		switch val {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("value %q: bool must be true or false", s)
	}
	parse, ok := numberParsers[name]
	if !ok {
		return nil, fmt.Errorf("value %q: unknown type %q", s, typ)
	}
	v, err := parse(strings.TrimSpace(val))
	if err != nil {
		return nil, fmt.Errorf("value %q: %w", s, err)
	}
	return v, nil
}

// numberParsers parses the VALUE of each numeric TYPE name, short and long
// forms alike, into the Go type a KV holds for it.
var numberParsers = map[string]func(num string) (any, error){
	"u8": parseUint[uint8], "uint8": parseUint[uint8],
	"i8": parseInt[int8], "int8": parseInt[int8],
	"u16": parseUint[uint16], "uint16": parseUint[uint16],
	"i16": parseInt[int16], "int16": parseInt[int16],
	"u32": parseUint[uint32], "uint32": parseUint[uint32],
	"i32": parseInt[int32], "int32": parseInt[int32], "int": parseInt[int32],
	"u64": parseUint[uint64], "uint64": parseUint[uint64],
	"i64": parseInt[int64], "int64": parseInt[int64],
	"f32": parseFloat32, "float32": parseFloat32, "float": parseFloat32,
	"f64": parseFloat64, "float64": parseFloat64,
}

// parseUint parses an unsigned integer (decimal, or 0x/0o/0b prefixed)
// that must fit T.
func parseUint[T uint8 | uint16 | uint32 | uint64](num string) (any, error) {
	n, err := strconv.ParseUint(num, 0, bitSize[T]())
	return T(n), err
}

// parseInt is parseUint for signed integers.
func parseInt[T int8 | int16 | int32 | int64](num string) (any, error) {
	n, err := strconv.ParseInt(num, 0, bitSize[T]())
	return T(n), err
}

// bitSize is the width of the integer type T, for strconv's range check.
func bitSize[T any]() int {
	var zero T
	return int(unsafe.Sizeof(zero)) * 8
}

func parseFloat32(num string) (any, error) {
	f, err := strconv.ParseFloat(num, 32)
	return float32(f), err
}

func parseFloat64(num string) (any, error) { return strconv.ParseFloat(num, 64) }
