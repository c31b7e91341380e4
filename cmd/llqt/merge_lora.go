package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/cli"
	"github.com/llqt/llqt/quant"
)

func newMergeLoraCmd() *cobra.Command {
	var l loraFlags
	var force bool
	var threads int
	cmd := &cobra.Command{
		Use:   "merge-lora BASE.gguf --lora FILE [--lora-scaled FILE SCALE] OUT.gguf",
		Short: "Merge LoRA adapters into a model as llama-export-lora does",
		Long: `Write BASE with the LoRA adapters merged in, as llama.cpp b4748's
llama-export-lora: tensors in name order, each adapted matrix W replaced by
W + Σ scale·alpha/r·B·A (float32 arithmetic as ggml's), stored as F32 when W is
F32 and as F16 otherwise (quantized bases are dequantized), other tensors copied;
the metadata is BASE's with general.file_type set to 1 (F16) at the end. The
output is written atomically.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := l.takeScales(args)
			if err != nil {
				return err
			}
			if len(args) != 2 {
				return fmt.Errorf("want BASE.gguf and OUT.gguf, got %d arguments", len(args))
			}
			if len(l.list) == 0 {
				return errors.New("no adapter: give --lora FILE or --lora-scaled FILE SCALE")
			}
			return cli.RunCancellable(cmd.Context(), func(ctx context.Context) error {
				return runMergeLora(ctx, cmd, args[0], args[1], l.list, force, threads)
			})
		},
	}
	l.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "overwrite OUT if it exists")
	addThreadsFlag(cmd, &threads)
	return cmd
}

func runMergeLora(ctx context.Context, cmd *cobra.Command, basePath, out string, loras []loraArg, force bool, threads int) error {
	base, err := gguf.OpenModel(basePath)
	if err != nil {
		return err
	}
	defer base.Close()
	if err := checkDistinct(basePath, out); err != nil {
		return err
	}
	m, n, closeAll, err := mergedLoraModel(base, loras)
	if closeAll != nil {
		defer closeAll()
	}
	if err != nil {
		return err
	}
	l, err := gguf.Plan(m)
	if err != nil {
		return err
	}
	bar := cli.NewProgress(cmd.ErrOrStderr(), int64(l.DataSize), "merging")
	err = gguf.WriteFile(ctx, out, m, gguf.WriteOptions{Codec: quant.Codec{}, Threads: threads, Overwrite: force,
		Progress: func(d, _ int64) { bar.Set(d) }})
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "merged %d tensors with %d LoRA adapter(s); wrote %d tensors to %s\n", n, len(loras), len(m.Tensors), out)
	return nil
}

// mergedLoraModel builds llama-export-lora's output model from an open
// base and the adapters; closeAll releases the adapters.
func mergedLoraModel(base *gguf.File, loras []loraArg) (*formats.Model, int, func(), error) {
	var adapters []*gguf.Adapter
	closeAll := func() {
		for _, a := range adapters {
			a.Close()
		}
	}
	arch, _ := base.KV.String("general.architecture")
	for _, la := range loras {
		a, err := gguf.OpenAdapter(la.path)
		if err != nil {
			return nil, 0, closeAll, err
		}
		adapters = append(adapters, a)
		if la, _ := a.File.KV.String("general.architecture"); la != arch {
			return nil, 0, closeAll, fmt.Errorf("%s: adapter architecture %q does not match the model's %q", a.File.Path, la, arch)
		}
	}
	for _, a := range adapters[1:] {
		same := len(a.Pairs) == len(adapters[0].Pairs)
		for name := range a.Pairs {
			_, ok := adapters[0].Pairs[name]
			same = same && ok
		}
		if !same {
			return nil, 0, closeAll, errors.New("the adapters do not adapt the same tensors; merge them one by one (as llama-export-lora requires)")
		}
	}
	in := base.Model()
	m := &formats.Model{Arch: in.Arch, KV: append(formats.KVs(nil), in.KV...)}
	m.KV.Delete("general.file_type")
	m.KV = append(m.KV, formats.KV{Key: "general.file_type", Value: uint32(1)})
	tensors := append([]*formats.Tensor(nil), in.Tensors...)
	// llama-export-lora keeps the base tensors in a std::map: byte order.
	sort.Slice(tensors, func(i, j int) bool { return tensors[i].Name < tensors[j].Name })
	merged := 0
	for _, t := range tensors {
		if _, ok := adapters[0].Pairs[t.Name]; !ok {
			m.Tensors = append(m.Tensors, t)
			continue
		}
		if strings.HasPrefix(t.Name, "token_embd") {
			return nil, 0, closeAll, fmt.Errorf("tensor %s: LoRA on the token embeddings is not supported", t.Name)
		}
		nt := &formats.Tensor{Name: t.Name, Shape: t.Shape, Type: ggml.TypeF16, Source: t.Source}
		if t.Type == ggml.TypeF32 {
			nt.Type = ggml.TypeF32
		}
		for i, a := range adapters {
			p := a.Pairs[t.Name]
			if len(t.Shape) != 2 || p.A.Shape[0] != t.Shape[0] || p.B.Shape[1] != t.Shape[1] {
				return nil, 0, closeAll, fmt.Errorf("%s: tensor %s %v does not match lora_a %v / lora_b %v", a.File.Path, t.Name, t.Shape, p.A.Shape, p.B.Shape)
			}
			A, B, err := a.Factors(p)
			if err != nil {
				return nil, 0, closeAll, err
			}
			nt.Transforms = append(nt.Transforms, &gguf.LoraDelta{A: A, B: B, Rank: p.Rank(), Scale: a.Scale(loras[i].scale, p)})
		}
		m.Tensors = append(m.Tensors, nt)
		merged++
	}
	return m, merged, closeAll, nil
}
