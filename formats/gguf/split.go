package gguf

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/internal/atomicfile"
)

// Metadata keys of a split (sharded) model, as llama.cpp names them.
const (
	KeySplitNo           = "split.no"
	KeySplitCount        = "split.count"
	KeySplitTensorsCount = "split.tensors.count"
)

// SplitPath is the file name of shard no (0-based) of count, as
// llama_split_path makes it: PREFIX-00001-of-00003.gguf.
func SplitPath(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no+1, count)
}

// SplitPrefix is the inverse of SplitPath: it returns PREFIX when path ends
// with the suffix shard no of count must have (llama_split_prefix).
func SplitPrefix(path string, no, count int) (string, bool) {
	suffix := fmt.Sprintf("-%05d-of-%05d.gguf", no+1, count)
	if len(path) <= len(suffix) || !strings.HasSuffix(path, suffix) {
		return "", false
	}
	return path[:len(path)-len(suffix)], true
}

// ParseSplitSize reads a --split-max-size value. llama-gguf-split takes a
// whole number followed by M or G (decimal: 1M is 1,000,000 bytes); the
// converter (gguf-py) also takes K and a bare byte count, so both are read.
func ParseSplitSize(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty split size")
	}
	mult := uint64(1)
	num := s
	switch s[len(s)-1] {
	case 'K':
		mult, num = 1000, s[:len(s)-1]
	case 'M':
		mult, num = 1000*1000, s[:len(s)-1]
	case 'G':
		mult, num = 1000*1000*1000, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("split size %q: want a positive whole number followed by K, M or G (decimal units)", s)
	}
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("split size %q is too large", s)
	}
	return n * mult, nil
}

// SplitStyle names the two shard layouts llama.cpp produces. They differ in
// how a size limit counts bytes and in the order of the split.* keys.
type SplitStyle int

const (
	// StyleGGUFSplit is llama-gguf-split (and llama-quantize --keep-split):
	// the size limit counts tensor data padded to the alignment, and each
	// shard's split keys come as split.no, split.tensors.count, split.count.
	StyleGGUFSplit SplitStyle = iota
	// StyleConverter is gguf-py's writer (convert_hf_to_gguf.py and
	// convert_lora_to_gguf.py --split-max-*): the limit counts unpadded
	// bytes and the keys come as split.no, split.count, split.tensors.count.
	StyleConverter
)

// SplitOptions say where a model is cut into shards. Zero values disable a
// limit; with both zero the model is one shard.
type SplitOptions struct {
	MaxTensors int
	MaxBytes   uint64
	// NoTensorFirstSplit leaves the first shard with metadata only
	// (--no-tensor-first-split).
	NoTensorFirstSplit bool
	Style              SplitStyle
}

// Enabled reports whether any limit is set.
func (o SplitOptions) Enabled() bool { return o.MaxTensors > 0 || o.MaxBytes > 0 }

// PlanShards groups m's tensors, in order, into shards the way llama.cpp's
// tools do. Each group is a list of indexes into m.Tensors.
func PlanShards(m *formats.Model, opt SplitOptions) ([][]int, error) {
	layout, err := Plan(m)
	if err != nil {
		return nil, err
	}
	if opt.MaxTensors < 0 {
		return nil, fmt.Errorf("--split-max-tensors %d must be positive", opt.MaxTensors)
	}
	groups := [][]int{{}}
	if opt.NoTensorFirstSplit {
		groups = append(groups, []int{})
	}
	var cur uint64 // bytes of the last group, as the style counts them
	for i := range m.Tensors {
		n := layout.Sizes[i]
		if opt.Style == StyleGGUFSplit {
			n = alignUp(n, DefaultAlignment)
		}
		last := len(groups) - 1
		var cut bool
		switch opt.Style {
		case StyleGGUFSplit:
			// gguf-split cuts by tensor index when counting tensors and
			// by the running size otherwise, even before an empty shard's
			// first tensor (it then refuses the empty shard below).
			if opt.MaxTensors > 0 && opt.MaxBytes == 0 {
				cut = i > 0 && i%opt.MaxTensors == 0
			} else if opt.MaxBytes > 0 {
				cut = cur+n > opt.MaxBytes
			}
		case StyleConverter:
			if len(groups[last]) > 0 {
				cut = (opt.MaxTensors > 0 && len(groups[last]) >= opt.MaxTensors) ||
					(opt.MaxBytes > 0 && cur+n > opt.MaxBytes)
			}
		}
		if cut {
			if len(groups[last]) == 0 {
				return nil, fmt.Errorf("tensor %s (%d bytes) does not fit in a shard of at most %d bytes: the split size is too small",
					m.Tensors[i].Name, n, opt.MaxBytes)
			}
			groups = append(groups, []int{})
			cur = 0
		}
		last = len(groups) - 1
		groups[last] = append(groups[last], i)
		cur += n
	}
	return groups, nil
}

