package convert

// qwen3 converts Qwen3ForCausalLM to GGUF architecture "qwen3". b4748 does
// not know it; names and keys follow current llama.cpp (Qwen3Model, a
// Qwen2Model): a Llama layer without q/k permutation (NEOX rotary), plus
// per-head RMSNorm weights for q and k (attn_q_norm/attn_k_norm, F32, as
// stored). head_dim in config.json may differ from hidden/heads and is
// written as key/value length. A tied checkpoint has no lm_head and gets no
// output.weight.
type qwen3 struct{ decoder }

func init() {
	Register(func() Architecture {
		return &qwen3{decoder{arch: "qwen3", layer: qwen3LayerRules, global: llamaGlobalRules}}
	}, "Qwen3ForCausalLM")
}

// qwen3LayerRules is Qwen2's layer with q/k norms.
func qwen3LayerRules(hp *decoderHParams) []tensorRule {
	return append(qwen2LayerRules(hp), qkNormRules(hp)...)
}

func (q *qwen3) Params(b *Builder) error { return textModelParams(b, "qwen3") }

func (q *qwen3) Vocab(b *Builder) error { return sentencePieceOrBPE(b, int(q.hp.vocab)) }
