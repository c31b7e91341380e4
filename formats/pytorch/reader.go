package pytorch

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llqt/llqt/formats/safetensors"
	"github.com/llqt/llqt/internal/mmap"
)

// maxPickleSize bounds data.pkl, which describes tensors and holds no
// weights; real ones are a few hundred kilobytes.
const maxPickleSize = 256 << 20

// Parse reads the tensor table of a torch.save zip checkpoint from r (size
// bytes): the pickle is evaluated by the restricted reader, and each
// tensor becomes a byte range inside its storage's zip entry, which must be
// stored uncompressed (torch.save writes them so) and must hold the whole
// tensor contiguously. name is used in errors.
func Parse(r io.ReaderAt, size int64, name string) ([]safetensors.TensorInfo, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a zip archive (legacy pre-1.6 torch.save files are not supported): %v", name, ErrFormat, err)
	}
	var pkl *zip.File
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		entries[f.Name] = f
		dir, base := pathSplit(f.Name)
		if base == "data.pkl" && strings.Count(dir, "/") <= 1 {
			if pkl != nil {
				return nil, fmt.Errorf("%s: %w: two data.pkl entries (%s, %s)", name, ErrFormat, pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%s: %w: no data.pkl entry", name, ErrFormat)
	}
	prefix, _ := pathSplit(pkl.Name)
	if bo, ok := entries[prefix+"byteorder"]; ok {
		b, err := readEntry(bo, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if string(b) != "little" {
			return nil, fmt.Errorf("%s: %w: byte order %q (only little-endian is supported)", name, ErrFormat, b)
		}
	}
	data, err := readEntry(pkl, maxPickleSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root, err := unpickle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, pkl.Name, err)
	}
	dict, ok := root.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("%s: %w: the pickle holds %s, not a state dict", name, ErrFormat, describe(root))
	}
	var out []safetensors.TensorInfo
	for _, k := range dict.keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%s: %w: state dict key %v is not a string", name, ErrFormat, k)
		}
		t, ok := dict.values[k].(*pyTensor)
		if !ok {
			return nil, fmt.Errorf("%s: %w: state dict entry %s is %s, not a tensor", name, ErrFormat, key, describe(dict.values[k]))
		}
		ti, err := tensorRange(t, entries, prefix)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", name, key, err)
		}
		ti.Name = key
		out = append(out, ti)
	}
	return out, nil
}

func pathSplit(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	return p[:i+1], p[i+1:]
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: entry %s is %d bytes (limit %d)", ErrFormat, f.Name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: entry %s: %v", ErrFormat, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %s: %v", ErrFormat, f.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: entry %s is over %d bytes", ErrFormat, f.Name, limit)
	}
	return b, nil
}

// tensorRange locates a tensor's bytes: its storage's entry must be stored
// (not deflated), and the view must be contiguous in row-major order.
func tensorRange(t *pyTensor, entries map[string]*zip.File, prefix string) (safetensors.TensorInfo, error) {
	dt := safetensors.DType(t.storage.dtype)
	elem := int64(dt.Size())
	shape := make([]uint64, len(t.size))
	want := int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			return safetensors.TensorInfo{}, fmt.Errorf("%w: strides %v for size %v are not contiguous row-major", ErrFormat, t.stride, t.size)
		}
		shape[i] = uint64(t.size[i])
		if t.size[i] != 0 && want > (1<<62)/t.size[i] {
			return safetensors.TensorInfo{}, fmt.Errorf("%w: size %v overflows", ErrFormat, t.size)
		}
		want *= t.size[i]
	}
	e, ok := entries[prefix+"data/"+t.storage.key]
	if !ok {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: storage %s has no entry %sdata/%s", ErrFormat, t.storage.key, prefix, t.storage.key)
	}
	if e.Method != zip.Store {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: storage entry %s is compressed (method %d); only stored entries can be read in place", ErrFormat, e.Name, e.Method)
	}
	if e.CompressedSize64 != e.UncompressedSize64 {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: storage entry %s sizes disagree", ErrFormat, e.Name)
	}
	if t.storage.numel > (1<<62)/max(elem, 1) || uint64(t.storage.numel*elem) != e.UncompressedSize64 {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: storage %s has %d elements of %d bytes but its entry holds %d bytes", ErrFormat, t.storage.key, t.storage.numel, elem, e.UncompressedSize64)
	}
	if t.offset > t.storage.numel || want > t.storage.numel-t.offset {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: view of %d elements at offset %d overruns storage %s of %d", ErrFormat, want, t.offset, t.storage.key, t.storage.numel)
	}
	base, err := e.DataOffset()
	if err != nil {
		return safetensors.TensorInfo{}, fmt.Errorf("%w: storage entry %s: %v", ErrFormat, e.Name, err)
	}
	begin := uint64(base) + uint64(t.offset*elem)
	return safetensors.TensorInfo{DType: dt, Shape: shape, Begin: begin, End: begin + uint64(want*elem)}, nil
}