// ShardModels returns one model per group: the first shard carries m's
// metadata, the others only the split keys; every shard records its number,
// the shard count and the total tensor count. m's own split keys, if any,
// are replaced.
func ShardModels(m *formats.Model, groups [][]int, style SplitStyle) []*formats.Model {
	out := make([]*formats.Model, len(groups))
	n := len(groups)
	for s, g := range groups {
		sm := &formats.Model{Arch: m.Arch}
		if s == 0 {
			sm.KV = append(formats.KVs(nil), m.KV...)
		}
		// gguf_set_val_* removes the key and appends it, which fixes the
		// order of the three keys in each tool.
		set := func(k string, v any) {
			sm.KV.Delete(k)
			sm.KV = append(sm.KV, formats.KV{Key: k, Value: v})
		}
		set(KeySplitNo, uint16(s))
		switch style {
		case StyleGGUFSplit:
			set(KeySplitCount, uint16(0))
			set(KeySplitTensorsCount, int32(len(m.Tensors)))
			set(KeySplitCount, uint16(n))
		case StyleConverter:
			set(KeySplitCount, uint16(n))
			set(KeySplitTensorsCount, int32(len(m.Tensors)))
		}
		for _, i := range g {
			sm.Tensors = append(sm.Tensors, m.Tensors[i])
		}
		out[s] = sm
	}
	return out
}

// WriteShards writes each shard model to its path. Every shard goes to a
// temporary file first, and all are renamed into place only when all were
// written, so an interrupted or failed run leaves no partial shard set.
// opt.Progress sees the bytes of all shards together.
func WriteShards(ctx context.Context, paths []string, shards []*formats.Model, opt WriteOptions) error {
	if len(paths) != len(shards) {
		return fmt.Errorf("%d shard paths for %d shards", len(paths), len(shards))
	}
	var total int64
	sizes := make([]int64, len(shards))
	for i, sm := range shards {
		l, err := Plan(sm)
		if err != nil {
			return fmt.Errorf("%s: %w", paths[i], err)
		}
		sizes[i] = int64(l.DataSize)
		total += sizes[i]
	}
	files := make([]*atomicfile.File, 0, len(shards))
	abort := func() {
		for _, f := range files {
			f.Abort()
		}
	}
	var before int64
	for i, sm := range shards {
		f, err := atomicfile.Create(paths[i], opt.Overwrite)
		if err != nil {
			abort()
			return err
		}
		files = append(files, f)
		o := opt
		if opt.Progress != nil {
			base := before
			o.Progress = func(done, _ int64) { opt.Progress(base+done, total) }
		}
		if err := Write(ctx, f, sm, o); err != nil {
			abort()
			return fmt.Errorf("%s: %w", paths[i], err)
		}
		before += sizes[i]
	}
	for i, f := range files {
		if err := f.Commit(); err != nil {
			for _, g := range files[i+1:] {
				g.Abort()
			}
			return err
		}
	}
	return nil
}

// SplitFileNames are the shard names for an output: gguf-split appends the
// suffix to the prefix it is given; the converter drops the output's
// extension first (PATH.gguf → PATH-00001-of-00002.gguf).
func SplitFileNames(out string, n int, style SplitStyle) []string {
	prefix := out
	if style == StyleConverter {
		if i := strings.LastIndexByte(out, '.'); i > strings.LastIndexByte(out, '/') {
			prefix = out[:i]
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = SplitPath(prefix, i, n)
	}
	return names
}

// HeaderSize is the bytes m's header (metadata and tensor infos) takes,
// with the padding before the data: gguf_get_meta_size.
func HeaderSize(m *formats.Model) (uint64, error) {
	n, l, err := headerBytes(m)
	if err != nil {
		return 0, err
	}
	return alignUp(n, l.Alignment), nil
}
