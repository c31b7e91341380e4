package formats

import (
	"fmt"
	"strconv"
	"strings"
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
	num := strings.TrimSpace(val)
	var v any
	var err error
	switch strings.ToLower(typ) {
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
	case "u8", "uint8":
		v, err = parseUint[uint8](num, 8)
	case "i8", "int8":
		v, err = parseInt[int8](num, 8)
	case "u16", "uint16":
		v, err = parseUint[uint16](num, 16)
	case "i16", "int16":
		v, err = parseInt[int16](num, 16)
	case "u32", "uint32":
		v, err = parseUint[uint32](num, 32)
	case "i32", "int32", "int":
		v, err = parseInt[int32](num, 32)
	case "u64", "uint64":
		v, err = parseUint[uint64](num, 64)
	case "i64", "int64":
		v, err = parseInt[int64](num, 64)
	case "f32", "float32", "float":
		var f float64
		f, err = strconv.ParseFloat(num, 32)
		v = float32(f)
	case "f64", "float64":
		v, err = strconv.ParseFloat(num, 64)
	default:
		return nil, fmt.Errorf("value %q: unknown type %q", s, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("value %q: %w", s, err)
	}
	return v, nil
}

// parseUint parses an unsigned integer (decimal, or 0x/0o/0b prefixed)
// that must fit bits, as T.
func parseUint[T uint8 | uint16 | uint32 | uint64](num string, bits int) (T, error) {
	n, err := strconv.ParseUint(num, 0, bits)
	return T(n), err
}

// parseInt is parseUint for signed integers.
func parseInt[T int8 | int16 | int32 | int64](num string, bits int) (T, error) {
	n, err := strconv.ParseInt(num, 0, bits)
	return T(n), err
}
