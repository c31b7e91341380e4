package convert

import (
	"fmt"
	"strings"

	"github.com/llqt/llqt/formats"
	"github.com/llqt/llqt/formats/safetensors"
)

// llama converts LlamaForCausalLM and MistralForCausalLM (the same graph:
// RMSNorm, rotary attention with optional GQA, SiLU-gated MLP) to GGUF
// architecture "llama", as convert_hf_to_gguf.py's LlamaModel does.
type llama struct{ decoder }

func init() {
	Register(func() Architecture { return &llama{llamaDecoder()} }, "LlamaForCausalLM", "MistralForCausalLM")
}

// llamaDecoder is the Llama converter's decoder, which Mixtral's extends.
func llamaDecoder() decoder {
	return decoder{arch: "llama", layer: llamaBiasedLayerRules, global: llamaGlobalRules}
}

type llamaHParams = decoderHParams

// llamaBiasedLayerRules is a Llama layer whose projections may have biases.
func llamaBiasedLayerRules(hp *decoderHParams) []tensorRule {
	return withBiases(llamaLayerRules(hp), "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
}

// ExtraTensors adds rope_freqs.weight for Llama 3.1-style ("llama3") rope
// scaling.
func (l *llama) ExtraTensors(b *Builder) error {
	rs, ok, err := b.Config.Object("rope_scaling")
	if err != nil || !ok {
		return err
	}
	if rt, _ := rs.String("rope_type"); strings.ToLower(rt) != "llama3" {
		return nil
	}
	// LlamaModel's defaults stand in for the values a config leaves out.
	var base, factor, low, high, old float64
	for _, v := range []struct {
		from *Config
		key  string
		def  float64
		dst  *float64
	}{
		{b.Config, "rope_theta", 10000, &base},
		{rs, "factor", 8, &factor},
		{rs, "low_freq_factor", 1, &low},
		{rs, "high_freq_factor", 4, &high},
		{rs, "original_max_position_embeddings", 8192, &old},
	} {
		if *v.dst, err = v.from.FloatOr(v.key, v.def); err != nil {
			return err
		}
	}
	factors, err := llama3RopeFactors(base, int(l.hp.headDim), factor, low, high, old)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", b.Config.Path, ErrConfig, err)
	}
	b.addF32Tensor("rope_freqs.weight", factors)
	return nil
}

// MapTensor renames a tensor and permutes q/k rows into llama.cpp's rotary
// layout.
func (l *llama) MapTensor(b *Builder, t *safetensors.Tensor) error {
	return addDecoderTensor(b, l.table(), l.hp.tied, t, llamaPermutes(t.Name, &l.hp)...)
}

// llamaPermutes is the q/k row permutation LlamaModel applies (weights and
// biases).
func llamaPermutes(name string, hp *decoderHParams) []formats.Transform {
	base, _, _ := cutSuffix(name)
	switch {
	case strings.HasSuffix(base, "self_attn.q_proj"):
		return []formats.Transform{permuteRows{nHead: int(hp.heads)}}
	case strings.HasSuffix(base, "self_attn.k_proj"):
		return []formats.Transform{permuteRows{nHead: int(hp.kvHeads)}}
	}
	return nil
}

func cutSuffix(name string) (base, suffix string, ok bool) {
	for _, s := range []string{".weight", ".bias"} {
		if b, found := strings.CutSuffix(name, s); found {
			return b, s, true
		}
	}
	return "", "", false
}

// Params writes the common hyperparameters, then vocab_size, the rotary
// dimension and rope scaling.
func (l *llama) Params(b *Builder) error {
	const arch = "llama"
	if err := b.CommonParams(arch); err != nil {
		return err
	}
	b.Add(arch+".vocab_size", uint32(l.hp.vocab))
	b.Add(arch+".rope.dimension_count", uint32(l.hp.headDim))
	rs, ok, err := b.Config.Object("rope_scaling")
	if err != nil || !ok || !rs.Has("factor") {
		return err
	}
	factor, _, err := rs.Float("factor")
	if err != nil {
		return err
	}
	switch typ := rs.FirstString("type", "rope_type"); typ {
	case "linear", "yarn":
		return addRopeScaling(b, rs, arch, typ, factor, true)
	}
	return nil
}

// Vocab writes the tokenizer: SentencePiece from tokenizer.model, else a
// GPT-2 style BPE from tokenizer.json (Llama 3), then the special tokens.
func (l *llama) Vocab(b *Builder) error {
	if err := sentencePieceOrBPE(b, int(l.hp.vocab)); err != nil {
		return err
	}
	// CodeLlama's infill tokens; of these gguf-py only has a writer for eot.
	if l.hp.vocab == 32016 {
		b.Add("tokenizer.ggml.eot_token_id", uint32(32010))
	}
	var tc map[string]any
	if _, err := readJSON(b.Dir, "tokenizer_config.json", &tc); err != nil {
		return err
	}
	if v, ok := tc["add_prefix_space"].(bool); ok {
		b.Add("tokenizer.ggml.add_space_prefix", v)
	}
	return nil
}
