package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats/ggml"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/quant"
)

// writeSmall builds a scaled-down shape through the same path as the
// command and loads it with the engine.
func writeSmall(t *testing.T, preset, vocab string, nVocab int) (*gguf.File, string) {
	t.Helper()
	s := Shape{Name: "test", Dim: 256, FF: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: nVocab, Ctx: 64, RopeBase: 10000}
	m, err := Build(s, vocab, 3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := quant.ParsePreset(preset)
	if err != nil {
		t.Fatal(err)
	}
	planned, _, err := quant.Plan(m, quant.Options{Preset: p, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := gguf.WriteFile(context.Background(), out, planned, gguf.WriteOptions{Threads: 1, Codec: quant.Codec{}}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, out
}

func TestGeneratedModelRuns(t *testing.T) {
	for _, preset := range []string{"F16", "Q8_0", "Q4_K_M"} {
		t.Run(preset, func(t *testing.T) {
			f, path := writeSmall(t, preset, "", 512)
			ti, _ := f.Tensor("blk.0.attn_q.weight")
			want := map[string]ggml.Type{"F16": ggml.TypeF16, "Q8_0": ggml.TypeQ8_0, "Q4_K_M": ggml.TypeQ4_K}[preset]
			if ti.Type != want {
				t.Errorf("attn_q is %s, want %s", ti.Type, want)
			}
			m, err := eval.Load(path, eval.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tok, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			ids, err := tok.Encode("hello", true, false)
			if err != nil || len(ids) == 0 || ids[0] != 1 {
				t.Fatalf("synthetic vocabulary encodes %v, %v", ids, err)
			}
			c := m.NewContext(0)
			defer c.Close()
			logits, err := c.Decode(ids, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != 512 {
				t.Errorf("%d logits", len(logits))
			}
		})
	}
}

func TestLlama2Vocabulary(t *testing.T) {
	vocab := fixtures.Path(t, "vocab/ggml-vocab-llama-spm.gguf")
	_, path := writeSmall(t, "Q8_0", vocab, 32000)
	m, err := eval.Load(path, eval.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := tok.Encode("Hello world", true, false); len(ids) != 3 || ids[1] != 15043 {
		t.Errorf("Llama 2 vocabulary encodes %v", ids)
	}
	if _, err := Build(Shape{Dim: 64, FF: 64, Layers: 1, Heads: 1, KVHeads: 1, Vocab: 100, Ctx: 8}, vocab, 1); err == nil {
		t.Error("a 32000-token vocabulary was accepted for a 100-token shape")
	}
}

func TestShapes(t *testing.T) {
	s, err := ShapeByName("TinyLlama-1.1B")
	if err != nil || s.Dim != 2048 || s.FF != 5632 || s.Layers != 22 || s.Heads != 32 || s.KVHeads != 4 {
		t.Errorf("tinyllama shape %+v, %v", s, err)
	}
	if _, err := ShapeByName("gpt-5"); err == nil {
		t.Error("unknown shape accepted")
	}
}
