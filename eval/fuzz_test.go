package eval

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/formats/gguf"
)

// FuzzLoadHparams writes a small valid model whose hyperparameters are then
// overwritten by fuzzed values: Load must reject inconsistent ones with an
// error, never panic, and a model it accepts must decode.
func FuzzLoadHparams(f *testing.F) {
	f.Add(uint32(64), uint32(96), uint32(2), uint32(4), uint32(2), uint32(96), uint32(16), uint32(64), "linear", float32(1))
	f.Add(uint32(64), uint32(96), uint32(2), uint32(4), uint32(3), uint32(96), uint32(16), uint32(64), "yarn", float32(4))
	f.Add(uint32(64), uint32(96), uint32(2), uint32(0), uint32(2), uint32(0), uint32(15), uint32(1), "bogus", float32(0))
	dir := f.TempDir()
	path, _ := writeSynth(f, dir, baseSynth())
	base, err := gguf.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	defer base.Close()
	f.Fuzz(func(t *testing.T, dim, ff, layers, heads, kvHeads, vocab, rot, ctx uint32, scaling string, factor float32) {
		m := base.Model()
		kv := &m.KV
		kv.Set("llama.embedding_length", dim)
		kv.Set("llama.feed_forward_length", ff)
		kv.Set("llama.block_count", layers)
		kv.Set("llama.attention.head_count", heads)
		kv.Set("llama.attention.head_count_kv", kvHeads)
		kv.Set("llama.vocab_size", vocab)
		kv.Set("llama.rope.dimension_count", rot)
		kv.Set("llama.context_length", ctx%4096)
		kv.Set("llama.rope.scaling.type", scaling)
		kv.Set("llama.rope.scaling.factor", factor)
		out := filepath.Join(t.TempDir(), "f.gguf")
		if err := gguf.WriteFile(context.Background(), out, m, gguf.WriteOptions{Threads: 1}); err != nil {
			t.Skip(err)
		}
		model, err := Load(out, Options{Threads: 2})
		if err != nil {
			return
		}
		defer model.Close()
		if model.Hparams.NCtxTrain == 0 {
			return
		}
		c := model.NewContext(0)
		defer c.Close()
		if _, err := c.Decode([]int32{0, 1}, true); err != nil && model.Hparams.NCtxTrain >= 2 {
			t.Errorf("accepted model failed to decode: %v", err)
		}
	})
}