// Open maps a .bin checkpoint and describes its tensors as a
// safetensors.File whose tensors read in place from the mapping.
func Open(path string) (*safetensors.File, error) {
	return mmap.OpenWith(path, func(mf *mmap.File) (*safetensors.File, error) {
		infos, err := Parse(mf.ReaderAt, mf.Size, path)
		if err != nil {
			return nil, err
		}
		return safetensors.NewFile(path, mf.ReaderAt, mf.Size, infos, mf.Data, mf.Close)
	})
}

// IndexName is the index of a sharded .bin checkpoint.
const IndexName = "pytorch_model.bin.index.json"

// HasCheckpoint reports whether dir holds pytorch_model*.bin files.
func HasCheckpoint(dir string) bool {
	parts, _ := partNames(dir)
	return len(parts) > 0
}

// partNames lists pytorch_model*.bin in name order, as
// convert_hf_to_gguf.py does.
func partNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "pytorch_model") && strings.HasSuffix(n, ".bin") && !e.IsDir() {
			parts = append(parts, n)
		}
	}
	sort.Strings(parts)
	return parts, nil
}

// OpenDir opens pytorch_model.bin or the shards pytorch_model-*.bin in dir
// as one checkpoint. With an index, every listed shard must exist and each
// tensor must be in the shard the index names.
func OpenDir(dir string) (*safetensors.Checkpoint, error) {
	parts, err := partNames(dir)
	if err != nil {
		return nil, err
	}
	var weightMap map[string]string
	indexPath := filepath.Join(dir, IndexName)
	if raw, err := os.ReadFile(indexPath); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w: invalid JSON: %v", indexPath, ErrFormat, err)
		}
		weightMap = idx.WeightMap
		for tensor, file := range weightMap {
			if _, err := os.Stat(filepath.Join(dir, file)); err != nil || filepath.Base(file) != file {
				return nil, fmt.Errorf("%s: tensor %s maps to shard %q, which is missing", indexPath, tensor, file)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: no pytorch_model*.bin files", dir)
	}
	var files []*safetensors.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, p := range parts {
		f, err := Open(filepath.Join(dir, p))
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
		for _, t := range f.Tensors {
			if weightMap == nil {
				continue
			}
			if want, ok := weightMap[t.Name]; !ok || want != p {
				closeAll()
				return nil, fmt.Errorf("%s: tensor %s is here but %s puts it in %q", f.Path, t.Name, IndexName, want)
			}
		}
	}
	c, err := safetensors.NewCheckpoint(dir, files)
	if err != nil {
		closeAll()
		return nil, err
	}
	for name, file := range weightMap {
		if _, ok := c.Tensor(name); !ok {
			c.Close()
			return nil, fmt.Errorf("%s: tensor %s listed in %s is missing from %s", dir, name, IndexName, file)
		}
	}
	return c, nil
}
