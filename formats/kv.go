package formats

import (
	"fmt"
)

// ValueType is a GGUF metadata value type.
type ValueType uint32

// GGUF metadata value types, with their ids in the file format.
const (
	ValUint8   ValueType = 0
	ValInt8    ValueType = 1
	ValUint16  ValueType = 2
	ValInt16   ValueType = 3
	ValUint32  ValueType = 4
	ValInt32   ValueType = 5
	ValFloat32 ValueType = 6
	ValBool    ValueType = 7
	ValString  ValueType = 8
	ValArray   ValueType = 9
	ValUint64  ValueType = 10
	ValInt64   ValueType = 11
	ValFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(v))
}

// Array is a GGUF array value. Values holds a typed Go slice: []uint8,
// []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
// []uint64, []int64, []float64, or []Array for nested arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements in the array.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// KV is one metadata key and its value. Value is one of uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64 or Array.
type KV struct {
	Key   string
	Value any
}

// TypeOf returns the GGUF value type of a Go value held in a KV.
func TypeOf(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return ValUint8, nil
	case int8:
		return ValInt8, nil
	case uint16:
		return ValUint16, nil
	case int16:
		return ValInt16, nil
	case uint32:
		return ValUint32, nil
	case int32:
		return ValInt32, nil
	case float32:
		return ValFloat32, nil
	case bool:
		return ValBool, nil
	case string:
		return ValString, nil
	case Array:
		return ValArray, nil
	case uint64:
		return ValUint64, nil
	case int64:
		return ValInt64, nil
	case float64:
		return ValFloat64, nil
	}
	return 0, fmt.Errorf("value of Go type %T has no GGUF type", v)
}

// KVs is an ordered list of metadata.
type KVs []KV

// Get returns the value of key.
func (kvs KVs) Get(key string) (any, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of key in place, or appends it.
func (kvs *KVs) Set(key string, v any) {
	for i := range *kvs {
		if (*kvs)[i].Key == key {
			(*kvs)[i].Value = v
			return
		}
	}
	*kvs = append(*kvs, KV{key, v})
}

// Delete removes key if present.
func (kvs *KVs) Delete(key string) {
	for i := range *kvs {
		if (*kvs)[i].Key == key {
			*kvs = append((*kvs)[:i], (*kvs)[i+1:]...)
			return
		}
	}
}

// String returns key's value if it is a string.
func (kvs KVs) String(key string) (string, bool) {
	v, ok := kvs.Get(key)
	s, isStr := v.(string)
	return s, ok && isStr
}

// Uint returns key's value if it is any unsigned or non-negative signed
// integer type.
func (kvs KVs) Uint(key string) (uint64, bool) {
	v, ok := kvs.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns key's value if it is a float32 or float64.
func (kvs KVs) Float(key string) (float64, bool) {
	v, ok := kvs.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), ok
	case float64:
		return x, ok
	}
	return 0, false
}

// Bool returns key's value if it is a bool.
func (kvs KVs) Bool(key string) (bool, bool) {
	v, ok := kvs.Get(key)
	b, isBool := v.(bool)
	return b, ok && isBool
}

// LayerInts reads a per-layer hyperparameter, stored either as one integer
// for every layer or as an array with one integer per layer (llama.cpp's
// get_key_or_arr). It returns nLayer values, or false when key is absent.
// A value that is not an integer in [0, 2^31], or an array of another
// length, is an error.
func (kvs KVs) LayerInts(key string, nLayer int) ([]int, bool, error) {
	v, ok := kvs.Get(key)
	if !ok {
		return nil, false, nil
	}
	out := make([]int, nLayer)
	if a, isArr := v.(Array); isArr {
		if a.Len() != nLayer {
			return nil, true, fmt.Errorf("metadata %s has %d entries for %d layers", key, a.Len(), nLayer)
		}
		for i := range out {
			x, ok := arrayInt(a, i)
			if !ok {
				return nil, true, fmt.Errorf("metadata %s: entry %d is not a non-negative integer", key, i)
			}
			out[i] = x
		}
		return out, true, nil
	}
	x, ok := kvs.Uint(key)
	if !ok || x > 1<<31 {
		return nil, true, fmt.Errorf("metadata %s = %v is not a non-negative integer", key, v)
	}
	for i := range out {
		out[i] = int(x)
	}
	return out, true, nil
}

// arrayInt returns entry i of an integer array, and whether it is in
// [0, 2^31].
func arrayInt(a Array, i int) (int, bool) {
	var x int64
	switch vs := a.Values.(type) {
	case []uint32:
		x = int64(vs[i])
	case []int32:
		x = int64(vs[i])
	case []uint64:
		x = int64(min(vs[i], 1<<31))
	case []int64:
		x = vs[i]
	case []uint16:
		x = int64(vs[i])
	case []int16:
		x = int64(vs[i])
	case []uint8:
		x = int64(vs[i])
	case []int8:
		x = int64(vs[i])
	default:
		return 0, false
	}
	return int(x), x >= 0 && x <= 1<<31
}
