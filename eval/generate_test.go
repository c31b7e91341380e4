package eval

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

// TestGreedyMatchesLlamaSimple reproduces llama-simple's greedy output on
// the golden prompts: the prompt's pieces (BOS as "<s>"), then up to
// n_predict sampled pieces, stopping at an end-of-generation token, then "\n".
func TestGreedyMatchesLlamaSimple(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path(t, "golden/generate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Prompt   string `json:"prompt"`
			NPredict int    `json:"n_predict"`
			Output   string `json:"output"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	m, err := Load(fixtures.Path(t, "golden/tiny-llama-f32.gguf"), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range golden.Cases {
		ids, err := tok.Encode(tc.Prompt, true, true)
		if err != nil {
			t.Fatal(err)
		}
		c := m.NewContext(len(ids) + tc.NPredict)
		var out strings.Builder
		for _, id := range ids {
			out.WriteString(tok.TokenToPiece(id, true))
		}
		logits, err := c.Decode(ids, false)
		if err != nil {
			t.Fatal(err)
		}
		for range tc.NPredict {
			next := Greedy(logits)
			if tok.IsEOG(next) {
				break
			}
			out.WriteString(tok.TokenToPiece(next, true))
			if logits, err = c.Decode([]int32{next}, false); err != nil {
				t.Fatal(err)
			}
		}
		out.WriteString("\n")
		c.Close()
		if out.String() != tc.Output {
			t.Errorf("prompt %q:\n got %q\nwant %q", tc.Prompt, out.String(), tc.Output)
		}
	}
}

func TestSamplerOptions(t *testing.T) {
	logits := []float32{1, 3, 2, -1, 2.5, 0}
	if got := NewSampler(SamplerOptions{}).Sample(logits); got != 1 {
		t.Errorf("greedy picked %d, want 1", got)
	}
	count := func(opt SamplerOptions) map[int32]int {
		s := NewSampler(opt)
		seen := map[int32]int{}
		for range 2000 {
			seen[s.Sample(logits)]++
		}
		return seen
	}
	if seen := count(SamplerOptions{Temp: 1, TopK: 2, Seed: 1}); len(seen) != 2 || seen[1] == 0 || seen[4] == 0 {
		t.Errorf("top-k 2 drew %v, want only tokens 1 and 4", seen)
	}
	// p(1) ≈ 0.48 and p(4) ≈ 0.29 at temperature 1: top-p 0.7 keeps both.
	if seen := count(SamplerOptions{Temp: 1, TopP: 0.7, Seed: 2}); len(seen) != 2 {
		t.Errorf("top-p 0.7 drew %v, want tokens 1 and 4", seen)
	}
	if seen := count(SamplerOptions{Temp: 1, Seed: 3}); len(seen) != len(logits) {
		t.Errorf("plain sampling drew %v, want every token", seen)
	}
	// A low temperature concentrates on the argmax.
	if seen := count(SamplerOptions{Temp: 0.05, Seed: 4}); seen[1] < 1990 {
		t.Errorf("temperature 0.05 drew %v", seen)
	}
	a, b := NewSampler(SamplerOptions{Temp: 1, Seed: 9}), NewSampler(SamplerOptions{Temp: 1, Seed: 9})
	for range 50 {
		if a.Sample(logits) != b.Sample(logits) {
			t.Fatal("same seed gave different draws")
		}
	}
}

// TestBeamSearch checks that one beam is greedy decoding and that more
// beams never find a continuation less probable than greedy's.
func TestBeamSearch(t *testing.T) {
	cfg := baseSynth()
	path, _ := writeSynth(t, t.TempDir(), cfg)
	m, err := Load(path, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := randomTokens(rand.New(rand.NewPCG(11, 12)), 5, cfg.vocab)
	const n = 12
	score := func(toks []int32) float64 {
		c := m.NewContext(cfg.ctx)
		defer c.Close()
		all := append(append([]int32(nil), prompt...), toks...)
		logits, err := c.Decode(all, true)
		if err != nil {
			t.Fatal(err)
		}
		lp := make([]float64, cfg.vocab)
		var s float64
		for i, id := range toks {
			row := len(prompt) - 1 + i
			LogSoftmax(lp, logits[row*cfg.vocab:(row+1)*cfg.vocab])
			s += lp[id]
		}
		return s
	}
	c := m.NewContext(cfg.ctx)
	defer c.Close()
	greedy := []int32{}
	logits, _ := c.Decode(prompt, false)
	for range n {
		id := Greedy(logits)
		greedy = append(greedy, id)
		logits, _ = c.Decode([]int32{id}, false)
	}
	c.Reset()
	one, err := BeamSearch(c, prompt, BeamOptions{Beams: 1, NPredict: n})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, greedy) {
		t.Errorf("1 beam gave %v, greedy %v", one, greedy)
	}
	c.Reset()
	four, err := BeamSearch(c, prompt, BeamOptions{Beams: 4, NPredict: n})
	if err != nil {
		t.Fatal(err)
	}
	if len(four) != n {
		t.Fatalf("4 beams gave %d tokens, want %d", len(four), n)
	}
	if sg, s4 := score(greedy), score(four); s4 < sg-1e-3 {
		t.Errorf("4 beams scored %.4f, below greedy's %.4f", s4, sg)
	} else {
		t.Logf("log-prob: greedy %.4f, 4 beams %.4f", sg, s4)
	}
}
