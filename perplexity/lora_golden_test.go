package perplexity

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
)

// TestLoraGoldenWholeText: PPL over all of text/tinystories_eval.txt with
// golden2's adapter applied at run time, against golden2/lora.json's
// llama-perplexity figures, within 0.1%. Each run is a whole-text pass, so
// only with LLQT_LONG_TESTS (cmd/llqt's TestLoraPerplexity checks 20
// chunks on every run).
func TestLoraGoldenWholeText(t *testing.T) {
	if !longTests() {
		t.Skip("whole-text LoRA runs take minutes each; set LLQT_LONG_TESTS=1")
	}
	var g struct {
		PPL map[string]struct {
			PPL float64 `json:"ppl"`
		} `json:"ppl"`
	}
	readJSON(t, fixtures.Path(t, "golden2/lora.json"), &g)
	raw, err := os.ReadFile(fixtures.Path(t, "text/tinystories_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, model, lora string
		scale            float32
	}{
		{"f32 + lora-f32", "golden/tiny-llama-f32.gguf", "golden2/lora-f32.gguf", 1},
		{"f32 + lora-f32 scaled 0.5", "golden/tiny-llama-f32.gguf", "golden2/lora-f32.gguf", 0.5},
		{"f16 + lora-f16", "golden/tiny-llama-f16.gguf", "golden2/lora-f16.gguf", 1},
		{"Q4_K_M + lora-f32", "golden/tiny-llama-Q4_K_M.gguf", "golden2/lora-f32.gguf", 1},
	} {
		t.Run(tc.key, func(t *testing.T) {
			want, ok := g.PPL[tc.key]
			if !ok {
				t.Fatalf("lora.json has no %q", tc.key)
			}
			m, err := eval.Load(fixtures.Path(t, tc.model), eval.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			a, err := gguf.OpenAdapter(fixtures.Path(t, tc.lora))
			if err != nil {
				t.Fatal(err)
			}
			err = m.ApplyLoRA(a, tc.scale)
			a.Close()
			if err != nil {
				t.Fatal(err)
			}
			tk, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			toks, err := tk.Encode(PrepareText(raw), true, false)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Perplexity(context.Background(), FromEngine(m), toks, Options{NCtx: 256, BOS: tk.BOS(), AddBOS: tk.AddBOS()})
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(res.PPL-want.PPL) / want.PPL; rel > 1e-3 {
				t.Errorf("PPL %.4f, llama-perplexity %.4f", res.PPL, want.PPL)
			}
			t.Logf("PPL %.4f, llama-perplexity %.4f", res.PPL, want.PPL)
		})
	}
}
