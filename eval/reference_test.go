package eval

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llqt/llqt/internal/fixtures"
)

type referencePrompt struct {
	Prompt      string  `json:"prompt"`
	TokenIDs    []int32 `json:"token_ids"`
	LogitsFile  string  `json:"logits_file"`
	LogitsShape []int   `json:"logits_shape"`
	Argmax      []int   `json:"argmax_per_position"`
}

func loadReference(t *testing.T) (string, []referencePrompt) {
	t.Helper()
	path := fixtures.Path(t, "reference/reference.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Prompts []referencePrompt `json:"prompts"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(path), ref.Prompts
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestReferenceLogits compares the F32 golden model's logits with the
// independent PyTorch reference at every position of every prompt.
func TestReferenceLogits(t *testing.T) {
	dir, prompts := loadReference(t)
	modelPath := fixtures.Path(t, "golden/tiny-llama-f32.gguf")
	for _, kv := range []struct {
		name string
		opt  Options
	}{{"kvF16", Options{Threads: 2}}, {"kvF32", Options{Threads: 2, KVF32: true}}} {
		t.Run(kv.name, func(t *testing.T) {
			m, err := Load(modelPath, kv.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tok, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			c := m.NewContext(0)
			defer c.Close()
			nv := m.NVocab()
			for pi, p := range prompts {
				ids, err := tok.Encode(p.Prompt, true, true)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids, p.TokenIDs) {
					t.Errorf("prompt %d: token ids %v, reference %v", pi, ids, p.TokenIDs)
				}
				want := readF32(t, filepath.Join(dir, p.LogitsFile))
				c.Reset()
				got, err := c.Decode(p.TokenIDs, true)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("prompt %d: %d logits, reference %d", pi, len(got), len(want))
				}
				var maxAbs, maxDiff float64
				for i := range want {
					maxAbs = max(maxAbs, math.Abs(float64(want[i])))
					maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
				}
				for pos := range p.TokenIDs {
					g, w := argmax(got[pos*nv:(pos+1)*nv]), argmax(want[pos*nv:(pos+1)*nv])
					if g != w {
						t.Errorf("prompt %d position %d: top-1 %d, reference %d", pi, pos, g, w)
					}
				}
				t.Logf("prompt %d: %d tokens, max|Δlogit| %.3g, max|logit| %.3g, ratio %.3g", pi, len(p.TokenIDs), maxDiff, maxAbs, maxDiff/maxAbs)
				if maxDiff > 1e-3*maxAbs {
					t.Errorf("prompt %d: max|Δlogit| %.4g > 1e-3 × max|logit| %.4g", pi, maxDiff, maxAbs)
				}
			}
		})
	}
}
