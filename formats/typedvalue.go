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
	uintOf := func(bits int) (uint64, error) { return strconv.ParseUint(num, 0, bits) }
	intOf := func(bits int) (int64, error) { return strconv.ParseInt(num, 0, bits) }
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
		var n uint64
		n, err = uintOf(8)
		v = uint8(n)
	case "i8", "int8":
		var n int64
		n, err = intOf(8)
		v = int8(n)
	case "u16", "uint16":
		var n uint64
		n, err = uintOf(16)
		v = uint16(n)
	case "i16", "int16":
		var n int64
		n, err = intOf(16)
		v = int16(n)
	case "u32", "uint32":
		var n uint64
		n, err = uintOf(32)
		v = uint32(n)
	case "i32", "int32", "int":
		var n int64
		n, err = intOf(32)
		v = int32(n)
	case "u64", "uint64":
		v, err = uintOf(64)
	case "i64", "int64":
		v, err = intOf(64)
	case "f32", "float32", "float":
		var f float64
		f, err = strconv.ParseFloat(num, 32)
		v = float32(f)
	case "f64", "float64":
		var f float64
		f, err = strconv.ParseFloat(num, 64)
		v = f
	default:
		return nil, fmt.Errorf("value %q: unknown type %q", s, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("value %q: %w", s, err)
	}
	return v, nil
}
