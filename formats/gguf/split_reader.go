package gguf

import (
	"errors"
	"fmt"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/mmap"
)

// OpenModel opens a model file as llama.cpp's loader does: a plain GGUF is
// opened as by Open; the first shard of a split model (split.count > 1)
// brings in the other shards, named PREFIX-0000i-of-0000N.gguf beside it,
// and the returned File lists every shard's tensors, first shard first. KV
// and the header fields (Version, DataOffset, Size, …) are the first
// shard's. Data and Model read each tensor from its own shard.
func OpenModel(path string) (*File, error) {
	return mmap.OpenThen(path, Open, func(f *File) (*File, error) { return f, f.joinShards(path) })
}

// SplitInfo returns the shard number and count a file records, or (0, 1)
// for a file that is not part of a split model.
func (f *File) SplitInfo() (no, count int) {
	n, ok := f.KV.Uint(KeySplitCount)
	if !ok || n == 0 {
		return 0, 1
	}
	i, _ := f.KV.Uint(KeySplitNo)
	return int(i), int(n)
}

// Shards is the number of files the model was read from.
func (f *File) Shards() int { return 1 + len(f.shards) }

// ShardOf returns the 0-based shard holding the named tensor (0 for a
// single file) and whether the tensor exists.
func (f *File) ShardOf(name string) (int, bool) {
	if _, ok := f.Tensor(name); !ok {
		return 0, false
	}
	sf, ok := f.shardOf[name]
	if !ok {
		return 0, true
	}
	for i, s := range f.shards {
		if s == sf {
			return i + 1, true
		}
	}
	return 0, true
}

func (f *File) owner(t *TensorInfo) *File {
	if f.shardOf == nil {
		return f
	}
	if sf, ok := f.shardOf[t.Name]; ok {
		return sf
	}
	return f
}

func (f *File) closeShards() error {
	var errs []error
	for _, s := range f.shards {
		errs = append(errs, s.Close())
	}
	f.shards, f.shardOf = nil, nil
	return errors.Join(errs...)
}

func (f *File) joinShards(path string) error {
	// llama.cpp reads split.count as a u16 and only follows it when > 1.
	raw, has := f.KV.Get(KeySplitCount)
	if !has {
		return nil
	}
	n16, ok := raw.(uint16)
	if !ok {
		return fmt.Errorf("%s: %s has type %T, want uint16", path, KeySplitCount, raw)
	}
	n := int(n16)
	if n <= 1 {
		return nil
	}
	no, ok := f.KV.Get(KeySplitNo)
	if idx, isU16 := no.(uint16); !ok || !isU16 || idx != 0 {
		return fmt.Errorf("%s: shard %v of a %d-shard model: open the first shard (%s)", path, no, n, KeySplitNo)
	}
	prefix, ok := SplitPrefix(path, 0, n)
	if !ok {
		return fmt.Errorf("%s: the first of %d shards must be named PREFIX-00001-of-%05d.gguf", path, n, n)
	}
	f.shardOf = map[string]*File{}
	seen := make(map[string]bool, len(f.Tensors))
	for _, t := range f.Tensors {
		seen[t.Name] = true
	}
	all := append([]TensorInfo(nil), f.Tensors...)
	for i := 1; i < n; i++ {
		sp := SplitPath(prefix, i, n)
		s, err := Open(sp)
		if err != nil {
			return fmt.Errorf("shard %d of %s: %w", i+1, path, err)
		}
		f.shards = append(f.shards, s)
		if got, ok := s.KV.Get(KeySplitNo); !ok || got != uint16(i) {
			return fmt.Errorf("%s: %s is %v, want %d", sp, KeySplitNo, got, i)
		}
		for _, t := range s.Tensors {
			if seen[t.Name] {
				return fmt.Errorf("%s: tensor %s is also in an earlier shard", sp, t.Name)
			}
			seen[t.Name] = true
			f.shardOf[t.Name] = s
			all = append(all, t)
		}
	}
	if want, ok := f.KV.Uint(KeySplitTensorsCount); !ok || want != uint64(len(all)) {
		return fmt.Errorf("%s: %s says %v tensors, the %d shards hold %d", path, KeySplitTensorsCount, want, n, len(all))
	}
	f.Tensors = all
	return nil
}

// MergedModel opens the first shard of a split model and returns the model
// llama-gguf-split --merge writes: the first shard's metadata with
// split.count set to 0 (so the result is not taken for a shard again; the
// key moves to the end, as gguf_set_val does) and every shard's tensors in
// shard order. Close the File after writing.
func MergedModel(path string) (*formats.Model, *File, error) {
	f, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := f.KV.Get(KeySplitCount)
	n, isU16 := raw.(uint16)
	switch {
	case !ok:
		f.Close()
		return nil, nil, fmt.Errorf("%s: no %s key: not a shard of a split model", path, KeySplitCount)
	case !isU16 || n < 1:
		f.Close()
		return nil, nil, fmt.Errorf("%s: %s is %v, not a valid shard count", path, KeySplitCount, raw)
	}
	if _, ok := SplitPrefix(path, 0, int(n)); !ok {
		f.Close()
		return nil, nil, fmt.Errorf("%s: the first of %d shards must be named PREFIX-00001-of-%05d.gguf", path, n, n)
	}
	if err := f.joinShards(path); err != nil {
		f.Close()
		return nil, nil, err
	}
	m := f.Model()
	m.KV.Delete(KeySplitCount)
	m.KV = append(m.KV, formats.KV{Key: KeySplitCount, Value: uint16(0)})
	return m, f, nil
}
