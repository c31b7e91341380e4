package e2e

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/gguf"
)

// lyingModel is a structurally valid model whose metadata or tensors lie.
type lyingModel struct {
	name   string
	mutate func(*formats.Model)
}

// engineTolerates lists lies the engine may accept (llama.cpp refuses them,
// but nothing is read out of bounds); they must still not crash it.
var engineTolerates = map[string]bool{"block_count 1 for 2 layers": true}

// lyingModels are small llamas (vocabulary 300, width 64, 2 layers), each
// with one lie about its hyperparameters or tensors.
func lyingModels(t *testing.T) []lyingModel {
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
	return []lyingModel{
		{"block_count 2^32-1", setKV("llama.block_count", uint32(math.MaxUint32))},
		{"block_count one more than the file has", setKV("llama.block_count", uint32(3))},
		{"block_count as a string", setKV("llama.block_count", "2")},
		{"block_count 0", setKV("llama.block_count", uint32(0))},
		{"block_count 1 for 2 layers", setKV("llama.block_count", uint32(1))},
		{"layer index past block_count", func(m *formats.Model) {
			tensor(m, "blk.1.attn_v.weight").Name = "blk.4294967296.attn_v.weight"
		}},
		{"negative layer index", func(m *formats.Model) {
			tensor(m, "blk.1.ffn_down.weight").Name = "blk.-1.ffn_down.weight"
		}},
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
}

// writeLying writes the model with lie applied into dir.
func writeLying(t *testing.T, dir string, lie lyingModel) string {
	t.Helper()
	m := synthLlamaSized(300, 64, 128, 2)
	m.KV.Set("llama.vocab_size", uint32(300))
	if lie.mutate != nil {
		lie.mutate(m)
	}
	path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(lie.name)+".gguf")
	must(t, gguf.WriteFile(context.Background(), path, m, gguf.WriteOptions{Threads: 1}))
	return path
}

// TestEngineRefusesLyingModels feeds the engine's loader structurally valid
// GGUF files whose hyperparameters or tensors lie: each must be refused with
// an error, never a crash or an allocation sized by the lie.
func TestEngineRefusesLyingModels(t *testing.T) {
	requireBuilt(t)
	dir := t.TempDir()
	if r := run(t, loaderBin, writeLying(t, dir, lyingModel{name: "good"})); r.code != 0 {
		t.Fatalf("the engine refuses the unmodified model: %v", r)
	}
	for _, lie := range lyingModels(t) {
		t.Run(lie.name, func(t *testing.T) {
			path := writeLying(t, dir, lie)
			snap := snapshot(t, path)
			if r := run(t, loaderBin, path); engineTolerates[lie.name] {
				checkSane(t, r)
			} else {
				checkFailed(t, r)
			}
			checkUnchanged(t, snap, "the engine")
		})
	}
}

// TestQuantizeLyingModels: quantize may accept a model whose metadata lies
// (llama-quantize only needs the tensors), but never crashes on one, and a
// refusal leaves nothing behind.
func TestQuantizeLyingModels(t *testing.T) {
	requireCommand(t, "quantize")
	dir, outDir := t.TempDir(), t.TempDir()
	for _, lie := range lyingModels(t) {
		t.Run(lie.name, func(t *testing.T) {
			path := writeLying(t, dir, lie)
			snap := snapshot(t, path)
			for _, typ := range []string{"Q4_K_M", "Q2_K"} {
				out := filepath.Join(outDir, "out.gguf")
				r := run(t, llqtBin, "quantize", path, out, typ)
				checkSane(t, r)
				if r.code != 0 && (exists(out) || !strings.Contains(r.stderr, "llqt:")) {
					t.Errorf("unclear refusal or output left behind: %v", r)
				}
				if left := tempFiles(t, out); len(left) > 0 {
					t.Errorf("temporary files left: %v", left)
				}
				os.Remove(out)
			}
			checkUnchanged(t, snap, "quantize")
		})
	}
}
