package eval_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llqt/llqt/convert"
	"github.com/llqt/llqt/eval"
	"github.com/llqt/llqt/formats/gguf"
	"github.com/llqt/llqt/internal/fixtures"
	"github.com/llqt/llqt/perplexity"
)

// The golden tests of the architectures after Llama (shared testdata
// arch/*, see its README): each arch_<name>_test.go runs archGoldens (the
// architectures b4748 runs: its perplexity, KL divergence and greedy
// generation) or archReference (Qwen3, Gemma 3: a PyTorch forward pass).

// archLoad opens a model, closed when the test ends.
func archLoad(t *testing.T, path string, opt eval.Options) *eval.Model {
	t.Helper()
	if opt.Threads == 0 {
		opt.Threads = 2
	}
	m, err := eval.Load(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// relClose reports |got-want| ≤ tol·|want|.
func relClose(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Abs(want)
}

// pplTol is the relative tolerance of the perplexity goldens: llama.cpp's
// figure within 0.1%.
const pplTol = 1e-3

// llamaCppSpread is how far llama.cpp b4748's AVX2 build's perplexity of
// arch/<folder>/golden-<variant>.gguf is from its AVX-512 build's, which
// made perplexity.json (testdata/llamacpp-avx2-perplexity.json, measured on
// one machine with both builds): the agreement llama.cpp itself keeps
// between its kernel sets.
func llamaCppSpread(t *testing.T, folder, variant string, golden float64) float64 {
	raw, err := os.ReadFile("testdata/llamacpp-avx2-perplexity.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Results map[string]map[string]struct {
			PPL float64 `json:"ppl"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	r, ok := d.Results[folder][variant]
	if !ok {
		t.Fatalf("testdata/llamacpp-avx2-perplexity.json has no %s %s", folder, variant)
	}
	return math.Abs(r.PPL/golden - 1)
}

// archGoldens checks the engine against llama.cpp b4748's outputs for the
// GGUFs in arch/<folder>. With spreadQ4, golden-Q4_K_M's perplexity may
// also differ by llama.cpp's own spread between its AVX2 and AVX-512 builds
// (llamaCppSpread) on top of pplTol (see its caller for why).
func archGoldens(t *testing.T, folder string, spreadQ4 bool) {
	dir := filepath.Dir(fixtures.Path(t, "arch/"+folder+"/perplexity.json"))
	text := fixtures.Path(t, "text/tinystories_eval.txt")
	t.Run("perplexity", func(t *testing.T) { archPerplexity(t, folder, dir, text, spreadQ4) })
	t.Run("kld", func(t *testing.T) { archKLD(t, dir) })
	t.Run("generate", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(dir, "generate.json"))
		if err != nil {
			t.Fatal(err)
		}
		var g struct {
			Cases []genCase `json:"cases"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		archGenerate(t, archLoad(t, filepath.Join(dir, "golden-f32.gguf"), eval.Options{}), g.Cases)
	})
}

// archPerplexity: llama-perplexity's PPL of golden-f32 and golden-Q4_K_M
// within pplTol (plus llama.cpp's own spread for Q4_K_M with spreadQ4).
func archPerplexity(t *testing.T, folder, dir, text string, spreadQ4 bool) {
	raw, err := os.ReadFile(filepath.Join(dir, "perplexity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		NCtx    int `json:"n_ctx"`
		NChunks int `json:"n_chunks"`
		Results map[string]struct {
			PPL    float64 `json:"ppl"`
			Stderr float64 `json:"stderr"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"f32", "Q4_K_M"} {
		want, ok := g.Results[variant]
		if !ok {
			t.Fatalf("perplexity.json has no %s result", variant)
		}
		t.Run(variant, func(t *testing.T) {
			m := archLoad(t, filepath.Join(dir, "golden-"+variant+".gguf"), eval.Options{})
			res := runPerplexity(t, m, text, g.NCtx, g.NChunks)
			t.Logf("PPL %.4f ± %.5f (llama.cpp %.4f ± %.5f), %+.2g", res.PPL, res.PPLStderr, want.PPL, want.Stderr, res.PPL/want.PPL-1)
			tol := pplTol
			if variant == "Q4_K_M" && spreadQ4 {
				spread := llamaCppSpread(t, folder, variant, want.PPL)
				tol += spread
				t.Logf("tolerance %.3g: 0.1%% plus llama.cpp's own AVX2/AVX-512 spread %.3g", tol, spread)
			}
			if !relClose(res.PPL, want.PPL, tol) {
				t.Errorf("PPL %.4f, llama.cpp %.4f", res.PPL, want.PPL)
			}
		})
	}
}

func runPerplexity(t *testing.T, m *eval.Model, text string, nCtx, nChunks int) *perplexity.Result {
	t.Helper()
	toks, opt, err := perplexity.EngineText(m, text)
	if err != nil {
		t.Fatal(err)
	}
	opt.NCtx, opt.MaxChunks = nCtx, nChunks
	res, err := perplexity.Perplexity(context.Background(), perplexity.FromEngine(m), toks, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// archKLD: golden-f32 against llama.cpp's f32 base (mean KLD ≤ 1e-4), and
// golden-Q4_K_M's statistics within 2% of llama.cpp's.
func archKLD(t *testing.T, dir string) {
	want := parseKLDStats(t, filepath.Join(dir, "kld-Q4_K_M.txt"))
	for _, variant := range []string{"f32", "Q4_K_M"} {
		t.Run(variant, func(t *testing.T) {
			m := archLoad(t, filepath.Join(dir, "golden-"+variant+".gguf"), eval.Options{})
			base, err := perplexity.OpenBase(filepath.Join(dir, "kld-base-f32.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			_, opt, err := perplexity.EngineText(m, "") // BOS starts each chunk
			if err != nil {
				t.Fatal(err)
			}
			res, err := perplexity.KLDivergence(context.Background(), perplexity.FromEngine(m), base, opt)
			if err != nil {
				t.Fatal(err)
			}
			s := res.KLD
			if s == nil {
				t.Fatal("no KL statistics")
			}
			t.Logf("mean KLD %.6f median %.6f 99%% %.6f, same top %.3f%%, PPL(Q) %.4f PPL(base) %.4f",
				s.KLD, s.KLDMedian, s.KLD99, 100*s.SameTop, s.PPL, s.PPLBase)
			if variant == "f32" {
				if s.KLD > 1e-4 {
					t.Errorf("f32 mean KLD %.3g against llama.cpp's f32, want ≤ 1e-4", s.KLD)
				}
				return
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"mean KLD", s.KLD, want["Mean    KLD"]},
				{"median KLD", s.KLDMedian, want["Median  KLD"]},
				{"99% KLD", s.KLD99, want["99.0%   KLD"]},
				{"PPL(Q)", s.PPL, want["Mean PPL(Q)"]},
				{"PPL(base)", s.PPLBase, want["Mean PPL(base)"]},
			} {
				if !relClose(c.got, c.want, 0.02) {
					t.Errorf("%s %.6g, llama.cpp %.6g (over 2%% apart)", c.name, c.got, c.want)
				}
			}
			// Same top p counts whole tokens (0.4 points each of 252), and
			// on these random models near ties decide some: 2 points.
			if d := 100*s.SameTop - want["Same top p"]; math.Abs(d) > 2 {
				t.Errorf("same top p %.3f%%, llama.cpp %.3f%%", 100*s.SameTop, want["Same top p"])
			}
		})
	}
}

// parseKLDStats reads the first number of each "label: value" line of
// llama-perplexity's statistics block.
func parseKLDStats(t *testing.T, path string) map[string]float64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(raw), "\n") {
		label, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(strings.TrimRight(strings.TrimSpace(val), "%"))
		if len(f) == 0 {
			continue
		}
		x, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		if _, dup := out[strings.TrimSpace(label)]; !dup {
			out[strings.TrimSpace(label)] = x
		}
	}
	for _, k := range []string{"Mean    KLD", "Median  KLD", "99.0%   KLD", "Mean PPL(Q)", "Mean PPL(base)", "Same top p"} {
		if _, ok := out[k]; !ok {
			t.Fatalf("%s: no %q line", path, k)
		}
	}
	return out
}

// genCase is one greedy continuation (generate.json, or reference.json's
// generate block).
type genCase struct {
	Prompt       string  `json:"prompt"`
	NPredict     int     `json:"n_predict"`
	NCtx         int     `json:"n_ctx"`
	PromptIDs    []int32 `json:"prompt_ids"`
	GeneratedIDs []int32 `json:"generated_ids"`
	Output       string  `json:"output"`
	OutputHex    string  `json:"output_hex"`
}

// archGenerate decodes each prompt greedily as llama-simple does and
// compares the ids and the printed bytes.
func archGenerate(t *testing.T, m *eval.Model, cases []genCase) {
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		ids, err := tok.Encode(tc.Prompt, true, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, tc.PromptIDs) {
			t.Errorf("prompt %q tokenizes to %v, llama.cpp %v", tc.Prompt, ids, tc.PromptIDs)
			continue
		}
		// llama.cpp pads the context to a multiple of 32 (this picks
		// Phi-3's short LongRoPE factors, as llama-simple's run did).
		nCtx := tc.NCtx
		if nCtx == 0 {
			nCtx = len(ids) + tc.NPredict - 1
		}
		c := m.NewContext((nCtx + 31) / 32 * 32)
		var out bytes.Buffer
		for _, id := range ids {
			out.WriteString(tok.TokenToPiece(id, true))
		}
		var got []int32
		logits, err := c.Decode(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		tie := false
		for range tc.NPredict {
			next := eval.Greedy(logits)
			if k := len(got); k < len(tc.GeneratedIDs) && next != tc.GeneratedIDs[k] && slices.Equal(got, tc.GeneratedIDs[:k]) {
				// A step whose best two logits are within nearTie is
				// decided by rounding, not by the model: an independent
				// implementation may pick the other. Compare up to it.
				if m := margin(logits); m < nearTie {
					t.Logf("prompt %q: step %d is a near tie (margin %.4f): %d here, %d in llama.cpp; compared up to it",
						tc.Prompt, k, m, next, tc.GeneratedIDs[k])
					tie = true
					break
				}
			}
			if tok.IsEOG(next) {
				break
			}
			got = append(got, next)
			out.WriteString(tok.TokenToPiece(next, true))
			if len(got) == tc.NPredict {
				break
			}
			if logits, err = c.Decode([]int32{next}, false); err != nil {
				t.Fatal(err)
			}
		}
		out.WriteString("\n")
		c.Close()
		if tie {
			continue
		}
		if !slices.Equal(got, tc.GeneratedIDs) {
			t.Errorf("prompt %q: generated %v\nwant %v", tc.Prompt, got, tc.GeneratedIDs)
			continue
		}
		want := []byte(tc.Output)
		if tc.OutputHex != "" {
			if want, err = hex.DecodeString(tc.OutputHex); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("prompt %q: printed %q, want %q", tc.Prompt, out.Bytes(), want)
		}
	}
}

// nearTie is the top-1/top-2 logit margin below which a greedy step counts
// as decided by rounding (the gemma2 golden has one at 0.0053, where
// llama.cpp with an F32 KV cache and the PyTorch reference pick the other
// token, arch/README.md).
const nearTie = 0.01

// margin is the difference between the two largest logits.
func margin(logits []float32) float32 {
	a, b := float32(math.Inf(-1)), float32(math.Inf(-1))
	for _, v := range logits {
		if v > a {
			a, b = v, a
		} else if v > b {
			b = v
		}
	}
	return a - b
}

// archReference checks the engine on a checkpoint newer than b4748,
// converted here by llqt's converter, against the PyTorch reference in
// arch/<folder>: chunk 0's logits within 1e-3 of the largest, the
// perplexity within 0.1%, and the greedy continuations. The KV cache is F32
// and GELU exact: the reference is float32 throughout (llama.cpp's F16
// rounding moves gemma3's chunk-0 logits by up to 0.06, arch/README.md).
func archReference(t *testing.T, folder string) {
	refPath := fixtures.Path(t, "arch/"+folder+"/reference.json")
	dir := filepath.Dir(refPath)
	raw, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		TokenIDs   []int32 `json:"token_ids"`
		Perplexity struct {
			NCtx    int     `json:"n_ctx"`
			NChunks int     `json:"n_chunks"`
			PPL     float64 `json:"ppl"`
			// The same with llama.cpp-like F16 rounding (KV cache, GELU
			// table), which the engine does by default.
			GGMLNumerics struct {
				PPL float64 `json:"ppl"`
			} `json:"ggml_numerics"`
		} `json:"perplexity"`
		Logits struct {
			File     string  `json:"file"`
			Shape    []int   `json:"shape"`
			TokenIDs []int32 `json:"token_ids"`
		} `json:"logits"`
		Generate struct {
			Cases []genCase `json:"cases"`
		} `json:"generate"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	res, err := convert.Convert(filepath.Join(dir, "hf"), convert.Options{OutType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), folder+".gguf")
	err = gguf.WriteFile(context.Background(), path, res.Model, gguf.WriteOptions{Threads: 2})
	res.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := archLoad(t, path, eval.Options{KVF32: true, ExactGELU: true})

	t.Run("logits", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(dir, ref.Logits.File))
		if err != nil {
			t.Fatal(err)
		}
		nPos, nVocab := ref.Logits.Shape[0], ref.Logits.Shape[1]
		if len(raw) != 4*nPos*nVocab || nVocab != m.NVocab() || len(ref.Logits.TokenIDs) != nPos {
			t.Fatalf("%s: %d bytes for shape %v, model vocabulary %d", ref.Logits.File, len(raw), ref.Logits.Shape, m.NVocab())
		}
		c := m.NewContext(ref.Perplexity.NCtx)
		defer c.Close()
		got, err := c.Decode(ref.Logits.TokenIDs, true)
		if err != nil {
			t.Fatal(err)
		}
		var maxAbs, maxDiff float64
		for i := range nPos * nVocab {
			w := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
			maxAbs = max(maxAbs, math.Abs(w))
			maxDiff = max(maxDiff, math.Abs(float64(got[i])-w))
		}
		t.Logf("max|Δlogit| %.3g, max|logit| %.3g, ratio %.3g", maxDiff, maxAbs, maxDiff/maxAbs)
		if maxDiff > 1e-3*maxAbs {
			t.Errorf("max|Δlogit| %.3g exceeds 1e-3 × max|logit| %.3g", maxDiff, maxAbs)
		}
	})
	t.Run("perplexity", func(t *testing.T) {
		toks, opt, err := perplexity.EngineText(m, fixtures.Path(t, "text/tinystories_eval.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(toks, ref.TokenIDs) {
			t.Fatalf("the text tokenizes to %d ids, the reference's %d differ", len(toks), len(ref.TokenIDs))
		}
		opt.NCtx, opt.MaxChunks = ref.Perplexity.NCtx, ref.Perplexity.NChunks
		res, err := perplexity.Perplexity(context.Background(), perplexity.FromEngine(m), toks, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("PPL %.4f (reference %.4f)", res.PPL, ref.Perplexity.PPL)
		if !relClose(res.PPL, ref.Perplexity.PPL, 1e-3) {
			t.Errorf("PPL %.4f, reference %.4f", res.PPL, ref.Perplexity.PPL)
		}
	})
	t.Run("generate", func(t *testing.T) { archGenerate(t, m, ref.Generate.Cases) })
	// The engine's defaults (F16 KV cache, ggml's GELU table) against the
	// reference's emulation of them; no greedy step changes under them.
	t.Run("ggml-numerics", func(t *testing.T) {
		if ref.Perplexity.GGMLNumerics.PPL == 0 {
			t.Skip("reference.json has no ggml_numerics perplexity")
		}
		m := archLoad(t, path, eval.Options{})
		res := runPerplexity(t, m, fixtures.Path(t, "text/tinystories_eval.txt"), ref.Perplexity.NCtx, ref.Perplexity.NChunks)
		want := ref.Perplexity.GGMLNumerics.PPL
		t.Logf("PPL %.4f (reference with F16 rounding %.4f)", res.PPL, want)
		if !relClose(res.PPL, want, 1e-3) {
			t.Errorf("PPL %.4f, reference with F16 rounding %.4f", res.PPL, want)
		}
		archGenerate(t, m, ref.Generate.Cases)
	})
}
