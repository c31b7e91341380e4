package formats

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseOverrideKV reads llama.cpp's --override-kv KEY=TYPE:VALUE, where
// TYPE is int, float, bool or str, with llama.cpp's limits: the key is
// under 128 bytes, a string value at most 127. The value comes back as
// llama-quantize stores it: int as int32, float as float32, bool, string.
// Unlike llama.cpp's atol/atof, a number must parse whole: "int:12x" is an
// error, not 12.
func ParseOverrideKV(s string) (KV, error) {
	key, rest, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return KV{}, fmt.Errorf("override %q: want KEY=TYPE:VALUE", s)
	case key == "":
		return KV{}, fmt.Errorf("override %q: empty key", s)
	case len(key) >= 128:
		return KV{}, fmt.Errorf("override %q: key longer than 127 bytes", s)
	}
	typ, val, ok := strings.Cut(rest, ":")
	if !ok {
		return KV{}, fmt.Errorf("override %q: want KEY=TYPE:VALUE with TYPE int, float, bool or str", s)
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return KV{}, fmt.Errorf("override %q: %w", s, err)
		}
		// llama-quantize writes integer overrides with gguf_set_val_i32.
		return KV{Key: key, Value: int32(n)}, nil
	case "float":
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return KV{}, fmt.Errorf("override %q: %w", s, err)
		}
		return KV{Key: key, Value: float32(f)}, nil
	case "bool":
		switch val {
		case "true":
			return KV{Key: key, Value: true}, nil
		case "false":
			return KV{Key: key, Value: false}, nil
		}
		return KV{}, fmt.Errorf("override %q: bool value must be true or false", s)
	case "str":
		if len(val) > 127 {
			return KV{}, errors.New("override " + strconv.Quote(key) + ": string value cannot exceed 127 bytes (llama.cpp's limit)")
		}
		return KV{Key: key, Value: val}, nil
	}
	return KV{}, fmt.Errorf("override %q: unknown type %q (int, float, bool or str)", s, typ)
}
