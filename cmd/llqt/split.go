package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
)

// splitFlags are llama-gguf-split's (and the converter's) sharding flags.
type splitFlags struct {
	maxTensors         int
	maxSize            string
	noTensorFirstSplit bool
}

func (s *splitFlags) add(cmd *cobra.Command, withTensors bool) {
	if withTensors {
		cmd.Flags().IntVar(&s.maxTensors, "split-max-tensors", 0, "max tensors in each shard")
		cmd.Flags().BoolVar(&s.noTensorFirstSplit, "no-tensor-first-split", false, "put no tensors in the first shard (metadata only)")
	}
	cmd.Flags().StringVar(&s.maxSize, "split-max-size", "", "max tensor bytes per shard, N followed by M or G (decimal: 2G = 2,000,000,000 bytes)")
}

func (s *splitFlags) options(style gguf.SplitStyle) (gguf.SplitOptions, error) {
	o := gguf.SplitOptions{MaxTensors: s.maxTensors, NoTensorFirstSplit: s.noTensorFirstSplit, Style: style}
	if s.maxTensors < 0 {
		return o, fmt.Errorf("--split-max-tensors %d: must be positive", s.maxTensors)
	}
	if s.maxSize != "" {
		n, err := gguf.ParseSplitSize(s.maxSize)
		if err != nil {
			return o, fmt.Errorf("--split-max-size: %w", err)
		}
		o.MaxBytes = n
	}
	if style == gguf.StyleGGUFSplit && o.MaxTensors > 0 && o.MaxBytes > 0 {
		return o, errors.New("give either --split-max-tensors or --split-max-size, not both (as llama-gguf-split)")
	}
	return o, nil
}

func newSplitCmd() *cobra.Command {
	var s splitFlags
	var dryRun, force bool
	var threads int
	cmd := &cobra.Command{
		Use:   "split IN.gguf OUT_PREFIX",
		Short: "Cut a GGUF model into shards as llama-gguf-split --split does",
		Long: `Cut IN into shards OUT_PREFIX-00001-of-0000N.gguf, byte-identical to llama.cpp
b4748's llama-gguf-split --split. The first shard keeps all metadata; every shard
records split.no, split.tensors.count and split.count. Tensors are copied, not
decoded. Without a limit, llama-gguf-split's default of 128 tensors per shard
applies. All shards appear together or none does.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if s.maxTensors == 0 && s.maxSize == "" {
				s.maxTensors = 128
			}
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runSplit(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1], s, dryRun, force, threads)
			})
		},
	}
	s.add(cmd, true)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the shard plan; write nothing")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing shards")
	addThreadsFlag(cmd, &threads)
	return cmd
}

func runSplit(ctx context.Context, stdout, stderr io.Writer, in, prefix string, s splitFlags, dryRun, force bool, threads int) error {
	opt, err := s.options(gguf.StyleGGUFSplit)
	if err != nil {
		return err
	}
	f, err := gguf.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	m := f.Model()
	groups, err := gguf.PlanShards(m, opt)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	shards := gguf.ShardModels(m, groups, gguf.StyleGGUFSplit)
	paths := gguf.SplitFileNames(prefix, len(shards), gguf.StyleGGUFSplit)
	printShardPlan(stdout, paths, shards)
	if dryRun {
		return nil
	}
	for _, p := range paths {
		if err := checkDistinct(in, p); err != nil {
			return err
		}
	}
	return writeShardsWithBar(ctx, stderr, paths, shards, gguf.WriteOptions{Threads: threads, Overwrite: force}, "splitting")
}

// printShardPlan prints llama-gguf-split's plan lines (its sizes are whole
// decimal megabytes, metadata included).
func printShardPlan(w io.Writer, paths []string, shards []*formats.Model) {
	fmt.Fprintf(w, "n_split: %d\n", len(shards))
	for i, sm := range shards {
		l, err := gguf.Plan(sm)
		h, herr := gguf.HeaderSize(sm)
		size := "not measured"
		if err == nil && herr == nil {
			data := h
			for _, n := range l.Sizes {
				data += n
			}
			size = fmt.Sprintf("%dM", data/1000/1000)
		}
		fmt.Fprintf(w, "split %05d: n_tensors = %d, total_size = %s  (%s)\n", i+1, len(sm.Tensors), size, paths[i])
	}
}

func writeShardsWithBar(ctx context.Context, stderr io.Writer, paths []string, shards []*formats.Model, opt gguf.WriteOptions, what string) error {
	var total int64
	for _, sm := range shards {
		if l, err := gguf.Plan(sm); err == nil {
			total += int64(l.DataSize)
		}
	}
	bar := cli.NewProgress(stderr, total, what)
	opt.Progress = func(done, _ int64) { bar.Set(done) }
	err := gguf.WriteShards(ctx, paths, shards, opt)
	bar.Finish()
	return err
}

func newMergeCmd() *cobra.Command {
	var force bool
	var threads int
	cmd := &cobra.Command{
		Use:   "merge FIRST_SHARD.gguf OUT.gguf",
		Short: "Join a split model into one GGUF as llama-gguf-split --merge does",
		Long: `Join the shards of a split model, given by its first shard
(PREFIX-00001-of-0000N.gguf), into OUT, byte-identical to llama.cpp b4748's
llama-gguf-split --merge: the first shard's metadata with split.count set to 0,
then every shard's tensors in order, copied, not decoded. The output is written
atomically.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runMerge(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], args[1], force, threads)
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite OUT if it exists")
	addThreadsFlag(cmd, &threads)
	return cmd
}

func runMerge(ctx context.Context, stdout, stderr io.Writer, first, out string, force bool, threads int) error {
	m, f, err := gguf.MergedModel(first)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := checkDistinct(first, out); err != nil {
		return err
	}
	l, err := gguf.Plan(m)
	if err != nil {
		return err
	}
	bar := cli.NewProgress(stderr, int64(l.DataSize), "merging")
	err = gguf.WriteFile(ctx, out, m, gguf.WriteOptions{Threads: threads, Overwrite: force, Progress: func(d, _ int64) { bar.Set(d) }})
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s merged from %d split with %d tensors.\n", out, f.Shards(), len(m.Tensors))
	return nil
}

// writeModelOrShards writes m to out, or, when split limits are set, to
// shards named after out; it returns the files written.
func writeModelOrShards(ctx context.Context, stderr io.Writer, out string, m *formats.Model, opt gguf.WriteOptions,
	split gguf.SplitOptions, what string) ([]string, error) {
	if split.Enabled() {
		groups, err := gguf.PlanShards(m, split)
		if err != nil {
			return nil, err
		}
		// The converter writes one plain file when everything fits in one.
		if !(split.Style == gguf.StyleConverter && len(groups) == 1) {
			shards := gguf.ShardModels(m, groups, split.Style)
			paths := gguf.SplitFileNames(out, len(shards), split.Style)
			return paths, writeShardsWithBar(ctx, stderr, paths, shards, opt, what)
		}
	}
	l, err := gguf.Plan(m)
	if err != nil {
		return nil, err
	}
	bar := cli.NewProgress(stderr, int64(l.DataSize), what)
	opt.Progress = func(d, _ int64) { bar.Set(d) }
	err = gguf.WriteFile(ctx, out, m, opt)
	bar.Finish()
	return []string{out}, err
}

// filesSize sums the sizes of written files.
func filesSize(paths []string) (int64, error) {
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}
