package convert

import "testing"

// TestGemmaGolden: norms +1, tied, CodeGemma's eot id, no dummy prefix.
func TestGemmaGolden(t *testing.T) { archGolden(t, "gemma") }

// TestGemma2Golden: Gemma 2's four norms, soft-capping and sliding window.
func TestGemma2Golden(t *testing.T) { archGolden(t, "gemma2") }

func TestGemmaNormShift(t *testing.T) {
	for _, c := range []struct {
		name  string
		shift bool
	}{
		{"model.norm.weight", true},
		{"model.layers.0.input_layernorm.weight", true},
		{"model.layers.0.pre_feedforward_layernorm.weight", true},
		{"model.layers.0.self_attn.q_norm.weight", true},
		{"model.layers.0.self_attn.q_proj.weight", false},
		{"model.embed_tokens.weight", false},
	} {
		tr := gemmaNormShift(c.name)
		if (len(tr) == 1) != c.shift {
			t.Errorf("%s: shift %v, want %v", c.name, len(tr) == 1, c.shift)
		}
		if c.shift {
			v := []float32{-1, 0, 0.5}
			if err := tr[0].Apply(v, []uint64{3}); err != nil || v[0] != 0 || v[1] != 1 || v[2] != 1.5 {
				t.Errorf("%s: %v %v", c.name, v, err)
			}
		}
	}
}
