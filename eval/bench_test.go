package eval

import (
	"math/rand/v2"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// benchModel writes a small random model with 256-wide rows (K-quants need
// them) of weight type wt.
func benchModel(b *testing.B, wt ggml.Type) *Model {
	cfg := synthConfig{dim: 512, ff: 1536, layers: 4, heads: 8, kvHeads: 4, vocab: 2048, ctx: 512,
		weightType: wt, seed: 3}
	path, _ := writeSynth(b, b.TempDir(), cfg)
	m, err := Load(path, Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode is single-token generation (tg) at growing positions; the
// bytes are the weights read per token.
func BenchmarkDecode(b *testing.B) {
	for _, wt := range []ggml.Type{ggml.TypeF32, ggml.TypeQ8_0, ggml.TypeQ4_K} {
		b.Run(wt.String(), func(b *testing.B) {
			m := benchModel(b, wt)
			c := m.NewContext(512)
			defer c.Close()
			b.SetBytes(int64(m.BytesPerToken()))
			b.ResetTimer()
			tok := []int32{1}
			for i := 0; i < b.N; i++ {
				if c.Pos() == c.NCtx() {
					c.Reset()
				}
				if _, err := c.Decode(tok, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPromptProcessing evaluates a 128-token batch (pp128).
func BenchmarkPromptProcessing(b *testing.B) {
	for _, wt := range []ggml.Type{ggml.TypeQ8_0, ggml.TypeQ4_K} {
		b.Run(wt.String(), func(b *testing.B) {
			m := benchModel(b, wt)
			c := m.NewContext(512)
			defer c.Close()
			toks := randomTokens(rand.New(rand.NewPCG(1, 1)), 128, m.NVocab())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Reset()
				if _, err := c.Decode(toks, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(toks))/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// TestDecodeAllocations checks that a decode step allocates nothing in the
// engine (the matrix kernels' own scratch is pooled).
func TestDecodeAllocations(t *testing.T) {
	cfg := baseSynth()
	cfg.weightType = ggml.TypeF32
	path, _ := writeSynth(t, t.TempDir(), cfg)
	m, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.NewContext(cfg.ctx)
	defer c.Close()
	tok := []int32{3}
	if _, err := c.Decode(tok, false); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := c.Decode(tok, false); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.1f allocations per decoded token", allocs)
	// Products and parallel loops use pooled jobs and a persistent worker
	// team, so a decode step should allocate nothing; allow a stray
	// allocation from a sync.Pool refill after a GC.
	if limit := 1.0; allocs > limit && !raceEnabled {
		t.Errorf("%.1f allocations per token, more than %.0f", allocs, limit)
	}
}
