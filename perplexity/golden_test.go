package perplexity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/internal/fixtures"
)

// longTests: the golden figures cover whole texts (tens of thousands of
// tokens per variant), too slow for every run on two cores; by default one
// variant of each kind is checked, LLQT_LONG_TESTS=1 checks them all.
func longTests() bool { return os.Getenv("LLQT_LONG_TESTS") != "" }

// goldenBudget is how long a default run may spend on one whole-text pass.
const goldenBudget = 3 * time.Minute

// skipIfTooSlow times one 256-token decode and skips (unless
// LLQT_LONG_TESTS is set) when nTokens would take longer than goldenBudget,
// so that a slow engine or a loaded machine does not blow the test timeout.
func skipIfTooSlow(t *testing.T, m *eval.Model, toks []int32, nTokens int) {
	t.Helper()
	if longTests() {
		return
	}
	c := m.NewContext(256)
	defer c.Close()
	start := time.Now()
	if _, err := c.Decode(toks[:256], true); err != nil {
		t.Fatal(err)
	}
	if proj := time.Since(start) * time.Duration(nTokens) / 256; proj > goldenBudget {
		t.Skipf("engine does %.0f tokens/s here: %d tokens would take %v (budget %v); set LLQT_LONG_TESTS=1 to run anyway",
			256/time.Since(start).Seconds(), nTokens, proj.Round(time.Second), goldenBudget)
	}
}

