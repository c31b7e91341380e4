package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/llqt/llqt/formats/safetensors"
)

// inspectSafetensors reports on a .safetensors file or a Hugging Face
// checkpoint directory. The safetensors reader checks every header, dtype,
// shape and byte range (in bounds, sizes agree, no overlap, no holes) when
// it opens a file, so verification is that check; its error is the problem
// reported.
func inspectSafetensors(path string, dir bool, opt Options) (*Report, error) {
	rep := &Report{Path: path, Format: "safetensors", ShapeOrder: "torch"}
	var ck *safetensors.Checkpoint
	var err error
	if dir {
		rep.Format = "hf"
		ck, err = safetensors.OpenDir(path)
	} else {
		ck, err = safetensors.OpenFile(path)
	}
	if err != nil {
		if !opt.Verify {
			return nil, err
		}
		rep.Error = err.Error()
		rep.Verify = &Verdict{Problems: []string{err.Error()}}
		return rep, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	defer ck.Close()
	rep.opened = true
	if dir {
		rep.Metadata = append(rep.Metadata, configMeta(path, opt)...)
		for _, k := range sortedKeys(ck.IndexMetadata) {
			rep.Metadata = append(rep.Metadata, jsonMeta("index."+k, ck.IndexMetadata[k], opt))
		}
	}
	for _, f := range ck.Files {
		rep.FileSize += f.Size
		prefix := "__metadata__."
		if len(ck.Files) > 1 {
			prefix = filepath.Base(f.Path) + ":" + prefix
		}
		for _, k := range sortedKeys(f.Metadata) {
			rep.Metadata = append(rep.Metadata, Meta{Key: prefix + k, Type: "string", Value: f.Metadata[k]})
		}
	}
	for _, t := range ck.Tensors {
		row := Tensor{Name: t.Name, Type: string(t.DType), Shape: append([]uint64{}, t.Shape...),
			Offset: t.Begin, Bytes: t.Size()}
		if dir {
			row.File = filepath.Base(t.File.Path)
		}
		if opt.Hash {
			b, err := t.File.Data(&t.TensorInfo)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(b)
			row.SHA256 = hex.EncodeToString(sum[:])
		}
		rep.Tensors = append(rep.Tensors, row)
		rep.Summary.Parameters += t.Elements()
		rep.Summary.TensorBytes += t.Size()
	}
	rep.Summary.Tensors = len(rep.Tensors)
	rep.Summary.FileSize = rep.FileSize
	if rep.Summary.Parameters > 0 {
		rep.Summary.BPW = float64(rep.Summary.TensorBytes) * 8 / float64(rep.Summary.Parameters)
	}
	if opt.Verify {
		rep.Verify = &Verdict{OK: true, Problems: []string{}}
	}
	return rep, nil
}

// configMeta lists config.json's top-level entries; a missing or broken
// config is shown as such rather than failing the inspection.
func configMeta(dir string, opt Options) []Meta {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return []Meta{{Key: "config.json", Type: "missing", Value: err.Error()}}
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return []Meta{{Key: "config.json", Type: "invalid", Value: err.Error()}}
	}
	var out []Meta
	for _, k := range sortedKeys(cfg) {
		out = append(out, jsonMeta("config."+k, cfg[k], opt))
	}
	return out
}

func jsonMeta(key string, v any, opt Options) Meta {
	preview := opt.ArrayPreview
	if preview <= 0 {
		preview = 5
	}
	switch x := v.(type) {
	case []any:
		return Meta{Key: key, Type: "array", ElemType: "json", Len: len(x), First: x[:min(preview, len(x))]}
	case map[string]any:
		return Meta{Key: key, Type: "object", Value: fmt.Sprintf("{%d keys}", len(x))}
	case string:
		return Meta{Key: key, Type: "string", Value: x}
	case float64:
		return Meta{Key: key, Type: "number", Value: x}
	case bool:
		return Meta{Key: key, Type: "bool", Value: x}
	case nil:
		return Meta{Key: key, Type: "null"}
	}
	return Meta{Key: key, Type: fmt.Sprintf("%T", v), Value: fmt.Sprint(v)}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
