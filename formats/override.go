package formats

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseOverrideKV reads llama.cpp's --override-kv KEY=TYPE:VALUE, where
// TYPE is int, float, bool or str, with llama.cpp's limits: the key is
// under 128 bytes, a string value at most 127. The value comes back as
// llama-quantize stores it: int as int32, float as float32, bool, string.
// Unlike llama.cpp's atol/atof, a number must parse whole and fit: "int:12x"
// and an int beyond 32 bits are errors, not 12 or a wrapped value.
func ParseOverrideKV(s string) (KV, error) {
	bad := func(why string) (KV, error) {
		return KV{}, fmt.Errorf("%q: %s", s, why)
	}
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return bad("want KEY=TYPE:VALUE, e.g. general.name=str:My model")
	}
	if len(key) >= 128 {
		return bad("the key is longer than 127 bytes")
	}
	if !utf8.ValidString(key) || !utf8.ValidString(val) {
		return bad("not valid UTF-8, which GGUF requires")
	}
	typ, v, ok := strings.Cut(val, ":")
	if !ok {
		return bad("want TYPE:VALUE after '=', TYPE one of int, float, bool, str")
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return bad("the value is not a 32-bit integer")
		}
		return KV{Key: key, Value: int32(n)}, nil
	case "float":
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 32)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return bad("the value is not a finite number")
		}
		return KV{Key: key, Value: float32(x)}, nil
	case "bool":
		if v != "true" && v != "false" {
			return bad("a bool is true or false")
		}
		return KV{Key: key, Value: v == "true"}, nil
	case "str":
		if len(v) > 127 {
			return bad("a string value cannot exceed 127 bytes (llama.cpp's limit)")
		}
		return KV{Key: key, Value: v}, nil
	}
	return bad("TYPE " + strconv.Quote(typ) + " is not int, float, bool or str")
}