// TestReferenceChunkNLL: the first chunks of the text against the PyTorch
// reference's per-chunk mean NLL (same method, n_ctx 256), cheap enough for
// every run.
func TestReferenceChunkNLL(t *testing.T) {
	var ref struct {
		NCtx         int       `json:"n_ctx"`
		ChunkMeanNLL []float64 `json:"chunk_mean_nll"`
		NTokens      int       `json:"n_tokens_with_bos"`
	}
	raw, err := os.ReadFile(fixtures.Path(t, "reference/ppl_tinystories_eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	m := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-f32.gguf"))
	toks, opt, err := EngineText(m, fixtures.Path(t, "text/tinystories_eval.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != ref.NTokens {
		t.Fatalf("text tokenizes to %d tokens, the reference to %d", len(toks), ref.NTokens)
	}
	opt.NCtx, opt.MaxChunks = ref.NCtx, 2
	res, err := Perplexity(context.Background(), FromEngine(m), toks, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range res.ChunkNLL {
		if d := got - ref.ChunkMeanNLL[i]; d > 2e-4 || d < -2e-4 {
			t.Errorf("chunk %d: mean NLL %.6f, reference %.6f", i+1, got, ref.ChunkMeanNLL[i])
		}
	}
}

type goldenPPL struct {
	Texts map[string]struct {
		File    string `json:"file"`
		NCtx    int    `json:"n_ctx"`
		Chunks  int    `json:"chunks"`
		Results map[string]struct {
			PPL    float64 `json:"ppl"`
			Stderr float64 `json:"stderr"`
		} `json:"results"`
	} `json:"texts"`
}

func loadEngine(t *testing.T, path string) *eval.Model {
	t.Helper()
	m, err := eval.Load(path, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGoldenPerplexity: llama-perplexity's PPL for the golden variants,
// within 0.1%.
func TestGoldenPerplexity(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-text perplexity runs take minutes; skipped with -short")
	}
	var g goldenPPL
	raw, err := os.ReadFile(fixtures.Path(t, "golden/perplexity.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(filepath.Dir(fixtures.Path(t, "golden/perplexity.json")))
	for name, text := range g.Texts {
		for variant, want := range text.Results {
			// By default one variant on wiki (150 chunks, exercising --chunks);
			// TestGoldenKLD checks the tinystories PPL of f32 and Q4_K_M.
			if !longTests() && !(name == "wiki" && variant == "Q4_K_M") {
				continue
			}
			t.Run(name+"/"+variant, func(t *testing.T) {
				m := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-"+variant+".gguf"))
				toks, opt, err := EngineText(m, filepath.Join(dir, text.File))
				if err != nil {
					t.Fatal(err)
				}
				opt.NCtx, opt.MaxChunks = text.NCtx, text.Chunks
				skipIfTooSlow(t, m, toks, NumChunks(len(toks), opt.NCtx, opt.MaxChunks)*opt.NCtx)
				res, err := Perplexity(context.Background(), FromEngine(m), toks, opt)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("PPL %.4f ± %.5f (llama.cpp %.4f ± %.5f), %d chunks, %.0f tokens/s",
					res.PPL, res.PPLStderr, want.PPL, want.Stderr, res.NChunks, res.TokensPerSecond)
				if !approxEqual(res.PPL, want.PPL, 1e-3) {
					t.Errorf("PPL %.4f, llama.cpp %.4f", res.PPL, want.PPL)
				}
				if !approxEqual(res.PPLStderr, want.Stderr, 1e-2) {
					t.Errorf("± %.5f, llama.cpp %.5f", res.PPLStderr, want.Stderr)
				}
			})
		}
	}
}

// goldenKLD reads llama.cpp's statistics from a golden kld file.
func goldenKLD(t *testing.T, variant string) *KLDStats {
	return parseGoldenStats(t, goldenBlocks(t, fixtures.Path(t, "golden/kld-"+variant+".txt")))
}

// TestGoldenKLD: the f32 base written by us, then each variant against it:
// mean KLD within 2% of llama.cpp's, same top p within 0.2 points.
func TestGoldenKLD(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-text KL runs take minutes; skipped with -short")
	}
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	variants := []string{"Q4_K_M"}
	if longTests() {
		variants = []string{"q8_0", "Q6_K", "Q4_K_M", "Q4_0", "Q2_K"}
	}
	baseModel := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-f32.gguf"))
	toks, opt, err := EngineText(baseModel, text)
	if err != nil {
		t.Fatal(err)
	}
	// The base pass and one pass per variant.
	skipIfTooSlow(t, baseModel, toks, (1+len(variants))*NumChunks(len(toks), 256, 0)*256)
	basePath := filepath.Join(t.TempDir(), "f32.kld")
	f, err := os.Create(basePath)
	if err != nil {
		t.Fatal(err)
	}
	opt.NCtx, opt.BaseOut = 256, f
	baseRes, err := Perplexity(context.Background(), FromEngine(baseModel), toks, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The base run is a plain perplexity run too: llama.cpp's f32 figure.
	const goldenF32PPL = 22.2794 // golden/perplexity.json, tinystories, f32
	if !approxEqual(baseRes.PPL, goldenF32PPL, 1e-3) {
		t.Errorf("f32 PPL %.4f, llama.cpp %.4f", baseRes.PPL, goldenF32PPL)
	}
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			m := loadEngine(t, fixtures.Path(t, "golden/tiny-llama-"+v+".gguf"))
			br, err := OpenBase(basePath)
			if err != nil {
				t.Fatal(err)
			}
			defer br.Close()
			var out strings.Builder
			kopt := opt
			kopt.BaseOut, kopt.Out = nil, &out
			res, err := KLDivergence(context.Background(), FromEngine(m), br, kopt)
			if err != nil {
				t.Fatal(err)
			}
			want := goldenKLD(t, v)
			wantKLD, wantTop := want.KLD, want.SameTop
			s := res.KLD
			t.Logf("mean KLD %.6f (llama.cpp %.6f), same top p %.3f%% (llama.cpp %.3f%%), PPL(Q) %.4f (%.4f)",
				s.KLD, wantKLD, 100*s.SameTop, 100*wantTop, s.PPL, want.PPL)
			if !approxEqual(s.PPL, want.PPL, 1e-3) || !approxEqual(s.PPLBase, want.PPLBase, 1e-3) {
				t.Errorf("PPL(Q) %.4f PPL(base) %.4f, llama.cpp %.4f %.4f", s.PPL, s.PPLBase, want.PPL, want.PPLBase)
			}
			if !approxEqual(s.KLD, wantKLD, 0.02) {
				t.Errorf("mean KLD %.6f, llama.cpp %.6f", s.KLD, wantKLD)
			}
			if d := 100 * (s.SameTop - wantTop); d > 0.2 || d < -0.2 {
				t.Errorf("same top p %.3f%%, llama.cpp %.3f%%", 100*s.SameTop, 100*wantTop)
			}
		})
	}
}
