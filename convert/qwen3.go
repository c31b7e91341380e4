package convert

import (
	"github.com/llqt/llqt/formats/safetensors"
)

// qwen3 converts Qwen3ForCausalLM to GGUF architecture "qwen3". b4748 does
// not know it; names and keys follow current llama.cpp (Qwen3Model, a
// Qwen2Model): a Llama layer without q/k permutation (NEOX rotary), plus
// per-head RMSNorm weights for q and k (attn_q_norm/attn_k_norm, F32, as
// stored). head_dim in config.json may differ from hidden/heads and is
// written as key/value length. A tied checkpoint has no lm_head and gets no
// output.weight.
type qwen3 struct {
	noExtraTensors
	hp decoderHParams
}

func init() {
	Register(func() Architecture { return &qwen3{} }, "Qwen3ForCausalLM")
}

func (q *qwen3) GGUFArch() string { return "qwen3" }

func (q *qwen3) table() *tensorTable {
	hp := &q.hp
	layer := append(qwen2LayerRules(hp), qkNormRules(hp)...)
	return &tensorTable{arch: "qwen3", layer: layer, global: llamaGlobalRules(hp)}
}

func (q *qwen3) Check(b *Builder) error { return checkDecoder(b, &q.hp, false, q.table) }

func (q *qwen3) MapTensor(b *Builder, t *safetensors.Tensor) error {
	return addDecoderTensor(b, q.table(), q.hp.tied, t)
}

func (q *qwen3) Params(b *Builder) error { return textModelParams(b, "qwen3") }

func (q *qwen3) Vocab(b *Builder) error { return sentencePieceOrBPE(b, int(q.hp.vocab)) }
