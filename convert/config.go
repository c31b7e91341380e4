package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrConfig is wrapped by errors about a missing or invalid config.json
// (or a config that disagrees with the checkpoint's tensors).
var ErrConfig = errors.New("invalid model config")

// Config is a parsed config.json: the hyperparameters as JSON values, with
// numbers kept as json.Number so integers and floats stay distinguishable
// (as they are to Python, whose rules the converter follows).
type Config struct {
	Path   string
	Values map[string]any
}

// ParseConfig parses the bytes of a config.json; path is used in errors.
func ParseConfig(data []byte, path string) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w: not a JSON object: %v", path, ErrConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: %w: trailing data after the JSON object", path, ErrConfig)
	}
	if v == nil {
		return nil, fmt.Errorf("%s: %w: not a JSON object", path, ErrConfig)
	}
	return &Config{Path: path, Values: v}, nil
}

func (c *Config) errf(key, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s: %s", c.Path, ErrConfig, key, fmt.Sprintf(format, args...))
}

// Has reports whether key is present and not null.
func (c *Config) Has(key string) bool {
	v, ok := c.Values[key]
	return ok && v != nil
}

// Find returns the first of keys that is present and not null, like
// convert_hf_to_gguf.py's find_hparam.
func (c *Config) Find(keys ...string) (string, bool) {
	for _, k := range keys {
		if c.Has(k) {
			return k, true
		}
	}
	return "", false
}

// Int returns an integer value. ok is false when the key is absent or
// null; a present value that is not an integer is an error.
func (c *Config) Int(key string) (v int64, ok bool, err error) {
	if !c.Has(key) {
		return 0, false, nil
	}
	n, isNum := c.Values[key].(json.Number)
	if !isNum || strings.ContainsAny(string(n), ".eE") {
		return 0, true, c.errf(key, "want an integer, got %s", show(c.Values[key]))
	}
	i, perr := strconv.ParseInt(string(n), 10, 64)
	if perr != nil {
		return 0, true, c.errf(key, "integer %s out of range", n)
	}
	return i, true, nil
}

// Uint32 returns an integer that must fit a GGUF uint32.
func (c *Config) Uint32(key string) (uint32, bool, error) {
	v, ok, err := c.Int(key)
	if err != nil || !ok {
		return 0, ok, err
	}
	if v < 0 || v > math.MaxUint32 {
		return 0, true, c.errf(key, "%d is out of range for an unsigned 32-bit value", v)
	}
	return uint32(v), true, nil
}

// RequireUint32 is Uint32 for a key that must be present and positive.
func (c *Config) RequireUint32(keys ...string) (uint32, error) {
	k, ok := c.Find(keys...)
	if !ok {
		return 0, c.errf(strings.Join(keys, "/"), "missing")
	}
	v, _, err := c.Uint32(k)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, c.errf(k, "must be positive")
	}
	return v, nil
}

// Float returns a number (integer or not) as float64.
func (c *Config) Float(key string) (float64, bool, error) {
	if !c.Has(key) {
		return 0, false, nil
	}
	n, isNum := c.Values[key].(json.Number)
	if !isNum {
		return 0, true, c.errf(key, "want a number, got %s", show(c.Values[key]))
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, true, c.errf(key, "bad number %s", n)
	}
	return f, true, nil
}

// FloatOr is Float with def for an absent or null key (the default of the
// Hugging Face config class).
func (c *Config) FloatOr(key string, def float64) (float64, error) {
	v, ok, err := c.Float(key)
	if !ok {
		return def, err
	}
	return v, err
}

// Uint32Or is Uint32 with def for an absent or null key.
func (c *Config) Uint32Or(key string, def uint32) (uint32, error) {
	v, ok, err := c.Uint32(key)
	if !ok {
		return def, err
	}
	return v, err
}

// Bool returns a boolean value.
func (c *Config) Bool(key string) (bool, bool, error) {
	if !c.Has(key) {
		return false, false, nil
	}
	b, isBool := c.Values[key].(bool)
	if !isBool {
		return false, true, c.errf(key, "want true or false, got %s", show(c.Values[key]))
	}
	return b, true, nil
}

// String returns a string value.
func (c *Config) String(key string) (string, bool) {
	s, ok := c.Values[key].(string)
	return s, ok
}

// FirstString returns the first of keys that holds a non-empty string, or
// "" (configs spell the same setting under older and newer names).
func (c *Config) FirstString(keys ...string) string {
	for _, k := range keys {
		if s, _ := c.String(k); s != "" {
			return s
		}
	}
	return ""
}

// Object returns a nested object as its own Config.
func (c *Config) Object(key string) (*Config, bool, error) {
	if !c.Has(key) {
		return nil, false, nil
	}
	m, ok := c.Values[key].(map[string]any)
	if !ok {
		return nil, true, c.errf(key, "want an object, got %s", show(c.Values[key]))
	}
	return &Config{Path: c.Path + " " + key, Values: m}, true, nil
}

// Architectures is the config's "architectures" list.
func (c *Config) Architectures() ([]string, error) {
	raw, ok := c.Values["architectures"].([]any)
	if !ok || len(raw) == 0 {
		return nil, c.errf("architectures", "missing or empty (want e.g. [\"LlamaForCausalLM\"])")
	}
	var out []string
	for _, a := range raw {
		s, ok := a.(string)
		if !ok {
			return nil, c.errf("architectures", "entries must be strings, got %s", show(a))
		}
		out = append(out, s)
	}
	return out, nil
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		b = append(b[:57], "..."...)
	}
	return string(b)
}
