package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
)

func addQuantizeSplitFlags(cmd *cobra.Command, f *quantizeFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&f.keepSplit, "keep-split", false, "write the output in the same shards as the input (OUT-00001-of-0000N.gguf)")
	f.split.add(cmd, true)
}

// writeQuantized writes the planned model to OUT, to shards of OUT when a
// --split-max-* limit is given (as llama-gguf-split would cut the output),
// or to the input's own shards with --keep-split (as llama-quantize does).
func writeQuantized(ctx context.Context, stderr io.Writer, in, out string, planned *formats.Model, f *quantizeFlags) error {
	opt := gguf.WriteOptions{Threads: f.threads, Overwrite: f.force}
	splitOpt, err := f.split.options(gguf.StyleGGUFSplit)
	if err != nil {
		return err
	}
	if f.keepSplit {
		if st, err := os.Stat(in); err == nil && st.IsDir() {
			return errors.New(in + ": --keep-split needs a GGUF input (a Hugging Face directory has no shards to keep)")
		}
		if splitOpt.Enabled() {
			return errors.New("--keep-split and --split-max-* cannot be combined")
		}
		return writeKeepSplit(ctx, stderr, in, out, planned, opt)
	}
	_, err = writeModelOrShards(ctx, stderr, out, planned, opt, splitOpt, "quantizing")
	return err
}

// writeKeepSplit reproduces llama-quantize --keep-split: tensors ordered by
// input shard and offset, one output per input shard named
// llama_split_path(OUT less ".gguf", i, n) even for a single shard, the
// metadata in the first, and split.no, split.count, split.tensors.count
// appended to each when there is more than one.
func writeKeepSplit(ctx context.Context, stderr io.Writer, in, out string, planned *formats.Model, opt gguf.WriteOptions) error {
	src, err := gguf.OpenModel(in)
	if err != nil {
		return err
	}
	defer src.Close()
	type pos struct {
		shard int
		off   uint64
	}
	where := map[string]pos{}
	for _, t := range planned.Tensors {
		sh, ok := src.ShardOf(t.Name)
		ti, ok2 := src.Tensor(t.Name)
		if !ok || !ok2 {
			return errors.New(in + ": --keep-split: tensor " + t.Name + " is not in the input file")
		}
		where[t.Name] = pos{sh, ti.Offset}
	}
	ordered := slices.Clone(planned.Tensors)
	slices.SortStableFunc(ordered, func(a, b *formats.Tensor) int {
		pa, pb := where[a.Name], where[b.Name]
		return cmp.Or(cmp.Compare(pa.shard, pb.shard), cmp.Compare(pa.off, pb.off))
	})
	n := 0
	for _, t := range ordered {
		n = max(n, where[t.Name].shard+1)
	}
	prefix := strings.TrimSuffix(out, ".gguf")
	groups := make([][]int, n)
	for i, t := range ordered {
		s := where[t.Name].shard
		groups[s] = append(groups[s], i)
	}
	m := &formats.Model{Arch: planned.Arch, KV: planned.KV, Tensors: ordered}
	if n == 1 {
		_, err := writeModelOrShards(ctx, stderr, gguf.SplitPath(prefix, 0, 1), m, opt, gguf.SplitOptions{}, "quantizing")
		return err
	}
	shards := gguf.ShardModels(m, groups, gguf.StyleConverter)
	paths := make([]string, n)
	for i := range paths {
		paths[i] = gguf.SplitPath(prefix, i, n)
	}
	return writeShardsWithBar(ctx, stderr, paths, shards, opt, "quantizing")
}
