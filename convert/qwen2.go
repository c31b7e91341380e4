package convert

// qwen2 converts Qwen2ForCausalLM (Qwen2, Qwen2.5) to GGUF architecture
// "qwen2", as convert_hf_to_gguf.py's Qwen2Model does: a Llama layer with
// q/k/v biases, NEOX rotary layout (no q/k permutation), no vocab_size or
// rope dimension keys.
type qwen2 struct{ decoder }

func init() {
	Register(func() Architecture {
		return &qwen2{decoder{arch: "qwen2", layer: qwen2LayerRules, global: llamaGlobalRules}}
	}, "Qwen2ForCausalLM")
}

// qwen2LayerRules is a Llama layer with q/k/v biases (Qwen3 keeps them).
func qwen2LayerRules(hp *decoderHParams) []tensorRule {
	return withBiases(llamaLayerRules(hp), "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
}

func (q *qwen2) Params(b *Builder) error {
	if err := b.CommonParams("qwen2"); err != nil {
		return err
	}
	return yarnParams(b, "qwen2")
}

// yarnParams writes Qwen2Model's rope scaling keys: only a rope_scaling of
// "type" yarn with a factor is recorded.
func yarnParams(b *Builder, arch string) error {
	rs, ok, err := b.Config.Object("rope_scaling")
	if err != nil || !ok || !rs.Has("factor") {
		return err
	}
	if typ, _ := rs.String("type"); typ != "yarn" {
		return nil
	}
	factor, _, err := rs.Float("factor")
	if err != nil {
		return err
	}
	return addRopeScaling(b, rs, arch, "yarn", factor, false)
}

// Vocab is SentencePiece when tokenizer.model exists, else GPT-2 BPE from
// tokenizer.json.
func (q *qwen2) Vocab(b *Builder) error {
	return sentencePieceOrBPE(b, int(q.hp.vocab))
}
