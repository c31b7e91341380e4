package e2e

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
)

// TestEngineRefusesLyingModels feeds the engine's loader structurally valid
// GGUF files whose hyperparameters or tensors lie: each must be refused with
// an error, never a crash or an allocation sized by the lie.
func TestEngineRefusesLyingModels(t *testing.T) {
	requireBuilt(t)
	setKV := func(key string, v any) func(*formats.Model) {
		return func(m *formats.Model) { m.KV.Set(key, v) }
	}
	tensor := func(m *formats.Model, name string) *formats.Tensor {
		for _, tn := range m.Tensors {
			if tn.Name == name {
				return tn
			}
		}
		t.Fatalf("no tensor %s", name)
		return nil
	}
	cases := []struct {
		name   string
		mutate func(*formats.Model)
	}{
		{"block_count 2^32-1", setKV("llama.block_count", uint32(math.MaxUint32))},
		{"block_count one more than the file has", setKV("llama.block_count", uint32(3))},
		{"block_count as a string", setKV("llama.block_count", "2")},
		{"embedding_length 2^31", setKV("llama.embedding_length", uint32(1<<31))},
		{"feed_forward_length 2^32-1", setKV("llama.feed_forward_length", uint32(math.MaxUint32))},
		{"head_count 0", setKV("llama.attention.head_count", uint32(0))},
		{"head_count_kv 3", setKV("llama.attention.head_count_kv", uint32(3))},
		{"head_count 2^31", setKV("llama.attention.head_count", uint32(1<<31))},
		{"vocab_size off by one", setKV("llama.vocab_size", uint32(301))},
		{"rope dimension odd", setKV("llama.rope.dimension_count", uint32(7))},
		{"architecture gpt2", setKV("general.architecture", "gpt2")},
		{"missing attention tensor", func(m *formats.Model) {
			for i, tn := range m.Tensors {
				if tn.Name == "blk.1.attn_k.weight" {
					m.Tensors = append(m.Tensors[:i], m.Tensors[i+1:]...)
					return
				}
			}
		}},
		{"transposed ffn_down", func(m *formats.Model) {
			tn := tensor(m, "blk.0.ffn_down.weight")
			tn.Shape = []uint64{tn.Shape[1], tn.Shape[0]}
		}},
		{"3-D attn_q", func(m *formats.Model) {
			tn := tensor(m, "blk.0.attn_q.weight")
			tn.Shape = []uint64{tn.Shape[0], tn.Shape[1] / 2, 2}
		}},
		{"norm of the wrong length", func(m *formats.Model) {
			tn := tensor(m, "output_norm.weight")
			tn.Shape = []uint64{32}
			tn.Source = synthSource{n: 32}
		}},
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	must(t, gguf.WriteFile(context.Background(), good, synthLlamaSized(300, 64, 128, 2), gguf.WriteOptions{Threads: 1}))
	if r := run(t, loaderBin, good); r.code != 0 {
		t.Fatalf("the engine refuses the unmodified model: %v", r)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := synthLlamaSized(300, 64, 128, 2)
			m.KV.Set("llama.vocab_size", uint32(300))
			tc.mutate(m)
			path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(tc.name)+".gguf")
			must(t, gguf.WriteFile(context.Background(), path, m, gguf.WriteOptions{Threads: 1}))
			snap := snapshot(t, path)
			r := run(t, loaderBin, path)
			checkFailed(t, r)
			checkUnchanged(t, snap, "the engine")
		})
	}
}
