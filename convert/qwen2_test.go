package convert

import "testing"

func TestQwen2Golden(t *testing.T) { archGolden(t, "qwen2") }

// TestQwen2NoPermute: Qwen2 keeps q/k rows as stored (NEOX rotary) and
// maps the biases.
func TestQwen2NoPermute(t *testing.T) {
	q := registry["Qwen2ForCausalLM"]().(*qwen2)
	q.hp = decoderHParams{blocks: 1, hidden: 8, ff: 16, heads: 2, kvHeads: 1, headDim: 4, vocab: 10}
	tt := q.table()
	for _, c := range []struct{ hf, gguf string }{
		{"self_attn.q_proj.bias", "attn_q.bias"}, {"self_attn.k_proj.bias", "attn_k.bias"}, {"self_attn.v_proj.bias", "attn_v.bias"},
	} {
		r, ok := findRule(tt.layer, c.hf)
		if !ok || r.gguf != c.gguf || !r.optional {
			t.Errorf("%s: rule %+v", c.hf, r)
		}
	}
	if _, ok := findRule(tt.layer, "self_attn.o_proj.bias"); ok {
		t.Error("o_proj bias accepted; Qwen2 has none")
	}
}
